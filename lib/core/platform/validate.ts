/**
 * Argument validation shared by every WDK member and platform service: the two error builders
 * (`invalidArg` for STATUS_INVALID_PARAMETER_n, `statusError` for any other status) and the
 * parsers every member uses for the same kind of argument.
 */
import { IommuError } from '../../errors.js';
import { type StatusName, invalidParameterN } from '../../status.js';

export const U64_MAX = (1n << 64n) - 1n;
export const PAGE = 4096n;
export const PAGE_MASK = PAGE - 1n;

export function hex(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}

/** STATUS_INVALID_PARAMETER_n (n = the argument's WDK position) naming the argument and the rule. */
export function invalidArg(operation: string, n: number, argument: string, message: string): IommuError {
  return new IommuError(invalidParameterN(n), `${argument} ${message}`, { operation, argument });
}

/** An IommuError with `code` (not a positional argument error). */
export function statusError(code: StatusName, operation: string, message: string, argument?: string): IommuError {
  return new IommuError(code, message, { operation, ...(argument ? { argument } : {}) });
}

/** An optional 64-bit address: absent (undefined/null) or a bigint in 0..2^64-1. */
export function optionalAddress(v: unknown, op: string, n: number, arg: string): bigint | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'bigint') throw invalidArg(op, n, arg, `must be a bigint or null (got ${typeof v})`);
  if (v < 0n || v > U64_MAX) throw invalidArg(op, n, arg, 'must be within 0..2^64-1');
  return v;
}

/** IOMMU_ACCESS_* permissions: a ULONG with only bits 0 (read) and 1 (write). */
export function checkPermissions(perms: unknown, op: string, n: number): number {
  if (typeof perms !== 'number' || !Number.isInteger(perms) || perms < 0 || perms > 0xffffffff) {
    throw invalidArg(op, n, 'Permissions', 'must be a ULONG (IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE)');
  }
  if ((perms & ~3) !== 0) {
    throw invalidArg(op, n, 'Permissions', `has reserved bits set (0x${perms.toString(16)}): only bit 0 (read) and bit 1 (write) are defined`);
  }
  return perms;
}
