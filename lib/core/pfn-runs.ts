/**
 * A PFN list (an MDL's PfnArray, or IOMMU_MAP_PHYSICAL_ADDRESS.PfnArray.PageFrame) as coalesced
 * physically contiguous runs, for BigUint64Array lists: a tight 32-bit scan, and a memo for
 * lists that are mapped again unchanged.
 *
 * Why the memo: drivers map the same buffers over and over (rings, bounce buffers, a 256 MiB
 * capture buffer per acquisition), each time describing them by the same MDL. The scan is O(pages)
 * in JavaScript (~40 ns a page under QEMU TCG: ~2.5 ms for a 256 MiB MDL, a tenth of what the
 * kernel's own map+unmap of it costs there). A list seen for the second time gets a snapshot of its
 * bytes; from then on, a `memcmp` against the snapshot (Buffer.equals, native code: ~6 ns a page
 * under TCG) proves it unchanged and the runs computed from the snapshot are reused. A changed list
 * is scanned again and re-snapshotted: the memo never returns runs for contents it did not scan.
 * Memory: one copy of the list (8 bytes a page), only for lists mapped at least twice, held weakly
 * (it goes when the list does).
 */
import { Buffer } from 'node:buffer';
import type { PhysicalRun } from '../backend/contract.js';
import { PAGE } from '../util/u64.js';

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const LO = LITTLE_ENDIAN ? 0 : 1;
const HI = LITTLE_ENDIAN ? 1 : 0;

/** Below this many pages the scan costs less than keeping and comparing a snapshot. */
export const PFN_MEMO_MIN_PAGES = 256;

/**
 * The first `n` PFNs of `list` as coalesced runs (the same result as appending page after page),
 * computed on 32-bit halves: no BigInt per page, one run object per physical run. Returns the index
 * of the first invalid PFN (one above (2^64 - 1) >> 12) instead when there is one.
 */
export function scanPfnRuns(list: BigUint64Array, n: number): PhysicalRun[] | number {
  // Int32Array: loads are signed 32-bit, so the run test below stays in int32 arithmetic (a
  // Uint32 load plus one can exceed int32, and V8 then compares in doubles)
  const w = new Int32Array(list.buffer, list.byteOffset, n * 2);
  const runs: PhysicalRun[] = [];
  let start = -1; // first PFN of the open run
  let pages = 0;
  // The PFN that extends the open run when it is below 2^31 (PAs below 8 TiB), else -1: the
  // common case is then 32-bit integer compares only (no doubles, which an emulator such as
  // QEMU TCG computes in software).
  let expect = -1;
  for (let i = 0; i < n; i++) {
    const lo = w[2 * i + LO];
    if (lo === expect && expect > 0 && w[2 * i + HI] === 0) {
      pages++;
      expect = (lo + 1) | 0;
      continue;
    }
    const hi = w[2 * i + HI];
    // valid PFNs are ≤ (2^64 - 1) >> 12, i.e. below 2^52: the high word in [0, 2^20)
    if (hi < 0 || hi >= 0x100000) return i;
    const pfn = hi * 4294967296 + (lo >>> 0);
    if (start >= 0 && pfn === start + pages) {
      pages++;
      continue;
    }
    if (start >= 0) runs.push({ pa: BigInt(start) * PAGE, length: BigInt(pages) * PAGE });
    start = pfn;
    pages = 1;
    expect = hi === 0 && lo >= 0 && lo < 0x7fffffff ? (lo + 1) | 0 : -1;
  }
  if (start >= 0) runs.push({ pa: BigInt(start) * PAGE, length: BigInt(pages) * PAGE });
  return runs;
}

interface Snapshot {
  /** The list's first `bytes.length / 8` entries when `runs` was computed. */
  readonly bytes: Buffer;
  /** Frozen; callers get a fresh array of these. */
  readonly runs: readonly PhysicalRun[];
}

/** Lists seen once (undefined) or snapshotted, keyed weakly by the list itself. */
const memo = new WeakMap<BigUint64Array, Snapshot | undefined>();

/** `scanPfnRuns`, remembered across calls for lists mapped again unchanged (see the file comment). */
export function pfnRuns(list: BigUint64Array, n: number): PhysicalRun[] | number {
  if (n < PFN_MEMO_MIN_PAGES) return scanPfnRuns(list, n);
  const view = Buffer.from(list.buffer, list.byteOffset, n * 8);
  const snap = memo.get(list);
  if (snap !== undefined && snap.bytes.length === view.length && snap.bytes.equals(view)) return snap.runs.slice();
  if (snap === undefined && !memo.has(list)) {
    // first sight: scan only; a snapshot is worth its memory once the list comes back
    memo.set(list, undefined);
    return scanPfnRuns(list, n);
  }
  // second sight, or changed since the snapshot: copy first, then scan the copy, so the runs
  // describe exactly the bytes the snapshot holds
  const copy = list.slice(0, n);
  const bytes = Buffer.from(copy.buffer, copy.byteOffset, n * 8);
  const runs = scanPfnRuns(copy, n);
  if (typeof runs === 'number') {
    memo.set(list, undefined);
    return runs;
  }
  for (const r of runs) Object.freeze(r);
  memo.set(list, { bytes, runs });
  return runs.slice();
}
