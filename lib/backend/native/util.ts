/** Shared helpers of the native backends: errno names, the native-call wrapper, hex. */
import { constants as osConstants } from 'node:os';
import { BackendError } from '../../errors.js';

const E = osConstants.errno;

/** Negative errnos (Node convention). */
export const ERR = {
  EPERM: -E.EPERM,
  ENOENT: -E.ENOENT,
  EIO: -E.EIO,
  EBADF: -E.EBADF,
  ENOMEM: -E.ENOMEM,
  EACCES: -E.EACCES,
  EFAULT: -E.EFAULT,
  EBUSY: -E.EBUSY,
  EEXIST: -E.EEXIST,
  ENODEV: -E.ENODEV,
  EINVAL: -E.EINVAL,
  ENOSPC: -E.ENOSPC,
  ENOTTY: -E.ENOTTY,
  EOVERFLOW: -E.EOVERFLOW,
  ENOTSUP: -E.ENOTSUP,
  EOPNOTSUPP: -E.EOPNOTSUPP,
  EADDRINUSE: -E.EADDRINUSE,
} as const;

export const PAGE = 4096n;
export const U64_MAX = (1n << 64n) - 1n;

export function fail(errno: number, syscall: string, message?: string): never {
  throw new BackendError(errno, syscall, message);
}

export function hex(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}

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

export function checkHandle(h: unknown, what: string): asserts h is number {
  if (typeof h !== 'number' || !Number.isInteger(h)) throw new TypeError(`${what} must be an integer handle`);
}

export function checkU64(v: unknown, what: string, syscall: string): asserts v is bigint {
  if (typeof v !== 'bigint') throw new TypeError(`${what} must be a bigint`);
  if (v < 0n) fail(ERR.EINVAL, syscall, `${what} is negative`);
  if (v > U64_MAX) fail(ERR.EOVERFLOW, syscall, `${what} does not fit in 64 bits`);
}
