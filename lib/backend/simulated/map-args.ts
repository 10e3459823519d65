/**
 * The general-path argument checks of map and unmap, in the kernel's order (the fast paths in
 * backend.ts take only arguments these would accept, and decide the same way).
 */
import type { PhysicalRun } from '../contract.js';
import type { SimDomain } from './domain.js';
import { SIM_SYSCALLS } from './injection.js';
import { describe, ERR, fail, hex, U64_MAX } from './util.js';

const MAP = SIM_SYSCALLS.map;
const UNMAP = SIM_SYSCALLS.unmap;

/** map's checks before the domain is looked up; returns the total length of the runs. */
export function checkMapArgs(iova: bigint, runs: readonly PhysicalRun[], perms: number): bigint {
  if (typeof iova !== 'bigint') throw new TypeError(`iova must be a bigint, got ${describe(iova)}`);
  if (!Array.isArray(runs)) throw new TypeError(`runs must be an array of { pa, length }, got ${describe(runs)}`);
  if (typeof perms !== 'number' || !Number.isInteger(perms)) throw new TypeError(`perms must be an integer, got ${describe(perms)}`);
  let length = 0n;
  for (const r of runs) {
    if (r === null || typeof r !== 'object') throw new TypeError('each run must be an object { pa: bigint, length: bigint }');
    if (typeof r.pa !== 'bigint' || typeof r.length !== 'bigint') throw new TypeError('run.pa and run.length must be bigints');
    if (r.pa < 0n || r.length < 0n) fail(ERR.EINVAL, MAP, 'negative run address or length');
    length += r.length;
  }
  if (iova < 0n) fail(ERR.EINVAL, MAP, `iova is negative (${iova})`);
  if (iova >= U64_MAX || length >= U64_MAX) fail(ERR.EOVERFLOW, MAP, `iova ${hex(iova)} or length ${hex(length)} ≥ 2^64-1`);
  if (perms < 0) fail(ERR.EINVAL, MAP, `perms ${perms} is negative`);
  if ((perms & ~3) !== 0) fail(ERR.EOPNOTSUPP, MAP, `unknown permission bits in ${hex(perms)}`);
  if ((perms & 3) === 0) fail(ERR.EINVAL, MAP, `perms ${perms} grants neither read nor write`);
  return length;
}

/** map's check after the domain lookup: no empty run. */
export function checkRunLengths(runs: readonly PhysicalRun[]): void {
  for (const r of runs) if (r.length === 0n) fail(ERR.EINVAL, MAP, 'a run has length 0');
}

/**
 * The page-number lane's argument checks (mapPageRun, unmapPageRange): int32 page numbers, as the
 * platform's fast paths produce them (alignedPage). Integer tests only: nothing is converted.
 */
export function checkPageRun(page: number, pages: number, pfn: number, perms: number): void {
  checkPageRange(page, pages);
  if ((pfn | 0) !== pfn || pfn < 0) throw new RangeError(`pfn must be an integer page number in 0..2^31-1, got ${describe(pfn)}`);
  if (perms !== 1 && perms !== 2 && perms !== 3) throw new RangeError(`perms must be 1, 2 or 3, got ${describe(perms)}`);
}

export function checkPageRange(page: number, pages: number): void {
  if ((page | 0) !== page || page < 0) throw new RangeError(`page must be an integer page number in 0..2^31-1, got ${describe(page)}`);
  if ((pages | 0) !== pages || pages < 1) throw new RangeError(`pages must be an integer in 1..2^31-1, got ${describe(pages)}`);
}

/** A page number (or count) as a byte address (the lane's fallback to the bigint paths). */
export function pageAddress(page: number): bigint {
  return BigInt(page) << 12n;
}

export function unmapTypeError(iova: unknown, length: unknown): never {
  if (typeof iova !== 'bigint') throw new TypeError(`iova must be a bigint, got ${describe(iova)}`);
  throw new TypeError(`length must be a bigint, got ${describe(length)}`);
}

/** unmap's general case (kept out of unmap so V8 can inline its fast path). */
export function unmapGeneral(d: SimDomain, iova: bigint, length: bigint): bigint {
  if (iova < 0n || length < 0n) fail(ERR.EINVAL, UNMAP, 'negative iova or length');
  if (iova === 0n && length === U64_MAX) return d.unmapSlow(0n, U64_MAX, true);
  if (iova >= U64_MAX || length >= U64_MAX) fail(ERR.EOVERFLOW, UNMAP, `iova ${hex(iova)} or length ${hex(length)} ≥ 2^64-1`);
  return d.unmapSlow(iova, length);
}
