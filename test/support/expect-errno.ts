/** The one errno assertion of the backend-level tests (contract suite, simulator unit tests). */
import { constants } from 'node:os';
import { expect } from 'vitest';
import { BackendError } from '../../lib/errors.js';

/** Expect `fn` to throw BackendError with errno `name` (and syscall when given). */
export function expectErrno(fn: () => unknown, name: keyof typeof constants.errno, syscall?: string): BackendError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${name}`).toBeInstanceOf(BackendError);
  const be = err as BackendError;
  expect({ errno: be.errno, message: be.message }).toMatchObject({ errno: -constants.errno[name] });
  if (syscall !== undefined) expect(be.syscall).toBe(syscall);
  return be;
}
