/**
 * 64-bit and page arithmetic shared by every layer (the bottom layer: imports nothing of the
 * package). The constants, `hex`, and the bigint → number conversions of the hot paths.
 */

/** 2^64 − 1, the largest u64. */
export const U64_MAX = (1n << 64n) - 1n;
/** The 4 KiB page, as a bigint (addresses and sizes at the API are bigints) and as a number. */
export const PAGE = 4096n;
export const PAGE_SIZE = 4096;
/** PAGE − 1: `(x & PAGE_MASK) === 0n` for page-aligned `x`. */
export const PAGE_MASK = PAGE - 1n;

/** `0x…` of a bigint or number, for messages. */
export function hex(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}

/*
 * bigint → number without `Number(bigint)`, which V8 (11.x) does not inline: it costs a runtime
 * call (~45 ns) where a store into a BigUint64Array and two 32-bit reads cost ~10 ns. Used by
 * the map/unmap hot paths, which take every address as a bigint.
 */
const u64 = new BigUint64Array(1);
const u32 = new Uint32Array(u64.buffer);
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const LO = LITTLE ? 0 : 1;
const HI = LITTLE ? 1 : 0;
const TWO_POW_53 = 1n << 53n;

/** `x` as an exact number when 0 ≤ x < 2^53; otherwise -1. `x` must be a bigint. */
export function exactNumber(x: bigint): number {
  if (x < 0n || x >= TWO_POW_53) return -1;
  u64[0] = x;
  return u32[HI] * 4294967296 + u32[LO];
}

/**
 * The 4 KiB page number of `x` when `x` is page-aligned and below 2^43 (8 TiB): an int32, from
 * 32-bit integer operations only (no floating point: under an emulator such as QEMU TCG, double
 * arithmetic is done in software and dominates a hot path). Otherwise -1.
 *
 * One bigint comparison, not two: `BigInt.asUintN(64, x) === x` holds exactly for 0 ≤ x < 2^64,
 * the values the 64-bit store keeps unchanged; the stored high word then bounds x below 2^43.
 * V8 compiles asUintN(64) to a truncation and the comparison to a 64-bit one, where `x < 0n ||
 * x >= 2n ** 43n` converts x and both constants twice (~2 ns more per call, 9 calls per 4 KiB
 * map + unmap pair through the simulator).
 */
export function alignedPage(x: bigint): number {
  if (BigInt.asUintN(64, x) !== x) return -1;
  u64[0] = x;
  const lo = u32[LO];
  const hi = u32[HI];
  if ((lo & 4095) !== 0 || hi >= 2048) return -1;
  return (hi << 20) | (lo >>> 12);
}
