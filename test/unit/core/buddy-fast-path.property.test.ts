/**
 * MapLogicalRangeEx into a Buddy-allocator domain has a fast path (one contiguous range, no
 * Explicit/Min/Max) beside the general path. Both must place exactly alike and fail alike: the same
 * random sequence of maps and unmaps runs on two domains, one fed ContiguousRange descriptions (fast
 * path) and one fed PFN arrays of the same pages (general path); every returned address and status
 * code must agree, including when the small address space runs out.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DomainTypeTranslate,
  IommuDmaLogicalAllocatorBuddy,
  IommuError,
} from '../../../lib/index.js';
import { withSimV2 } from './helpers.js';

type Op = { op: 'map'; pages: number; src: number; perms: number } | { op: 'unmap'; which: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('map' as const), pages: fc.integer({ min: 1, max: 9 }), src: fc.integer({ min: 0, max: 7 }), perms: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('unmap' as const), which: fc.nat() }) },
);

function outcome(f: () => bigint): string {
  try {
    return `ok ${f().toString(16)}`;
  } catch (e) {
    if (!(e instanceof IommuError)) throw e;
    return e.code;
  }
}

describe('Buddy placement: fast path and general path agree', () => {
  it('same addresses and status codes over random map/unmap sequences (incl. exhaustion)', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        withSimV2((V2, platform) => {
          // 20-bit address width: 256 pages, so a long sequence exhausts it
          const config = { LogicalAllocatorType: IommuDmaLogicalAllocatorBuddy, BuddyAllocatorConfig: { AddressWidth: 20 } };
          const domains = ['0000:00:03.0', '0000:00:04.0'].map((bdf) => {
            const dev = V2.CreateDevice(platform.findDevice(bdf)!);
            const dom = V2.CreateDomainEx(DomainTypeTranslate, 0n, config, null);
            V2.AttachDeviceEx(dom, dev);
            return dom;
        });
        const mem = platform.allocateDmaMemory(16 * 4096);
        const live: { iova: bigint; pages: number }[] = [];
        for (const o of ops) {
          if (o.op === 'map') {
            const off = BigInt(o.src) * 4096n;
            const len = BigInt(o.pages) * 4096n;
            const fast = outcome(() => V2.MapLogicalRangeEx(domains[0], o.perms, mem.asContiguousRange(off, len), null, null, null));
            const general = outcome(() => V2.MapLogicalRangeEx(domains[1], o.perms, mem.asPfnArray(off, len), null, null, null));
            expect(fast).toBe(general);
            if (fast.startsWith('ok ')) live.push({ iova: BigInt(`0x${fast.slice(3)}`), pages: o.pages });
          } else if (live.length > 0) {
            const [m] = live.splice(o.which % live.length, 1);
            for (const d of domains) V2.UnmapLogicalRange(d, m.iova, BigInt(m.pages));
          }
        }
        });
      }),
      { numRuns: 150 },
    );
  });
});
