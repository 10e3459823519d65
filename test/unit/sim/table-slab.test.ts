import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PageTable } from '../../../lib/backend/simulated/page-table.js';
import { TableSlab } from '../../../lib/backend/simulated/table-slab.js';

const DOUBLES = 4;
const INITIAL = 2;

/** Every slot of table `t` (a copy). */
function contents(slab: TableSlab, t: number): number[] {
  return [...slab.slots.subarray(t * DOUBLES, (t + 1) * DOUBLES)];
}

describe('TableSlab', () => {
  it('matches a model under random allocate / write / clear+release / trim', () => {
    type Op = ['alloc'] | ['write', number, number, number] | ['release', number] | ['trim'];
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.constant<Op>(['alloc']),
      fc.tuple(fc.constant('write' as const), fc.nat(), fc.nat(DOUBLES - 1), fc.integer({ min: 1, max: 1e6 })),
      fc.tuple(fc.constant('release' as const), fc.nat()),
      fc.constant<Op>(['trim']),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const slab = new TableSlab(DOUBLES, INITIAL);
        expect(slab.allocate()).toBe(0); // the permanent table 0
        // model: live table → its slots and count
        const model = new Map<number, { slots: number[]; count: number }>([[0, { slots: [0, 0, 0, 0], count: 0 }]]);
        for (const o of ops) {
          const live = [...model.keys()];
          if (o[0] === 'alloc') {
            const t = slab.allocate();
            expect(model.has(t)).toBe(false);
            expect(contents(slab, t)).toEqual([0, 0, 0, 0]);
            expect(slab.counts[t]).toBe(0);
            model.set(t, { slots: [0, 0, 0, 0], count: 0 });
          } else if (o[0] === 'write') {
            const t = live[o[1] % live.length];
            const m = model.get(t)!;
            if (m.slots[o[2]] === 0) m.count++;
            m.slots[o[2]] = o[3];
            slab.slots[t * DOUBLES + o[2]] = o[3];
            slab.counts[t] = m.count;
          } else if (o[0] === 'release') {
            if (live.length === 1) continue; // only table 0: never released
            const t = live[1 + (o[1] % (live.length - 1))];
            // the owner empties a table before releasing it
            slab.slots.fill(0, t * DOUBLES, (t + 1) * DOUBLES);
            slab.counts[t] = 0;
            slab.release(t);
            model.delete(t);
          } else {
            slab.trim();
            if (model.size === 1) expect(slab.capacity).toBe(INITIAL);
          }
          expect(slab.live).toBe(model.size);
          expect(slab.capacity).toBeGreaterThanOrEqual(model.size);
          for (const [t, m] of model) {
            expect(slab.isLive(t)).toBe(true);
            expect(contents(slab, t)).toEqual(m.slots);
            expect(slab.counts[t]).toBe(m.count);
          }
          expect(slab.verify()).toBeNull();
        }
      }),
      { numRuns: 200 },
    );
  });

  it('reuses the last released table first, and grows by doubling', () => {
    const slab = new TableSlab(DOUBLES, INITIAL);
    const ts = [slab.allocate(), slab.allocate(), slab.allocate()];
    expect(ts).toEqual([0, 1, 2]);
    expect(slab.capacity).toBe(4);
    slab.release(1);
    slab.release(2);
    expect(slab.isLive(2)).toBe(false);
    expect(slab.allocate()).toBe(2);
    expect(slab.allocate()).toBe(1);
    expect(slab.allocate()).toBe(3);
    expect(slab.capacity).toBe(4);
    expect(slab.allocate()).toBe(4);
    expect(slab.capacity).toBe(8);
  });

  it('trim keeps table 0 and gives the rest back only once table 0 is alone', () => {
    const slab = new TableSlab(DOUBLES, INITIAL);
    slab.allocate();
    slab.slots[1] = 42;
    slab.counts[0] = 1;
    const more = [slab.allocate(), slab.allocate(), slab.allocate()];
    slab.release(more[0]);
    slab.trim(); // two still live: nothing to give back
    expect(slab.capacity).toBe(4);
    slab.release(more[1]);
    slab.release(more[2]);
    slab.trim();
    expect(slab.capacity).toBe(INITIAL);
    expect(contents(slab, 0)).toEqual([0, 42, 0, 0]);
    expect(slab.counts[0]).toBe(1);
    expect(slab.allocate()).toBe(1); // numbering starts over
    expect(slab.verify()).toBeNull();
  });

  it('verify reports a released table that was not emptied', () => {
    const slab = new TableSlab(DOUBLES, INITIAL);
    slab.allocate();
    const t = slab.allocate();
    slab.slots[t * DOUBLES + 2] = 7;
    slab.release(t);
    expect(slab.verify()).toMatch(/non-zero slot 2/);
  });
});

describe('PageTable tables in the slab', () => {
  it('matches a page-set model under random 4 KiB maps and unmaps spread over many tables', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat(63), fc.nat(3)), { maxLength: 400 }), (ops) => {
        const pt = new PageTable(4, true, true);
        const model = new Set<number>();
        for (const [map, a, b] of ops) {
          // pages in 64 different level-1 tables under 4 different level-2 tables
          const page = a * 512 * 512 + b * 512 + (a ^ b);
          if (map) {
            expect(pt.tryInsert4K(page, (page + 1) * 4096 + 3)).toBe(!model.has(page));
            model.add(page);
          } else {
            expect(pt.removeAreaAt(page, 1, null)).toBe(model.delete(page) ? 1 : -1);
          }
          expect(pt.verify()).toBeNull();
        }
        for (const page of model) expect(pt.lookup(page)).toBe((page + 1) * 4096 + 3);
        expect(pt.leaves[1]).toBe(model.size);
        expect(pt.clearRange(0, pt.reach - 1, null)).toBe(model.size);
        expect(pt.empty).toBe(true);
        expect(pt.tables).toEqual([0, 0, 0, 0, 1]);
        expect(pt.verify()).toBeNull();
      }),
      { numRuns: 100 },
    );
  });

  it('grows past its initial tables, empties, and maps again', () => {
    const pt = new PageTable(3, false, false);
    const pages = Array.from({ length: 100 }, (_, i) => i * 512 * 3);
    for (const p of pages) expect(pt.tryInsert4K(p, 4096 + 1)).toBe(true);
    expect(pt.tables[1]).toBe(100);
    expect(pt.verify()).toBeNull();
    for (const p of pages) expect(pt.removeAreaAt(p, 1, null)).toBe(1);
    expect(pt.tables).toEqual([0, 0, 0, 1]);
    expect(pt.verify()).toBeNull();
    expect(pt.tryInsert4K(7, 4096 + 1)).toBe(true);
    expect(pt.lookup(7)).toBe(4096 + 1);
    expect(pt.verify()).toBeNull();
  });
});
