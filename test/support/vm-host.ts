/** Shared pieces of the VM harness's host-side unit tests: a machine description for qemuArgs and the usage-error check. */
import { expect } from 'vitest';
import { VmError } from '../../lib/vm/errors.js';
import { caught } from './expect-error.js';

/** A guest machine as `qemuArgs` takes it (nothing here is read from disk). */
export function vmMachine(flavor: 'type1' | 'iommufd' = 'iommufd', over: { image?: string; memoryMiB?: number; cpus?: number } = {}) {
  return {
    kernel: { flavor, id: 'k', image: over.image ?? '/k', modules: [] as string[], description: '' },
    initrd: '/i', accel: 'tcg' as const, memoryMiB: over.memoryMiB ?? 1024, cpus: over.cpus ?? 1, devices: 2,
    cwd: '/w', runShare: '/r', socketDir: '/s',
  };
}

/** `fn` fails as a usage error (VmError, exit code 2); returns it. */
export function usageError(fn: () => unknown): VmError {
  const err = caught(fn, VmError, 'expected a usage error (VmError)');
  expect(err.exitCode).toBe(2);
  return err;
}
