/**
 * The platform's fast paths hand a backend with the page-number lane (`mapPageRun`,
 * `unmapPageRange`: the simulator) page numbers, and any other backend (the native ones) `map` and
 * `unmap` with bigints. Both must make the platform behave the same: one random sequence of WDK
 * calls (fast-path shapes and general ones, explicit and Buddy domains, sub-range unmaps, reserved
 * tokens and segments, bad values) runs on a simulator platform and on one whose simulator hides
 * the lane; every call must end alike (result, or status code, argument and message) and the two
 * simulated machines must end in the same state (areas, page tables, counters).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DMA_IOMMU_INTERFACE_EX_VERSION_3,
  DomainTypeTranslate,
  IoGetIommuInterfaceEx,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT,
  type IOMMU_MAP_PHYSICAL_ADDRESS,
  IommuDmaLogicalAllocatorBuddy,
  IommuError,
  IommuPlatform,
  type LogicalAddressToken,
  SimulatedBackend,
} from '../../../lib/index.js';

const PAGE = 4096n;

/** The simulator without its page-number lane: the platform takes the bigint members, as over a native backend. */
class NoLaneSimulator extends SimulatedBackend {
  constructor() {
    super();
    Object.defineProperty(this, 'mapPageRun', { value: undefined });
    Object.defineProperty(this, 'unmapPageRange', { value: undefined });
  }
}

type Op =
  | { op: 'map'; buddy: boolean; at: number; src: number; pages: number; perms: number; pfnArray: boolean }
  | { op: 'unmap'; buddy: boolean; at: number; pages: number; bigintCount: boolean }
  | { op: 'reserve'; at: number; pages: number }
  | { op: 'mapSegment'; token: number; off: number; src: number; pages: number; perms: number }
  | { op: 'unmapSegment'; seg: number }
  | { op: 'free'; token: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('map' as const),
      buddy: fc.boolean(),
      at: fc.oneof(fc.integer({ min: 0x100, max: 0x120 }), fc.constantFrom(0xfee00, 0x7fffffff, 2 ** 31, -1)),
      src: fc.nat(15),
      pages: fc.integer({ min: 1, max: 4 }),
      perms: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 3 }) }, { weight: 1, arbitrary: fc.constantFrom(0, 4) }),
      pfnArray: fc.boolean(),
    }),
  },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('unmap' as const), buddy: fc.boolean(), at: fc.integer({ min: 0xff, max: 0x124 }), pages: fc.integer({ min: 1, max: 4 }), bigintCount: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reserve' as const), at: fc.integer({ min: 0x200, max: 0x220 }), pages: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('mapSegment' as const), token: fc.nat(3), off: fc.nat(8), src: fc.nat(15), pages: fc.integer({ min: 1, max: 3 }), perms: fc.integer({ min: 0, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('unmapSegment' as const), seg: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('free' as const), token: fc.nat(3) }) },
);

function outcome(fn: () => unknown): string {
  try {
    const r = fn();
    return typeof r === 'bigint' ? `ok 0x${r.toString(16)}` : 'ok';
  } catch (e) {
    if (!(e instanceof IommuError)) throw e;
    return `${e.code} ${e.argument ?? '-'} ${e.message}`;
  }
}

function world(backend: SimulatedBackend) {
  const platform = new IommuPlatform(backend);
  const iface = IoGetIommuInterfaceEx(DMA_IOMMU_INTERFACE_EX_VERSION_3, 0n, { platform });
  if (iface.Version !== 3) throw new Error('V3 expected');
  const V3 = iface.V3;
  const open = (bdf: string, buddy: boolean) => {
    const config = buddy ? { LogicalAllocatorType: IommuDmaLogicalAllocatorBuddy, BuddyAllocatorConfig: { AddressWidth: 24 } } : null;
    const domain = V3.CreateDomainEx(DomainTypeTranslate, 0n, config, null);
    V3.AttachDeviceEx(domain, V3.CreateDevice(platform.findDevice(bdf)!));
    return domain;
  };
  const plain = open('0000:00:03.0', false);
  const buddy = open('0000:00:04.0', true);
  const mem = platform.allocateDmaMemory(16n * PAGE);
  const tokens: LogicalAddressToken[] = [];
  const segments: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT[] = [];
  const desc = (src: number, pages: number, pfnArray: boolean): IOMMU_MAP_PHYSICAL_ADDRESS => {
    const n = Math.min(pages, 16 - src);
    return pfnArray ? mem.asPfnArray(BigInt(src) * PAGE, BigInt(n) * PAGE) : mem.asContiguousRange(BigInt(src) * PAGE, BigInt(n) * PAGE);
  };
  const step = (o: Op): string => {
    switch (o.op) {
      case 'map':
        return outcome(() => V3.MapLogicalRangeEx(o.buddy ? buddy : plain, o.perms, desc(o.src, o.pages, o.pfnArray), o.buddy ? null : BigInt(o.at) * PAGE));
      case 'unmap':
        return outcome(() => V3.UnmapLogicalRange(o.buddy ? buddy : plain, BigInt(o.at) * PAGE, o.bigintCount ? BigInt(o.pages) : o.pages));
      case 'reserve':
        return outcome(() => {
          tokens.push(V3.ReserveLogicalAddressRange(plain, BigInt(o.pages) * PAGE, BigInt(o.at) * PAGE));
        });
      case 'mapSegment': {
        const t = tokens[o.token % Math.max(1, tokens.length)];
        if (t === undefined) return 'no token';
        return outcome(() => {
          segments.push(V3.MapReservedLogicalRange(t, BigInt(o.off) * PAGE, o.perms, desc(o.src, o.pages, false)));
        });
      }
      case 'unmapSegment': {
        const s = segments[o.seg % Math.max(1, segments.length)];
        if (s === undefined) return 'no segment';
        return outcome(() => V3.UnmapReservedLogicalRange(s));
      }
      case 'free': {
        const t = tokens[o.token % Math.max(1, tokens.length)];
        if (t === undefined) return 'no token';
        return outcome(() => V3.FreeReservedLogicalAddressRange(t));
      }
    }
  };
  return { platform, backend, step };
}

describe('platform: the backend page-number lane changes nothing', () => {
  it('same results and the same machine state with and without the lane', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 50 }), (ops) => {
        const lane = world(new SimulatedBackend());
        const bigints = world(new NoLaneSimulator());
        expect(typeof lane.backend.mapPageRun).toBe('function');
        expect(bigints.backend.mapPageRun).toBeUndefined();
        for (const o of ops) expect(lane.step(o), JSON.stringify(o)).toBe(bigints.step(o));
        expect(lane.backend.inspect()).toEqual(bigints.backend.inspect());
        expect(lane.backend.verifyPageTables()).toBeNull();
        lane.platform.close();
        bigints.platform.close();
      }),
      { numRuns: 200 },
    );
  });
});
