/**
 * Constants of the simulator's number arithmetic, and the helpers every backend shares (../shared.ts).
 *
 * Internally the simulator works in `number`s (byte addresses below 2^53, page indexes below
 * 2^52: both exact in a double); `bigint` appears only at the contract boundary.
 */
export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;
/** 2^53 as bigint: below it, `Number(x)` is exact. */
export const SAFE_LIMIT = 1n << 53n;
export const TWO_POW_52 = 2 ** 52;

export { ERR, U64_MAX, checkHandle, checkU64, describe, errnoName, fail, hex, normalizeBdf, parseBdf } from '../shared.js';
