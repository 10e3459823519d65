/**
 * TCG or KVM. KVM is used only where it really works: /dev/kvm must open, and a probe boot under KVM must
 * run `true` to the end (on nested hosts /dev/kvm exists but QEMU aborts or the guest dies early). The
 * probe result is cached per host kernel, QEMU version and CPU model.
 */
import { constants, accessSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { capture } from './exec.js';
import type { Accel } from './qemu-args.js';

export type AccelChoice = Accel | 'auto';

export function kvmDeviceUsable(): boolean {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export async function hostSignature(qemu: string): Promise<string> {
  const v = (await capture(qemu, ['--version'])).stdout.split('\n')[0] ?? '';
  let cpu = '';
  try {
    cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
  } catch {
    // not Linux?
  }
  return `${release()} | ${v} | ${cpu}`;
}

interface ProbeRecord {
  signature: string;
  kvmWorks: boolean;
  detail: string;
  at: string;
}

function probePath(cache: string): string {
  return join(cache, 'kvm-probe.json');
}

export function readProbe(cache: string): ProbeRecord | undefined {
  const p = probePath(cache);
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as ProbeRecord;
  } catch {
    return undefined;
  }
}

/**
 * Resolve 'auto'. `probe` boots a trivial guest under KVM and says whether it worked (injected so this
 * module does not depend on the runner).
 */
export async function resolveAccel(
  choice: AccelChoice,
  cache: string,
  qemu: string,
  probe: () => Promise<{ ok: boolean; detail: string }>,
): Promise<{ accel: Accel; why: string }> {
  if (choice !== 'auto') return { accel: choice, why: `requested ${choice}` };
  if (!kvmDeviceUsable()) return { accel: 'tcg', why: '/dev/kvm is not usable' };
  const signature = await hostSignature(qemu);
  const known = readProbe(cache);
  if (known && known.signature === signature) {
    return known.kvmWorks
      ? { accel: 'kvm', why: 'KVM probe passed on this host' }
      : { accel: 'tcg', why: `KVM probe failed on this host (${known.detail})` };
  }
  const r = await probe();
  mkdirSync(cache, { recursive: true });
  const rec: ProbeRecord = { signature, kvmWorks: r.ok, detail: r.detail, at: new Date().toISOString() };
  writeFileSync(probePath(cache), JSON.stringify(rec, null, 2) + '\n');
  return r.ok ? { accel: 'kvm', why: 'KVM probe passed' } : { accel: 'tcg', why: `KVM probe failed (${r.detail})` };
}
