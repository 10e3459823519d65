/** Helpers of the native backends; the ones every backend shares come from ../shared.ts. */
import { BackendError } from '../../errors.js';

export { PAGE } from '../../util/u64.js';

/** errno of a BackendError (negative), or undefined. */
export function errnoOf(e: unknown): number | undefined {
  return e instanceof BackendError ? e.errno : undefined;
}

export { ERR, U64_MAX, checkHandle, checkU64, fail, hex } from '../shared.js';
