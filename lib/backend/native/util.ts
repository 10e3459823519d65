/** Helpers of the native backends: the native-call wrapper; the ones every backend shares come from ../shared.ts. */
import { BackendError } from '../../errors.js';


export const PAGE = 4096n;

/** A native error (errno + syscall) as a BackendError; anything else (TypeError...) unchanged. */
export function asBackendError(e: unknown, context?: string): unknown {
  if (e instanceof BackendError) return e;
  const n = e as { errno?: unknown; syscall?: unknown; message?: string };
  if (e instanceof Error && typeof n.errno === 'number' && typeof n.syscall === 'string') {
    const be = new BackendError(n.errno, n.syscall, context);
    (be as { cause?: unknown }).cause = e;
    return be;
  }
  return e;
}

/** Run a native call; kernel failures come out as BackendError. */
export function native<T>(fn: () => T, context?: string): T {
  try {
    return fn();
  } catch (e) {
    throw asBackendError(e, context);
  }
}

/** errno of a BackendError (negative), or undefined. */
export function errnoOf(e: unknown): number | undefined {
  return e instanceof BackendError ? e.errno : undefined;
}

export { ERR, U64_MAX, checkHandle, checkU64, fail, hex } from '../shared.js';
