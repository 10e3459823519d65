/** Shared pieces of the VM harness's host-side unit tests: a machine description for qemuArgs, the usage-error check and the check of an option that takes one of a list of choices. */
import { expect } from 'vitest';
import { parseRunArgs, type RunArgs } from '../../lib/vm/cli.js';
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

/**
 * A `vm run` option that takes one of `choices`: absent, `read` gives undefined; each choice parses
 * both as `OPTION VALUE` and as `OPTION=VALUE`; `bad`, an empty value and no value at all are usage
 * errors whose message names the option and every choice.
 */
export function expectChoiceOption(option: `--${string}`, read: (a: RunArgs) => unknown, choices: readonly string[], bad: string): void {
  expect(read(parseRunArgs(['--', 'true']))).toBeUndefined();
  for (const c of choices) {
    expect(read(parseRunArgs([option, c, '--', 'true']))).toBe(c);
    expect(read(parseRunArgs([`${option}=${c}`, '--', 'true']))).toBe(c);
  }
  for (const argv of [[option, bad], [option, ''], [`${option}=`], [option]]) {
    const message = usageError(() => parseRunArgs([...argv, '--', 'true'])).message;
    expect(message).toContain(option);
    for (const c of choices) expect(message).toContain(c);
  }
}
