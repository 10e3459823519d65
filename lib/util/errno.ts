/**
 * errno names and numbers (bottom layer). Negative errnos follow Node's convention (`err.errno < 0`).
 */
import { constants as osConstants } from 'node:os';

const E = osConstants.errno;

/** Negative errnos (Node convention), named once so the hot paths do not look them up. */
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
  ERANGE: -E.ERANGE,
  EOVERFLOW: -E.EOVERFLOW,
  EOPNOTSUPP: -E.EOPNOTSUPP,
  /** Same number as EOPNOTSUPP on Linux. */
  ENOTSUP: -E.ENOTSUP,
  EADDRINUSE: -E.EADDRINUSE,
  ETIMEDOUT: -E.ETIMEDOUT,
} as const;

const ERRNO_NAMES = new Map<number, string>();
for (const [name, value] of Object.entries(E)) {
  if (!ERRNO_NAMES.has(value)) ERRNO_NAMES.set(value, name);
}
ERRNO_NAMES.set(E.EOPNOTSUPP, 'EOPNOTSUPP');

/** errno number (either sign) → name ('EEXIST'), for counters and messages; `E<n>` when unknown. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`;
}
