/**
 * The native backends' limits, read from the kernel: RLIMIT_MEMLOCK, CAP_IPC_LOCK and what this
 * process has locked and pinned (/proc/self/{limits,status}), and VFIO type1's dma_entry_limit.
 * `explainLimit` turns a kernel refusal caused by one of them (ENOMEM from a pin or mlock, ENOSPC from
 * VFIO_IOMMU_MAP_DMA) into the same errno and syscall with a message naming the limit, its value and
 * the fix (the text is lib/backend/limits.ts, shared with the simulator).
 */
import { readFileSync } from 'node:fs';
import { BackendError } from '../../errors.js';
import { entryLimitMessage, memlockMessage } from '../limits.js';
import { ERR } from './util.js';

/** RLIMIT_MEMLOCK and what counts against it, for this process. */
export interface MemlockFacts {
  /** Soft limit in bytes; null = unlimited. */
  readonly limit: bigint | null;
  /** Hard limit in bytes; null = unlimited. */
  readonly hardLimit: bigint | null;
  /** CAP_IPC_LOCK in the effective set: the limit does not apply. */
  readonly capIpcLock: boolean;
  /** VmLck: mlocked memory (and VFIO type1's pinned pages, which it accounts there). */
  readonly locked: bigint;
  /** VmPin: pages pinned by the kernel for this process (iommufd accounts its pins there too). */
  readonly pinned: bigint;
}

const CAP_IPC_LOCK = 14n;

function kib(status: string, key: string): bigint {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
  return m ? BigInt(m[1]!) * 1024n : 0n;
}

/** Read the facts from /proc (`proc` = a /proc/self-like folder, for tests). */
export function memlockFacts(proc = '/proc/self'): MemlockFacts {
  let limits = '';
  let status = '';
  try {
    limits = readFileSync(`${proc}/limits`, 'utf8');
    status = readFileSync(`${proc}/status`, 'utf8');
  } catch {
    /* not Linux: nothing known */
  }
  const m = /^Max locked memory\s+(\S+)\s+(\S+)/m.exec(limits);
  const value = (v: string | undefined) => (v === undefined || v === 'unlimited' ? null : BigInt(v));
  const cap = /^CapEff:\s+([0-9a-f]+)/m.exec(status);
  return {
    limit: m ? value(m[1]) : null,
    hardLimit: m ? value(m[2]) : null,
    capIpcLock: cap ? ((BigInt(`0x${cap[1]}`) >> CAP_IPC_LOCK) & 1n) === 1n : false,
    locked: kib(status, 'VmLck'),
    pinned: kib(status, 'VmPin'),
  };
}

/** Whether the memlock limit applies to this process at all. */
export function memlockApplies(f: MemlockFacts): boolean {
  return !f.capIpcLock && f.limit !== null;
}

export interface LimitContext {
  /** What was being pinned ("a map of 0x200000 bytes"). */
  readonly what: string;
  /** Bytes the call would pin. */
  readonly request: bigint;
  /** What the kernel counts this pin in: 'locked' (mlock, VFIO type1: mm->locked_vm) or 'pinned' (iommufd). */
  readonly counter: 'locked' | 'pinned';
  /** type1's entry limit of this backend (null: not type1). */
  readonly entryLimit: number | null;
  /** /proc/self-like folder (tests). */
  readonly proc?: string;
}

/**
 * `e` itself, or (a pin refused by RLIMIT_MEMLOCK; type1's last entry used) a BackendError with the
 * same errno and syscall whose message names the limit, its value and the fix.
 */
export function explainLimit(e: unknown, c: LimitContext): unknown {
  if (!(e instanceof BackendError)) return e;
  if (e.errno === ERR.ENOSPC && c.entryLimit !== null && e.syscall === 'VFIO_IOMMU_MAP_DMA') {
    return new BackendError(e.errno, e.syscall, entryLimitMessage(c.entryLimit));
  }
  if (e.errno === ERR.ENOMEM || (e.errno === ERR.EPERM && e.syscall === 'mlock')) {
    const f = memlockFacts(c.proc);
    const held = c.counter === 'locked' || e.syscall === 'mlock' ? f.locked : f.pinned;
    if (memlockApplies(f) && held + c.request > f.limit!) {
      return new BackendError(e.errno, e.syscall, memlockMessage({ limit: f.limit!, locked: held, request: c.request, what: c.what }));
    }
  }
  return e;
}
