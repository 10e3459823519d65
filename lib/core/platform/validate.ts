/**
 * Argument validation shared by every WDK member and platform service: the two error builders
 * (`invalidArg` for STATUS_INVALID_PARAMETER_n, `statusError` for any other status) and the
 * parsers every member uses for the same kind of argument.
 */
import { IommuError } from '../../errors.js';
import { type StatusName, invalidParameterN } from '../../status.js';

import { PAGE, PAGE_MASK, U64_MAX, hex } from '../../util/u64.js';

export { PAGE, PAGE_MASK, U64_MAX, hex };

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

/** Absent means `undefined` or `null`, never 0, NaN, '' or false. */
export function isAbsent(v: unknown): v is undefined | null {
  return v === undefined || v === null;
}

/** A short description of a value for error messages (never throws). */
export function describe(v: unknown): string {
  try {
    if (typeof v === 'bigint') return `${v}n`;
    if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
    if (typeof v === 'function') return 'a function';
    if (v === null) return 'null';
    if (Array.isArray(v)) return `an array of ${v.length}`;
    if (typeof v === 'object') return 'an object';
    return String(v);
  } catch {
    return typeof v;
  }
}

/** STATUS_INVALID_PARAMETER with `.argument` (the platform services' and options' argument error). */
export function invalidOption(operation: string, argument: string, message: string): IommuError {
  return new IommuError('STATUS_INVALID_PARAMETER', `${argument} ${message}`, { operation, argument });
}

/** A ULONG: an integer 0..2^32-1 (no fraction, no coercion). */
export function isUlong(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

/** A flags argument all of whose bits are reserved: exactly 0 or 0n. */
export function isZeroFlags(v: unknown): boolean {
  return v === 0 || v === 0n;
}

/** A non-negative integer count: a safe-integer number or a bigint, as a bigint; else undefined. */
export function countOf(v: unknown): bigint | undefined {
  if (typeof v === 'bigint') return v >= 0n ? v : undefined;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  return undefined;
}

/** A timeout in milliseconds setTimeout can honour (0..2^31-1), or an error naming `argument`. */
export function timeoutMs(v: unknown, operation: string, argument: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
    throw invalidOption(operation, argument, `must be an integer number of milliseconds 0..${0x7fffffff} (got ${describe(v)})`);
  }
  return v;
}

/**
 * A WDK singly-linked list (`next` names the link field) as an array: the head must be an object,
 * each link absent (undefined/null) or an object, and the list must not be circular.
 */
export function linkedList<T extends object>(head: unknown, next: string, op: string, n: number, arg: string): T[] {
  const out: T[] = [];
  const seen = new Set<unknown>();
  let c: unknown = head;
  while (!isAbsent(c)) {
    if (typeof c !== 'object') throw invalidArg(op, n, arg, `entries must be objects (got ${describe(c)})`);
    if (seen.has(c)) throw invalidArg(op, n, arg, 'list is circular');
    seen.add(c);
    out.push(c as T);
    c = (c as Record<string, unknown>)[next];
  }
  return out;
}

/** A WDK BOOLEAN field: true/false or 1/0 (absent is false); anything else is an error. */
export function booleanField(v: unknown, op: string, n: number, arg: string): boolean {
  if (v === undefined || v === false || v === 0) return false;
  if (v === true || v === 1) return true;
  throw invalidArg(op, n, arg, `must be a boolean (got ${describe(v)})`);
}
