import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Claim, ClaimKind, IovaSpace, pageRanges } from '../../../lib/core/iova-space.js';

const usable = pageRanges([
  { start: 0n, last: 0xfedfffffn },
  { start: 0xfef00000n, last: 0x7fffffffffn },
]);

describe('IovaSpace allocator', () => {
  it('returns the lowest aligned free block within bounds, never overlapping (model check)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('alloc' as const), pages: fc.integer({ min: 1, max: 9 }), lo: fc.integer({ min: 0, max: 64 }), span: fc.integer({ min: 1, max: 200 }) }),
            fc.record({ op: fc.constant('free' as const), which: fc.nat() }),
          ),
          { maxLength: 200 },
        ),
        (ops) => {
          const space = new IovaSpace();
          const live: Claim[] = [];
          const used = new Set<number>();
          for (const o of ops) {
            if (o.op === 'alloc') {
              let align = 1;
              while (align < o.pages) align *= 2;
              const hi = o.lo + o.span;
              const p = space.allocate(o.pages, align, o.lo, hi, usable);
              // model: lowest aligned p in [lo, hi-pages+1] with all pages free
              let expected = -1;
              for (let q = Math.ceil(o.lo / align) * align; q + o.pages - 1 <= hi; q += align) {
                let free = true;
                for (let i = 0; i < o.pages; i++) if (used.has(q + i)) free = false;
                if (free) {
                  expected = q;
                  break;
                }
              }
              expect(p).toBe(expected);
              if (p >= 0) {
                const c = new Claim(p, o.pages, ClaimKind.Logical, 3, 1, null, true);
                space.insert(c);
                live.push(c);
                for (let i = 0; i < o.pages; i++) used.add(p + i);
              }
            } else if (live.length) {
              const c = live.splice(o.which % live.length, 1)[0];
              space.remove(c);
              for (let i = 0; i < c.pages; i++) used.delete(c.start + i);
            }
          }
          // conflict() agrees with the model for every page
          for (let q = 0; q < 300; q++) expect(!!space.conflict(q, 1)).toBe(used.has(q));
        },
      ),
      { numRuns: 80 },
    );
  });

  it('skips the MSI window hole between usable ranges', () => {
    const space = new IovaSpace();
    const msiPage = 0xfee00;
    const p = space.allocate(0x200, 0x200, msiPage - 0x100, msiPage + 0x10000, usable);
    expect(p).toBeGreaterThanOrEqual(0xfef00);
    expect(p % 0x200).toBe(0);
  });
});
