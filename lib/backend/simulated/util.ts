/**
 * Constants of the simulator's number arithmetic, and the helpers every backend shares (../shared.ts).
 *
 * Internally the simulator works in `number`s (byte addresses below 2^53, page indexes below
 * 2^52: both exact in a double); `bigint` appears only at the contract boundary.
 */
export { PAGE_SIZE } from '../../util/u64.js';
export const TWO_POW_52 = 2 ** 52;

export { ERR, U64_MAX, checkHandle, checkU64, describe, errnoName, fail, hex, normalizeBdf, parseBdf } from '../shared.js';
