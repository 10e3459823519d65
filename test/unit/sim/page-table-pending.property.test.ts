/**
 * The page table's pending chain (page-table.ts, "Emptied tables"): the tables a one-page unmap
 * empties stay linked until the next operation, which takes them back (a one-page map down the
 * same chain) or frees them first. That must be invisible: the same random sequence runs on a
 * table observed after every operation (its `tables` read settles any pending chain at once, as
 * the old eager freeing did) and on one observed only now and then, with nothing in between
 * that settles it; every result (inserts, removals, lookups, ranges, hits) must agree, and at
 * every observation both must have the same tables per level, leaves, leaf list and a sound
 * structure (`verify`: exact counts, no empty table kept, free tables zeroed).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PageTable } from '../../../lib/backend/simulated/page-table.js';

type Op =
  | { op: 'insert'; page: number }
  | { op: 'remove'; page: number; pages: number }
  | { op: 'lookup'; page: number }
  | { op: 'mapRun'; page: number; pages: number }
  | { op: 'clear'; page: number; pages: number }
  | { op: 'first'; page: number; pages: number }
  | { op: 'any'; page: number; pages: number }
  | { op: 'observe' };

// pages in a few level-1 tables under a few level-2 and level-3 tables (4 levels), and 2 MiB-aligned ones
const pageArb = fc.oneof(
  fc.tuple(fc.nat(2), fc.nat(2), fc.nat(3)).map(([a, b, c]) => a * 512 * 512 + b * 512 + c),
  fc.tuple(fc.nat(2), fc.nat(2)).map(([a, b]) => a * 512 * 512 + b * 512),
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('insert' as const), page: pageArb }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('remove' as const), page: pageArb, pages: fc.constantFrom(1, 1, 1, 2, 512) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('lookup' as const), page: pageArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('mapRun' as const), page: pageArb, pages: fc.constantFrom(2, 3, 512) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('clear' as const), page: pageArb, pages: fc.constantFrom(1, 4, 512) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('first' as const), page: pageArb, pages: fc.constantFrom(1, 600) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('any' as const), page: pageArb, pages: fc.constantFrom(1, 600) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'observe' as const }) },
);

function apply(pt: PageTable, o: Op): unknown {
  switch (o.op) {
    case 'insert':
      return pt.tryInsert4K(o.page, (o.page + 1) * 4096 + 3);
    case 'remove':
      return [pt.removeAreaAt(o.page, o.pages, null), pt.clearedAreas];
    case 'lookup':
      return [pt.lookup(o.page), pt.hitLevel, pt.hitBase, pt.hitMark];
    case 'mapRun':
      // only into an empty range, as its callers do
      if (pt.anyInRange(o.page, o.page + o.pages - 1)) return 'taken';
      pt.mapRun(o.page, o.page + 7, o.pages, 1, o.page, o.pages);
      return 'mapped';
    case 'clear': {
      // callers clear unions of whole areas: widen to the areas at both ends
      let first = o.page;
      let last = o.page + o.pages - 1;
      if (pt.firstPresent(first, last) >= 0) first = Math.min(first, pt.hitAreaStart());
      if (pt.lastPresent(first, last) >= 0) {
        const start = pt.hitAreaStart();
        last = Math.max(last, start + pt.areaPagesAt(start) - 1);
      }
      return [pt.clearRange(first, last, null), pt.clearedAreas];
    }
    case 'first':
      return [pt.firstPresent(o.page, o.page + o.pages - 1), pt.hitPte];
    case 'any':
      return pt.anyInRange(o.page, o.page + o.pages - 1);
    case 'observe':
      return 'observed';
  }
}

function observe(pt: PageTable): unknown {
  const leaves: number[][] = [];
  pt.forEachLeaf((page, level, pte, mark) => leaves.push([page, level, pte, mark]));
  return { tables: [...pt.tables], leaves: [...pt.leaves], empty: pt.empty, list: leaves, verify: pt.verify() };
}

describe('page table: the pending chain of emptied tables is invisible', () => {
  it('same results and the same observed state as freeing at once', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 120 }), (ops) => {
        const eager = new PageTable(4, true, true);
        const lazy = new PageTable(4, true, true);
        for (const o of ops) {
          const r = apply(lazy, o);
          expect(apply(eager, o), JSON.stringify(o)).toEqual(r);
          const e = observe(eager); // settles the eager table after every step
          expect(e).toMatchObject({ verify: null });
          if (o.op === 'observe') expect(observe(lazy)).toEqual(e);
        }
        expect(observe(lazy)).toEqual(observe(eager));
        expect(lazy.clearRange(0, lazy.reach - 1, null)).toBe(eager.clearRange(0, eager.reach - 1, null));
        expect(observe(lazy)).toEqual({ tables: [0, 0, 0, 0, 1], leaves: [0, 0, 0, 0, 0], empty: true, list: [], verify: null });
      }),
      { numRuns: 300 },
    );
  });

  it('a map/unmap loop in an empty table takes its chain back instead of building a new one', () => {
    const pt = new PageTable(4, true, true);
    for (let i = 0; i < 1000; i++) {
      expect(pt.tryInsert4K(0x40000 + (i % 7), 0x1000 * (i + 1) + 3)).toBe(true);
      expect(pt.removeAreaAt(0x40000 + (i % 7), 1, null)).toBe(1);
    }
    expect(pt.tables).toEqual([0, 0, 0, 0, 1]); // counted out when they emptied
    expect(pt.verify()).toBeNull();
    // a map elsewhere after a pending chain: the chain is freed, the new one built
    pt.tryInsert4K(5, 0x1000 + 3);
    pt.removeAreaAt(5, 1, null);
    expect(pt.tryInsert4K(512 * 512 * 3 + 9, 0x2000 + 3)).toBe(true);
    expect(pt.tables).toEqual([0, 1, 1, 1, 1]);
    expect(pt.verify()).toBeNull();
  });
});
