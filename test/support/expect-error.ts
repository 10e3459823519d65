/** The one "this call must fail" helper of the tests: the public API's IommuError and the backends' BackendError. */
import { constants } from 'node:os';
import { expect } from 'vitest';
import { BackendError, IommuError } from '../../lib/errors.js';

/** The error of class `cls` that `fn` throws (fails the test, saying `expected`, when it returns or throws something else). */
export function caught<E>(fn: () => unknown, cls: abstract new (...args: never[]) => E, expected: string): E {
  try {
    fn();
  } catch (e) {
    expect(e, expected).toBeInstanceOf(cls);
    return e as E;
  }
  return expect.fail(`${expected}, the call succeeded`);
}

/** The IommuError `fn` throws (fails the test when it returns or throws something else). */
export function catchIommuError(fn: () => unknown): IommuError {
  return caught(fn, IommuError, 'expected an IommuError');
}

/** `fn` throws an IommuError with `code` (and `.argument` when given); returns it. */
export function expectIommu(fn: () => unknown, code: string, argument?: string): IommuError {
  const err = caught(fn, IommuError, `expected ${code}`);
  expect(err.code).toBe(code);
  if (argument !== undefined) expect(err.argument).toBe(argument);
  return err;
}

/** The one errno assertion of the backend-level tests (contract suite, simulator unit tests): `fn` throws BackendError with errno `name` (and syscall when given). */
export function expectErrno(fn: () => unknown, name: keyof typeof constants.errno, syscall?: string): BackendError {
  const be = caught(fn, BackendError, `expected ${name}`);
  expect({ errno: be.errno, message: be.message }).toMatchObject({ errno: -constants.errno[name] });
  if (syscall !== undefined) expect(be.syscall).toBe(syscall);
  return be;
}
