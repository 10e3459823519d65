import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AreaIndex } from '../../../lib/backend/native/areas.js';

interface A {
  iova: bigint;
  end: bigint;
  endPage: number;
}

describe('native AreaIndex', () => {
  it('answers firstEndingAfter, overlapping, overlapsPages and atPage like a sorted array', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 1, max: 5 })), { maxLength: 60 }), fc.array(fc.tuple(fc.integer({ min: 0, max: 210 * 4096 }), fc.integer({ min: 1, max: 8 * 4096 })), { maxLength: 30 }), (adds, queries) => {
        const idx = new AreaIndex<A>();
        const model: A[] = [];
        for (const [p, n] of adds) {
          const a = { iova: BigInt(p) * 4096n, end: BigInt(p + n) * 4096n, endPage: p + n };
          if (model.some((m) => m.iova < a.end && a.iova < m.end)) continue;
          idx.insert(a);
          model.push(a);
          model.sort((x, y) => (x.iova < y.iova ? -1 : 1));
        }
        // remove every third area
        for (const a of model.filter((_, i) => i % 3 === 0)) idx.remove(a);
        const left = model.filter((_, i) => i % 3 !== 0);
        expect(idx.length).toBe(left.length);
        expect([...idx]).toEqual(left);
        for (const [q, len] of queries) {
          const iova = BigInt(q);
          const end = iova + BigInt(len);
          expect(idx.firstEndingAfter(iova)).toBe(left.find((a) => a.end > iova));
          expect(idx.overlapping(iova, end)).toEqual(left.filter((a) => a.end > iova && a.iova < end));
          const first = Math.floor(q / 4096);
          const endPage = first + Math.ceil(len / 4096);
          expect(idx.overlapsPages(first, endPage)).toBe(left.some((a) => a.endPage > first && a.iova < BigInt(endPage) * 4096n));
          expect(idx.atPage(first)).toBe(left.find((a) => a.iova === BigInt(first) * 4096n));
        }
      }),
      { numRuns: 150 },
    );
  });
});
