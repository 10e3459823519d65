/**
 * NTSTATUS values used by the interface, and the one errno → NTSTATUS table shared by every
 * backend (the simulator synthesizes the same errnos as the kernel, so `.code` is identical).
 */
import { constants as osConstants } from 'node:os';

/**
 * The NTSTATUS values this package reports, by `STATUS_*` name (`IommuError.code` → `IommuError.status`).
 * The codes a caller can actually see, and when, are in the README's error table.
 */
export const NTSTATUS = {
  /** The operation succeeded (never thrown). */
  STATUS_SUCCESS: 0x00000000,
  /** Generic failure: a second state callback, unregistering an unknown one, PASID already attached, an unexpected internal failure (`.cause`). */
  STATUS_UNSUCCESSFUL: 0xc0000001,
  /** The member is not implemented. */
  STATUS_NOT_IMPLEMENTED: 0xc0000002,
  /** A handle is not valid. */
  STATUS_INVALID_HANDLE: 0xc0000008,
  /** A platform service's, option's or `DmaMemory`'s argument is malformed (`.argument` names it); also: device already attached, unmapping what is not mapped. */
  STATUS_INVALID_PARAMETER: 0xc000000d,
  /** No such device. */
  STATUS_NO_SUCH_DEVICE: 0xc000000e,
  /** The object is closed or freed: a closed platform, freed `DmaMemory`, the regions of a deleted device. */
  STATUS_INVALID_DEVICE_REQUEST: 0xc0000010,
  /** The domain type is not available to the device now, an IOMMU group conflict, or no permission on a device node (EPERM, EACCES). */
  STATUS_ACCESS_DENIED: 0xc0000022,
  /** The caller's buffer is too small. */
  STATUS_BUFFER_TOO_SMALL: 0xc0000023,
  /** The arguments are valid one by one but not together: Min/Max cannot be satisfied, a segment beyond its token. */
  STATUS_INVALID_PARAMETER_MIX: 0xc0000030,
  /** Nothing is mapped there. */
  STATUS_NONE_MAPPED: 0xc0000073,
  /** Out of memory or IOVA space, or the type1 mapping limit (ENOMEM, ENOSPC, EMFILE, ENFILE). */
  STATUS_INSUFFICIENT_RESOURCES: 0xc000009a,
  /** The device is busy (EBUSY). */
  STATUS_DEVICE_BUSY: 0x80000011,
  /** Not supported here: a version, a domain type, an explicit address with an allocator, an Arm64-only member on x86 (EOPNOTSUPP, ENOTTY, ENOSYS). */
  STATUS_NOT_SUPPORTED: 0xc00000bb,
  /** WDK member argument 1 is malformed, out of range, a foreign/deleted/stale handle, or its domain type does not allow the call. */
  STATUS_INVALID_PARAMETER_1: 0xc00000ef,
  /** WDK member argument 2 is not valid. */
  STATUS_INVALID_PARAMETER_2: 0xc00000f0,
  /** WDK member argument 3 is not valid. */
  STATUS_INVALID_PARAMETER_3: 0xc00000f1,
  /** WDK member argument 4 is not valid. */
  STATUS_INVALID_PARAMETER_4: 0xc00000f2,
  /** WDK member argument 5 is not valid. */
  STATUS_INVALID_PARAMETER_5: 0xc00000f3,
  /** WDK member argument 6 is not valid. */
  STATUS_INVALID_PARAMETER_6: 0xc00000f4,
  /** WDK member argument 7 is not valid. */
  STATUS_INVALID_PARAMETER_7: 0xc00000f5,
  /** WDK member argument 8 is not valid. */
  STATUS_INVALID_PARAMETER_8: 0xc00000f6,
  /** An explicit address or identity range is already mapped, fully or partly (EEXIST, EADDRINUSE). */
  STATUS_IN_USE: 0xc0000108,
  /** Still in use: a token still mapped, a domain with devices or tokens, a device still attached, memory still mapped. */
  STATUS_RESOURCE_IN_USE: 0xc0000708,
  /** Not found (ENOENT, ENODEV, ENXIO where no better code applies). */
  STATUS_NOT_FOUND: 0xc0000225,
  /** The device was removed (surprise removal). */
  STATUS_DEVICE_REMOVED: 0xc00002b6,
  /** An I/O error (EIO, EFAULT). */
  STATUS_IO_DEVICE_ERROR: 0xc0000185,
  /** A wait timed out (ETIMEDOUT). */
  STATUS_TIMEOUT: 0x00000102,
} as const;

/** A `STATUS_*` name: the keys of {@link NTSTATUS}; the type of `IommuError.code`. */
export type StatusName = keyof typeof NTSTATUS;

/** STATUS_INVALID_PARAMETER_n for a 1-based WDK parameter position. */
export function invalidParameterN(n: number): StatusName {
  if (n < 1 || n > 8) return 'STATUS_INVALID_PARAMETER';
  return `STATUS_INVALID_PARAMETER_${n}` as StatusName;
}

const E = osConstants.errno;

/** The errnos of each status in the default mapping below (linux-iommufd-vfio.md §5.1). */
const STATUS_OF_ERRNOS: ReadonlyArray<readonly [StatusName, readonly number[]]> = [
  ['STATUS_IN_USE', [E.EEXIST, E.EADDRINUSE]],
  ['STATUS_INSUFFICIENT_RESOURCES', [E.ENOSPC, E.ENOMEM, E.EMFILE, E.ENFILE]],
  ['STATUS_INVALID_PARAMETER', [E.EINVAL, E.EOVERFLOW, E.ERANGE]],
  ['STATUS_NOT_FOUND', [E.ENOENT, E.ENODEV, E.ENXIO]],
  ['STATUS_DEVICE_BUSY', [E.EBUSY]],
  ['STATUS_ACCESS_DENIED', [E.EPERM, E.EACCES]],
  ['STATUS_NOT_SUPPORTED', [E.EOPNOTSUPP, E.ENOTTY, E.ENOSYS]],
  ['STATUS_IO_DEVICE_ERROR', [E.EIO, E.EFAULT]],
  ['STATUS_TIMEOUT', [E.ETIMEDOUT]],
];
const STATUS_BY_ERRNO = new Map<number, StatusName>(STATUS_OF_ERRNOS.flatMap(([status, errnos]) => errnos.map((e) => [e, status] as const)));

/**
 * Default errno → status mapping (linux-iommufd-vfio.md §5.1); any other errno is
 * STATUS_UNSUCCESSFUL. Call sites that know better (an ENOENT on unmap means "not mapped", on
 * open means "no such device") pass an override.
 */
export function statusForErrno(errno: number): StatusName {
  return STATUS_BY_ERRNO.get(Math.abs(errno)) ?? 'STATUS_UNSUCCESSFUL';
}

/** The negative errno for a name such as 'EEXIST' (Node convention: `err.errno < 0`). */
export function negativeErrno(name: keyof typeof osConstants.errno): number {
  return -E[name];
}
