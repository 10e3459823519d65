import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Claim, ClaimKind, IovaSpace, type PageRange, pageRanges } from '../../../lib/core/iova-space.js';

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

  it('places exactly as a brute-force reference allocator over random alloc/free/insert/geometry sequences', () => {
    // usable range sets the sequence switches between (a geometry change voids the allocator's proofs)
    const geometries: PageRange[][] = [
      [{ start: 0, last: 400 }],
      [
        { start: 0, last: 37 },
        { start: 45, last: 120 },
        { start: 130, last: 400 },
      ],
      [
        { start: 3, last: 3 },
        { start: 8, last: 300 },
      ],
    ];
    const op = fc.oneof(
      { weight: 6, arbitrary: fc.record({ op: fc.constant('alloc' as const), pages: fc.integer({ min: 1, max: 12 }), lo: fc.integer({ min: 0, max: 40 }), hi: fc.integer({ min: 0, max: 420 }), keep: fc.integer({ min: 0, max: 9 }) }) },
      { weight: 3, arbitrary: fc.record({ op: fc.constant('free' as const), which: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('insert' as const), at: fc.integer({ min: 0, max: 400 }), pages: fc.integer({ min: 1, max: 5 }) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('geometry' as const), which: fc.nat({ max: geometries.length - 1 }) }) },
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 100, maxLength: 400, size: "max" }), (ops) => {
        const space = new IovaSpace();
        const live: Claim[] = [];
        const used = new Set<number>();
        let usableNow = geometries[0];
        const free = (q: number, n: number): boolean => {
          for (let i = 0; i < n; i++) if (used.has(q + i)) return false;
          return true;
        };
        const inOneRange = (q: number, n: number): boolean => usableNow.some((r) => q >= r.start && q + n - 1 <= r.last);
        const take = (c: Claim): void => {
          space.insert(c);
          live.push(c);
          for (let i = 0; i < c.pages; i++) used.add(c.start + i);
        };
        for (const o of ops) {
          if (o.op === 'alloc') {
            let align = 1;
            while (align < o.pages) align *= 2;
            const p = space.allocate(o.pages, align, o.lo, o.hi, usableNow);
            let expected = -1;
            for (let q = Math.ceil(o.lo / align) * align; q + o.pages - 1 <= o.hi; q += align) {
              if (free(q, o.pages) && inOneRange(q, o.pages)) {
                expected = q;
                break;
              }
            }
            expect(p).toBe(expected);
            // keep 0: the kernel map failed, so the placement is not claimed after all
            if (p >= 0 && o.keep !== 0) take(new Claim(p, o.pages, ClaimKind.Logical, 3, 1, null, true));
          } else if (o.op === 'free') {
            if (live.length === 0) continue;
            const c = live.splice(o.which % live.length, 1)[0];
            space.remove(c);
            for (let i = 0; i < c.pages; i++) used.delete(c.start + i);
          } else if (o.op === 'insert') {
            // an explicit placement (identity map, token, reserved region): any free run, unaligned
            if (free(o.at, o.pages)) take(new Claim(o.at, o.pages, ClaimKind.Identity, 3, 1, null, true));
          } else {
            // a fresh array with the same content must not void anything; new content must
            usableNow = geometries[o.which].map((r) => ({ ...r }));
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a run of same-sized Buddy placements does not rescan what lies below (claim lookups stay O(1) per placement)', () => {
    const space = new IovaSpace();
    let lookups = 0;
    const conflict = space.conflict.bind(space);
    space.conflict = (s: number, n: number) => {
      lookups++;
      return conflict(s, n);
    };
    for (let i = 0; i < 5000; i++) {
      const p = space.allocate(1, 1, 1, 2 ** 27, usable);
      expect(p).toBe(i + 1);
      space.insert(new Claim(p, 1, ClaimKind.Logical, 3, 1, null, true));
    }
    // each placement: the last placed page (now taken) and the next one
    expect(lookups).toBeLessThanOrEqual(2 * 5000);
    // freeing a low page makes it the next answer; the proof above it survives
    const c = space.at(100)!;
    space.remove(c);
    lookups = 0;
    expect(space.allocate(1, 1, 1, 2 ** 27, usable)).toBe(100);
    space.insert(new Claim(100, 1, ClaimKind.Logical, 3, 1, null, true));
    expect(space.allocate(1, 1, 1, 2 ** 27, usable)).toBe(5001);
    expect(lookups).toBeLessThanOrEqual(8);
  });
});
