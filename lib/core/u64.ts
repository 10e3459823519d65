/**
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

const TWO_POW_43 = 1n << 43n;

/**
 * The 4 KiB page number of `x` when `x` is page-aligned and below 2^43 (8 TiB): an int32, from
 * 32-bit integer operations only (no floating point: under an emulator such as QEMU TCG, double
 * arithmetic is done in software and dominates a hot path). Otherwise -1.
 */
export function alignedPage(x: bigint): number {
  if (x < 0n || x >= TWO_POW_43) return -1;
  u64[0] = x;
  const lo = u32[LO];
  if ((lo & 4095) !== 0) return -1;
  return (u32[HI] << 20) | (lo >>> 12);
}
