/**
 * The simulator's page-number lane (`mapPageRun`, `unmapPageRange`: what the platform's fast
 * paths call, contract.ts) against its bigint members: two identical machines run the same random
 * sequence, one through `map`/`unmap` with bigints, the other through the lane with page numbers.
 * Every call must end alike (nothing thrown, or the same error class, errno, syscall and message),
 * and after every step both machines must inspect the same (areas, per-level table and leaf
 * counts, mapped-page counts, operation and error counters) with sound page tables. The sequences
 * cover what the lane must decide as `map` would: free and taken IOVAs, memory freed or never
 * owned, reserved and out-of-aperture pages, attached and detached domains, unknown domains,
 * armed failure injections, the modelled limits, a closed backend.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SimulatedBackend } from '../../../lib/backend/simulated/index.js';
import type { BackendMemory } from '../../../lib/backend/contract.js';
import { BackendError } from '../../../lib/errors.js';
import { E, EDU0 } from './helpers.js';

const PAGE = 4096n;
const MSI_PAGE = 0xfee00; // the x86 MSI window's first page: reserved once a device is attached

type Op =
  | { op: 'map'; page: number; pages: number; mem: number; off: number; perms: number }
  | { op: 'mapAt'; page: number; pages: number; pfn: number; perms: number }
  | { op: 'unmap'; page: number; pages: number }
  | { op: 'alloc'; pages: number }
  | { op: 'free'; mem: number }
  | { op: 'attach' }
  | { op: 'detach' }
  | { op: 'inject'; n: number; errno: number; which: 'map' | 'unmap' | undefined }
  | { op: 'badDomain'; page: number }
  | { op: 'close' };

const pageArb = fc.oneof(
  fc.integer({ min: 0x100, max: 0x140 }),
  fc.constantFrom(MSI_PAGE - 1, MSI_PAGE, 0x7ffffff, 0xfffffff, 0x7fffffff - 3),
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ op: fc.constant('map' as const), page: pageArb, pages: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.constant(512)), mem: fc.nat(3), off: fc.nat(6), perms: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('mapAt' as const), page: pageArb, pages: fc.integer({ min: 1, max: 3 }), pfn: fc.oneof(fc.nat(0x400), fc.constant(0x7ffffff0)), perms: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('unmap' as const), page: pageArb, pages: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.constant(512)) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('alloc' as const), pages: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.constant(1024)) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('free' as const), mem: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'attach' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'detach' as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('inject' as const), n: fc.integer({ min: 1, max: 3 }), errno: fc.constantFrom(E.EIO, E.ENOMEM), which: fc.constantFrom('map' as const, 'unmap' as const, undefined) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('badDomain' as const), page: pageArb }) },
  { weight: 1, arbitrary: fc.constant({ op: 'close' as const }) },
);

interface Side {
  readonly sim: SimulatedBackend;
  readonly dom: number;
  readonly dev: number;
  /** Every allocation made, with its first page frame (freed ones stay: mapping them must fail alike). */
  readonly mems: Array<{ readonly memory: BackendMemory; readonly pfn: number }>;
}

/** How a call ended: normally, or its error's class, errno, syscall and message. */
function outcome(fn: () => unknown): unknown {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (e instanceof BackendError) return { class: 'BackendError', errno: e.errno, syscall: e.syscall, message: e.message };
    return { class: (e as Error).constructor.name, message: (e as Error).message };
  }
}

/** The state both machines must agree on after every step. */
function state(s: Side): unknown {
  return { inspect: s.sim.inspect(), tables: s.sim.verifyPageTables() };
}

function step(s: Side, o: Op, lane: boolean): unknown {
  const { sim, dom, dev, mems } = s;
  switch (o.op) {
    case 'map':
    case 'mapAt': {
      let pfn: number;
      if (o.op === 'map') {
        const m = mems[o.mem % mems.length];
        pfn = m.pfn + o.off;
      } else pfn = o.pfn;
      return outcome(() => (lane ? sim.mapPageRun(dom, o.page, o.pages, pfn, o.perms) : sim.map(dom, BigInt(o.page) * PAGE, [{ pa: BigInt(pfn) * PAGE, length: BigInt(o.pages) * PAGE }], o.perms)));
    }
    case 'unmap':
      return outcome(() => (lane ? sim.unmapPageRange(dom, o.page, o.pages) : sim.unmap(dom, BigInt(o.page) * PAGE, BigInt(o.pages) * PAGE)));
    case 'alloc':
      return outcome(() => mems.push(allocation(sim, BigInt(o.pages) * PAGE)));
    case 'free': {
      const m = mems[o.mem % mems.length];
      return outcome(() => m.memory.free());
    }
    case 'attach':
      return outcome(() => sim.attach(dom, dev));
    case 'detach':
      return outcome(() => sim.detach(dev));
    case 'inject':
      return outcome(() => sim.failNth(o.n, o.errno, o.which));
    case 'badDomain':
      return outcome(() => (lane ? sim.mapPageRun(dom + 100, o.page, 1, 0x200, 3) : sim.map(dom + 100, BigInt(o.page) * PAGE, [{ pa: 0x200n * PAGE, length: PAGE }], 3)));
    case 'close':
      sim.close();
      return 'closed';
  }
}

function allocation(sim: SimulatedBackend, size: bigint, hugePages = false): { memory: BackendMemory; pfn: number } {
  const memory = sim.allocateMemory(size, { hugePages });
  return { memory, pfn: Number(memory.pageAddress(0) >> 12n) };
}

function side(options: ConstructorParameters<typeof SimulatedBackend>[0]): Side {
  const sim = new SimulatedBackend(options);
  const dom = sim.allocDomain('translate');
  const dev = sim.openDevice(EDU0);
  sim.attach(dom, dev);
  return { sim, dom, dev, mems: [allocation(sim, 16n * PAGE), allocation(sim, 2n * 1024n * 1024n, true)] };
}

describe('simulator: the page-number lane decides as map/unmap do', () => {
  it('same outcomes and the same machine state over random sequences', () => {
    const limitsArb = fc.oneof(fc.constant({}), fc.record({ dmaEntryLimit: fc.integer({ min: 1, max: 4 }) }), fc.record({ memlockLimit: fc.constantFrom(8n * PAGE, 1024n * PAGE) }));
    fc.assert(
      fc.property(limitsArb, fc.array(opArb, { maxLength: 40 }), (limits, ops) => {
        const a = side(limits);
        const b = side(limits);
        for (const o of ops) {
          const ra = step(a, o, false);
          const rb = step(b, o, true);
          expect(rb, JSON.stringify(o)).toEqual(ra);
          expect(state(b)).toEqual(state(a));
          expect(state(a)).toMatchObject({ tables: null });
        }
        a.sim.close();
        b.sim.close();
      }),
      { numRuns: 300 },
    );
  });

  it('arguments outside the lane are a RangeError naming the argument, counted, and change nothing', () => {
    const s = side({});
    const pfn = s.mems[0].pfn;
    const before = JSON.stringify(s.sim.inspect().domains);
    const cases: Array<[() => void, RegExp]> = [
      [() => s.sim.mapPageRun(s.dom, -1, 1, pfn, 3), /^page must be an integer page number in 0\.\.2\^31-1/],
      [() => s.sim.mapPageRun(s.dom, 2 ** 31, 1, pfn, 3), /^page must be/],
      [() => s.sim.mapPageRun(s.dom, 1.5, 1, pfn, 3), /^page must be/],
      [() => s.sim.mapPageRun(s.dom, '256' as unknown as number, 1, pfn, 3), /^page must be/],
      [() => s.sim.mapPageRun(s.dom, 256, 0, pfn, 3), /^pages must be an integer in 1\.\.2\^31-1/],
      [() => s.sim.mapPageRun(s.dom, 256, Number.NaN, pfn, 3), /^pages must be/],
      [() => s.sim.mapPageRun(s.dom, 256, 1, -1, 3), /^pfn must be an integer page number/],
      [() => s.sim.mapPageRun(s.dom, 256, 1, 2 ** 32, 3), /^pfn must be/],
      [() => s.sim.mapPageRun(s.dom, 256, 1, pfn, 0), /^perms must be 1, 2 or 3/],
      [() => s.sim.mapPageRun(s.dom, 256, 1, pfn, 4), /^perms must be 1, 2 or 3/],
      [() => s.sim.unmapPageRange(s.dom, 256, -3), /^pages must be/],
      [() => s.sim.unmapPageRange(s.dom, 2 ** 40, 1), /^page must be/],
    ];
    for (const [fn, message] of cases) {
      expect(fn).toThrow(RangeError);
      expect(fn).toThrow(message);
    }
    expect(JSON.stringify(s.sim.inspect().domains)).toBe(before);
    expect(s.sim.inspect().counters.errors.RangeError).toBe(2 * cases.length);
    // and the lane still works
    s.sim.mapPageRun(s.dom, 256, 1, pfn, 3);
    expect(s.sim.translate(s.dom, 256n * PAGE)).toEqual({ pa: BigInt(pfn) * PAGE, perms: 3, level: 1 });
    s.sim.unmapPageRange(s.dom, 256, 1);
    expect(s.sim.translate(s.dom, 256n * PAGE)).toBeNull();
  });
});
