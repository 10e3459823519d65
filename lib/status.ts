/**
 * NTSTATUS values used by the interface, and the one errno → NTSTATUS table shared by every
 * backend (the simulator synthesizes the same errnos as the kernel, so `.code` is identical).
 */
import { constants as osConstants } from 'node:os';

export const NTSTATUS = {
  STATUS_SUCCESS: 0x00000000,
  STATUS_UNSUCCESSFUL: 0xc0000001,
  STATUS_NOT_IMPLEMENTED: 0xc0000002,
  STATUS_INVALID_HANDLE: 0xc0000008,
  STATUS_INVALID_PARAMETER: 0xc000000d,
  STATUS_NO_SUCH_DEVICE: 0xc000000e,
  STATUS_INVALID_DEVICE_REQUEST: 0xc0000010,
  STATUS_ACCESS_DENIED: 0xc0000022,
  STATUS_BUFFER_TOO_SMALL: 0xc0000023,
  STATUS_INVALID_PARAMETER_MIX: 0xc0000030,
  STATUS_NONE_MAPPED: 0xc0000073,
  STATUS_INSUFFICIENT_RESOURCES: 0xc000009a,
  STATUS_DEVICE_BUSY: 0x80000011,
  STATUS_NOT_SUPPORTED: 0xc00000bb,
  STATUS_INVALID_PARAMETER_1: 0xc00000ef,
  STATUS_INVALID_PARAMETER_2: 0xc00000f0,
  STATUS_INVALID_PARAMETER_3: 0xc00000f1,
  STATUS_INVALID_PARAMETER_4: 0xc00000f2,
  STATUS_INVALID_PARAMETER_5: 0xc00000f3,
  STATUS_INVALID_PARAMETER_6: 0xc00000f4,
  STATUS_INVALID_PARAMETER_7: 0xc00000f5,
  STATUS_INVALID_PARAMETER_8: 0xc00000f6,
  STATUS_IN_USE: 0xc0000108,
  STATUS_RESOURCE_IN_USE: 0xc0000708,
  STATUS_NOT_FOUND: 0xc0000225,
  STATUS_DEVICE_REMOVED: 0xc00002b6,
  STATUS_IO_DEVICE_ERROR: 0xc0000185,
  STATUS_TIMEOUT: 0x00000102,
} as const;

export type StatusName = keyof typeof NTSTATUS;

/** STATUS_INVALID_PARAMETER_n for a 1-based WDK parameter position. */
export function invalidParameterN(n: number): StatusName {
  if (n < 1 || n > 8) return 'STATUS_INVALID_PARAMETER';
  return `STATUS_INVALID_PARAMETER_${n}` as StatusName;
}

const E = osConstants.errno;

/**
 * Default errno → status mapping (linux-iommufd-vfio.md §5.1). Call sites that know better (an
 * ENOENT on unmap means "not mapped", on open means "no such device") pass an override.
 */
export function statusForErrno(errno: number): StatusName {
  const e = Math.abs(errno);
  switch (e) {
    case E.EEXIST:
    case E.EADDRINUSE:
      return 'STATUS_IN_USE';
    case E.ENOSPC:
    case E.ENOMEM:
    case E.EMFILE:
    case E.ENFILE:
      return 'STATUS_INSUFFICIENT_RESOURCES';
    case E.EINVAL:
    case E.EOVERFLOW:
    case E.ERANGE:
      return 'STATUS_INVALID_PARAMETER';
    case E.ENOENT:
    case E.ENODEV:
    case E.ENXIO:
      return 'STATUS_NOT_FOUND';
    case E.EBUSY:
      return 'STATUS_DEVICE_BUSY';
    case E.EPERM:
    case E.EACCES:
      return 'STATUS_ACCESS_DENIED';
    case E.EOPNOTSUPP:
    case E.ENOTTY:
    case E.ENOSYS:
      return 'STATUS_NOT_SUPPORTED';
    case E.EIO:
    case E.EFAULT:
      return 'STATUS_IO_DEVICE_ERROR';
    case E.ETIMEDOUT:
      return 'STATUS_TIMEOUT';
    default:
      return 'STATUS_UNSUCCESSFUL';
  }
}

/** The negative errno for a name such as 'EEXIST' (Node convention: `err.errno < 0`). */
export function negativeErrno(name: keyof typeof osConstants.errno): number {
  return -E[name];
}
