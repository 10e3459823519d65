import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OrderedIndex } from '../../../lib/util/ordered-index.js';

describe('OrderedIndex', () => {
  it('matches a sorted-array model under random inserts, deletes and queries', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('set', 'del', 'q'), fc.integer({ min: 0, max: 3000 })), { maxLength: 1500 }),
        (ops) => {
          const idx = new OrderedIndex<number>();
          const model = new Map<number, number>();
          for (const [op, k] of ops) {
            if (op === 'set') {
              idx.set(k, k * 2);
              model.set(k, k * 2);
            } else if (op === 'del') {
              expect(idx.delete(k)).toBe(model.delete(k));
            } else {
              const keys = [...model.keys()].sort((a, b) => a - b);
              const floor = keys.filter((x) => x <= k).at(-1);
              const ceil = keys.find((x) => x >= k);
              expect(idx.floorKey(k)).toBe(floor);
              expect(idx.ceilKey(k)).toBe(ceil);
            }
          }
          expect([...idx.values()]).toEqual([...model.keys()].sort((a, b) => a - b).map((k) => k * 2));
          expect(idx.size).toBe(model.size);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('stays ordered across many blocks', () => {
    const idx = new OrderedIndex<number>();
    for (let i = 100_000; i > 0; i -= 3) idx.set(i, i);
    let prev = -1;
    for (const v of idx.values()) {
      expect(v).toBeGreaterThan(prev);
      prev = v;
    }
    expect([...idx.range(10, 20)]).toEqual([10, 13, 16, 19]);
    expect(idx.floorKey(0)).toBeUndefined();
    expect(idx.ceilKey(100_001)).toBeUndefined();
  });
});
