/**
 * The simulator maps only memory the caller owns, as the kernel does: physical pages outside the
 * live allocations (freed, or never handed out) fail the map with EFAULT
 * (→ STATUS_INVALID_PARAMETER_3 at the WDK), and memory that is still mapped cannot be freed
 * (STATUS_RESOURCE_IN_USE). Together: a stale IOVA can never reach a buffer handed out later.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DMA_IOMMU_INTERFACE_EX_VERSION_3,
  DomainTypeTranslate,
  IoGetIommuInterfaceEx,
  IommuError,
  MapPhysicalAddressTypeContiguousRange,
  MapPhysicalAddressTypePfn,
  openPlatform,
  type DMA_IOMMU_INTERFACE_V3,
  type DmaMemory,
  type IOMMU_MAP_PHYSICAL_ADDRESS,
  type IommuDmaDomain,
  type IommuPlatform,
  type SimulatedBackend,
} from '../../../lib/index.js';
import { E, EDU0, GiB } from './helpers.js';
import { catchIommuError } from '../../support/expect-error.js';

const RW = 3;
const PAGE = 4096n;
let platform: IommuPlatform | undefined;

function open(): { V3: DMA_IOMMU_INTERFACE_V3; sim: SimulatedBackend; domain: IommuDmaDomain; platform: IommuPlatform } {
  const p = openPlatform({ backend: 'sim' });
  platform = p;
  const iface = IoGetIommuInterfaceEx(DMA_IOMMU_INTERFACE_EX_VERSION_3, 0n, { platform: p });
  if (iface.Version !== 3) throw new Error('V3 expected');
  const V3 = iface.V3;
  const dev = V3.CreateDevice(p.findDevice(EDU0)!);
  const domain = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
  V3.AttachDeviceEx(domain, dev);
  return { V3, sim: p.backend as SimulatedBackend, domain, platform: p };
}

afterEach(() => {
  platform?.close();
  platform = undefined;
});

function expectEfault(fn: () => unknown): void {
  const e = catchIommuError(fn);
  expect({ code: e.code, errno: e.errno, syscall: e.syscall }).toEqual({ code: 'STATUS_INVALID_PARAMETER_3', errno: -E.EFAULT, syscall: 'IOMMU_IOAS_MAP' });
}

const contiguous = (Base: bigint, Size = PAGE): IOMMU_MAP_PHYSICAL_ADDRESS => ({ MapType: MapPhysicalAddressTypeContiguousRange, ContiguousRange: { Base, Size } });

describe('maps of memory the caller does not own', () => {
  it('a physical address never handed out (16 GiB, inside machine RAM) is refused with EFAULT', () => {
    const { V3, sim, domain } = open();
    expectEfault(() => V3.MapLogicalRangeEx(domain, RW, contiguous(16n * GiB), 0x100000n, null, null));
    expectEfault(() => V3.MapLogicalRangeEx(domain, RW, { MapType: MapPhysicalAddressTypePfn, PfnArray: { PageFrame: new BigUint64Array([(16n * GiB) >> 12n]), NumberOfPages: 1n } }, 0x100000n, null, null));
    // nothing was mapped: a DMA there faults
    expect(sim.dmaWrite(EDU0, 0x100000n, new Uint8Array([1])).ok).toBe(false);
    expect(sim.inspect().domains[0].areaCount).toBe(0);
  });

  it('a run that starts in an allocation and runs past its end is refused whole', () => {
    const { V3, platform: p, domain } = open();
    const mem = p.allocateDmaMemory(2n * PAGE);
    expectEfault(() => V3.MapLogicalRangeEx(domain, RW, contiguous(mem.physicalAddress, 3n * PAGE), 0x100000n, null, null));
    V3.MapLogicalRangeEx(domain, RW, contiguous(mem.physicalAddress, 2n * PAGE), 0x100000n, null, null);
  });

  it('two adjacent live allocations may be mapped by one run (as the kernel pins both)', () => {
    const { V3, platform: p, sim, domain } = open();
    const a = p.allocateDmaMemory(PAGE);
    const b = p.allocateDmaMemory(PAGE);
    expect(b.physicalAddress).toBe(a.physicalAddress + PAGE);
    V3.MapLogicalRangeEx(domain, RW, contiguous(a.physicalAddress, 2n * PAGE), 0x100000n, null, null);
    expect(sim.dmaWrite(EDU0, 0x100ffen, new Uint8Array([7, 8, 9])).ok).toBe(true);
    expect([...a.bytes.subarray(4094)]).toEqual([7, 8]);
    expect(b.bytes[0]).toBe(9);
    expect(catchIommuError(() => a.free()).code).toBe('STATUS_RESOURCE_IN_USE');
    expect(catchIommuError(() => b.free()).code).toBe('STATUS_RESOURCE_IN_USE');
  });

  it('an MDL of freed memory is refused; the page handed out again is reachable only by its new maps', () => {
    const { V3, platform: p, sim, domain } = open();
    const old = p.allocateDmaMemory(PAGE);
    const mdl = old.asMdl();
    const oldPa = old.physicalAddress;
    const iova = V3.MapLogicalRangeEx(domain, RW, mdl, 0x100000n, null, null);
    // still mapped: the memory cannot be freed (the kernel keeps it pinned)
    expect(catchIommuError(() => old.free()).code).toBe('STATUS_RESOURCE_IN_USE');
    V3.UnmapLogicalRange(domain, iova, 1n);
    old.free();
    expectEfault(() => V3.MapLogicalRangeEx(domain, RW, mdl, 0x200000n, null, null));
    // the same physical page goes to the next allocation; the stale IOVA stays dead
    const fresh = p.allocateDmaMemory(PAGE);
    expect(fresh.physicalAddress).toBe(oldPa);
    const w = sim.dmaWrite(EDU0, 0x100000n, new Uint8Array([0xee]));
    expect(w.ok).toBe(false);
    expect(fresh.bytes[0]).toBe(0);
    fresh.free(); // never mapped: free succeeds
  });
});

describe('property: a stale IOVA never reaches memory it does not map', () => {
  type Op =
    | { op: 'alloc'; pages: number }
    | { op: 'free'; which: number }
    | { op: 'map'; desc: number; slot: number }
    | { op: 'unmap'; slot: number }
    | { op: 'dma'; slot: number; tag: number };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ op: fc.constant('alloc' as const), pages: fc.integer({ min: 1, max: 3 }) }),
    fc.record({ op: fc.constant('free' as const), which: fc.nat() }),
    fc.record({ op: fc.constant('map' as const), desc: fc.nat(), slot: fc.nat({ max: 7 }) }),
    fc.record({ op: fc.constant('unmap' as const), slot: fc.nat({ max: 7 }) }),
    fc.record({ op: fc.constant('dma' as const), slot: fc.nat({ max: 7 }), tag: fc.integer({ min: 1, max: 255 }) }),
  );

  it('random allocate / free / map (also of stale descriptors) / unmap / DMA: bytes land only where the model says', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 20, maxLength: 120 }), (ops) => {
        const { V3, platform: p, sim, domain } = open();
        try {
          interface Buf {
            readonly mem: DmaMemory;
            readonly pa: bigint;
            readonly pages: number;
            readonly content: Uint8Array;
            live: boolean;
          }
          const bufs: Buf[] = [];
          /** Every page descriptor ever made (their memory may have been freed since). */
          const descs: bigint[] = [];
          /** IOVA slot → PA mapped there. */
          const slots = new Map<number, bigint>();
          const owner = (pa: bigint): Buf | undefined => bufs.find((b) => b.live && pa >= b.pa && pa < b.pa + BigInt(b.pages) * PAGE);
          const iovaOf = (slot: number): bigint => 0x100000n + BigInt(slot) * PAGE;
          for (const o of ops) {
            if (o.op === 'alloc') {
              const mem = p.allocateDmaMemory(BigInt(o.pages) * PAGE);
              const b: Buf = { mem, pa: mem.physicalAddress, pages: o.pages, content: new Uint8Array(o.pages * 4096), live: true };
              bufs.push(b);
              for (let i = 0; i < o.pages; i++) descs.push(b.pa + BigInt(i) * PAGE);
            } else if (o.op === 'free') {
              const live = bufs.filter((b) => b.live);
              if (live.length === 0) continue;
              const b = live[o.which % live.length];
              const mapped = [...slots.values()].some((pa) => pa >= b.pa && pa < b.pa + BigInt(b.pages) * PAGE);
              if (mapped) expect(catchIommuError(() => b.mem.free()).code).toBe('STATUS_RESOURCE_IN_USE');
              else {
                b.mem.free();
                b.live = false;
              }
            } else if (o.op === 'map') {
              if (descs.length === 0 || slots.has(o.slot)) continue;
              const pa = descs[o.desc % descs.length];
              const desc = contiguous(pa);
              if (owner(pa) === undefined) expectEfault(() => V3.MapLogicalRangeEx(domain, RW, desc, iovaOf(o.slot), null, null));
              else {
                V3.MapLogicalRangeEx(domain, RW, desc, iovaOf(o.slot), null, null);
                slots.set(o.slot, pa);
              }
            } else if (o.op === 'unmap') {
              if (!slots.has(o.slot)) continue;
              V3.UnmapLogicalRange(domain, iovaOf(o.slot), 1n);
              slots.delete(o.slot);
            } else {
              const r = sim.dmaWrite(EDU0, iovaOf(o.slot) + 16n, new Uint8Array([o.tag]));
              const pa = slots.get(o.slot);
              expect(r.ok).toBe(pa !== undefined);
              if (pa !== undefined) {
                const b = owner(pa);
                expect(b, 'a mapped page belongs to a live buffer').toBeDefined();
                b!.content[Number(pa - b!.pa) + 16] = o.tag;
              }
            }
            for (const b of bufs) {
              if (b.live && !Buffer.from(b.mem.bytes.buffer, b.mem.bytes.byteOffset, b.mem.bytes.length).equals(b.content)) {
                throw new Error(`buffer at ${b.pa.toString(16)} holds bytes no mapping put there`);
              }
            }
          }
        } finally {
          p.close();
          platform = undefined;
        }
      }),
      { numRuns: 60 },
    );
  });
});
