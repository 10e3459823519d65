/**
 * Helpers every backend shares: negative errno constants, the BackendError thrower, argument
 * checks at the contract boundary, PCI address parsing, hex and value formatting.
 */
import { BackendError } from '../errors.js';
import { ERR, errnoName } from '../util/errno.js';
import { U64_MAX, hex } from '../util/u64.js';

export { ERR, U64_MAX, errnoName, hex };

export function fail(errno: number, syscall: string, message?: string): never {
  throw new BackendError(errno, syscall, message);
}

/** A handle argument: an integer (TypeError otherwise). Unknown values are the caller's ENOENT. */
export function checkHandle(h: unknown, what: string): asserts h is number {
  if (typeof h !== 'number' || !Number.isInteger(h)) {
    throw new TypeError(`${what} must be an integer handle, got ${describe(h)}`);
  }
}

/** A u64 argument: bigint in [0, 2^64-1]. TypeError for other types, EINVAL when negative. */
export function checkU64(v: unknown, what: string, syscall: string): asserts v is bigint {
  if (typeof v !== 'bigint') throw new TypeError(`${what} must be a bigint, got ${describe(v)}`);
  if (v < 0n) fail(ERR.EINVAL, syscall, `${what} is negative (${v})`);
  if (v > U64_MAX) fail(ERR.EOVERFLOW, syscall, `${what} does not fit in 64 bits (${hex(v)})`);
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'object') return Array.isArray(v) ? 'an array' : 'an object';
  return `${typeof v} ${String(v)}`;
}

/** Parse a PCI address 'dddd:bb:dd.f' (domain optional). Returns null when malformed. */
export function parseBdf(bdf: string): { segment: number; bus: number; dev: number; fn: number } | null {
  const m = /^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$/.exec(bdf);
  if (!m) return null;
  const segment = m[1] === undefined ? 0 : parseInt(m[1], 16);
  const bus = parseInt(m[2], 16);
  const dev = parseInt(m[3], 16);
  const fn = parseInt(m[4], 10);
  if (dev > 31) return null;
  return { segment, bus, dev, fn };
}

export function normalizeBdf(bdf: string): string | null {
  const p = parseBdf(bdf);
  if (!p) return null;
  const h = (n: number, w: number): string => n.toString(16).padStart(w, '0');
  return `${h(p.segment, 4)}:${h(p.bus, 2)}:${h(p.dev, 2)}.${p.fn}`;
}
