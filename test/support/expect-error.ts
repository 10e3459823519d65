/** The one "this call must fail with an IommuError" helper of the public-API tests. */
import { expect } from 'vitest';
import { IommuError } from '../../lib/errors.js';

/** The IommuError `fn` throws (fails the test when it returns or throws something else). */
export function catchIommuError(fn: () => unknown): IommuError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(IommuError);
    return e as IommuError;
  }
  throw new Error('expected an IommuError, the call succeeded');
}
