/**
 * Who holds a VFIO device: the processes with its device cdev or its group node open, found by
 * scanning /proc/<pid>/fd (the char device's major:minor, so a renamed or bind-mounted node
 * still matches). Used only on the failure path of opening a device, to say in the error what a
 * user needs: which process to stop. Reading another user's fds needs root (or the same user);
 * processes we cannot read are skipped, so the list can be incomplete but never wrong.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BackendError } from '../../errors.js';
import { ERR } from './util.js';

/** A process with one of the nodes open. */
export interface Holder {
  readonly pid: number;
  /** /proc/<pid>/comm. */
  readonly comm: string;
  /** The node (as this process named it) the holder has open. */
  readonly node: string;
}

function rdevOf(path: string): number | null {
  try {
    const s = statSync(path);
    return s.isCharacterDevice() ? s.rdev : null;
  } catch {
    return null;
  }
}

/** Processes with any of `nodes` (char device paths) open; `proc` is the procfs mount. */
export function findHolders(nodes: readonly string[], proc = '/proc'): Holder[] {
  const want = new Map<number, string>();
  for (const n of nodes) {
    const r = rdevOf(n);
    if (r !== null && !want.has(r)) want.set(r, n);
  }
  if (want.size === 0) return [];
  const out: Holder[] = [];
  let pids: string[];
  try {
    pids = readdirSync(proc).filter((d) => /^[0-9]+$/.test(d));
  } catch {
    return [];
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(join(proc, pid, 'fd'));
    } catch {
      continue; // gone, or not ours to read
    }
    const seen = new Set<string>();
    for (const fd of fds) {
      const node = want.get(rdevOf(join(proc, pid, 'fd', fd)) ?? -1);
      if (node === undefined || seen.has(node)) continue;
      seen.add(node);
      let comm = '?';
      try {
        comm = readFileSync(join(proc, pid, 'comm'), 'utf8').trim();
      } catch {
        /* exited meanwhile */
      }
      out.push({ pid: Number(pid), comm, node });
    }
  }
  return out;
}

/** "pid 123 (node) has /dev/vfio/devices/vfio0 open; …", or a sentence saying none was visible. */
export function describeHolders(holders: readonly Holder[]): string {
  if (holders.length === 0) return 'no holder is visible in /proc (another user\'s process needs root to see)';
  return holders
    .map((h) => `${h.pid === process.pid ? 'this process, ' : ''}pid ${h.pid} (${h.comm}) has ${h.node} open`)
    .join('; ');
}

/**
 * The EBUSY a device held elsewhere answers on every native backend: names the device, why the
 * kernel refused (`why`), and the holders of `nodes` (its cdev and group node) when visible.
 */
export function heldElsewhere(bdf: string, syscall: string, nodes: readonly string[], why: string, holders = findHolders(nodes)): BackendError {
  return new BackendError(ERR.EBUSY, syscall, `${bdf} is held by another open: ${describeHolders(holders)} (${why})`);
}
