import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PhysicalRun } from '../../../lib/backend/contract.js';
import { PFN_MEMO_MIN_PAGES, pfnRuns, scanPfnRuns } from '../../../lib/core/pfn-runs.js';

/** The definition: page after page, extending the last run when the PFN follows it. */
function model(pfns: readonly bigint[]): PhysicalRun[] | number {
  const runs: { pa: bigint; length: bigint }[] = [];
  for (let i = 0; i < pfns.length; i++) {
    const pfn = pfns[i]!;
    if (pfn > (2n ** 64n - 1n) >> 12n) return i;
    const last = runs[runs.length - 1];
    if (last && last.pa + last.length === pfn << 12n) last.length += 4096n;
    else runs.push({ pa: pfn << 12n, length: 4096n });
  }
  return runs;
}

/** PFN lists made of a few runs (contiguous stretches around 2^31 and 2^32 included) and stray values. */
const pfnLists = fc
  .array(
    fc.record({
      start: fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 20n }), fc.bigInt({ min: 2n ** 31n - 40n, max: 2n ** 32n + 40n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
      pages: fc.integer({ min: 1, max: 120 }),
    }),
    { minLength: 1, maxLength: 8 },
  )
  .map((parts) => parts.flatMap(({ start, pages }) => Array.from({ length: pages }, (_, k) => BigInt.asUintN(64, start + BigInt(k)))));

describe('PFN list → runs', () => {
  it('the 32-bit scan gives the same runs (or the first invalid index) as the page-by-page definition', () => {
    fc.assert(
      fc.property(pfnLists, (pfns) => {
        expect(scanPfnRuns(BigUint64Array.from(pfns), pfns.length)).toEqual(model(pfns));
      }),
      { numRuns: 300 },
    );
  });

  it('the memo returns what a fresh scan returns, through repeats and edits between calls', () => {
    fc.assert(
      fc.property(
        pfnLists.filter((p) => p.length >= PFN_MEMO_MIN_PAGES),
        fc.array(fc.record({ at: fc.nat(), value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), edit: fc.boolean(), shorter: fc.nat({ max: 3 }) }), { maxLength: 12 }),
        (pfns, steps) => {
          const list = BigUint64Array.from(pfns);
          for (const s of steps) {
            if (s.edit) list[s.at % list.length] = s.value;
            const n = list.length - s.shorter;
            const got = pfnRuns(list, n);
            expect(got).toEqual(scanPfnRuns(list.slice(0, n), n));
            // the caller owns the array it gets: changing it must not change the next answer
            if (typeof got !== 'number') got.length = 0;
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('a list mapped again unchanged reuses frozen runs; an edit after the snapshot is seen', () => {
    const list = new BigUint64Array(4096);
    for (let i = 0; i < list.length; i++) list[i] = 0x10000n + BigInt(i);
    const first = pfnRuns(list, list.length) as PhysicalRun[];
    const second = pfnRuns(list, list.length) as PhysicalRun[]; // snapshot taken here
    const third = pfnRuns(list, list.length) as PhysicalRun[]; // compared, reused
    expect(first).toEqual([{ pa: 0x10000000n, length: 0x1000000n }]);
    expect(third).toEqual(first);
    expect(third).not.toBe(second);
    expect(third[0]).toBe(second[0]);
    expect(Object.isFrozen(third[0])).toBe(true);
    list[100] = 0x99999n;
    expect(pfnRuns(list, list.length)).toEqual([
      { pa: 0x10000000n, length: 100n * 4096n },
      { pa: 0x99999000n, length: 4096n },
      { pa: 0x10065000n, length: 3995n * 4096n },
    ]);
    list[5] = 2n ** 60n;
    expect(pfnRuns(list, list.length)).toBe(5);
  });
});
