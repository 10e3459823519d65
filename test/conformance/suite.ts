/**
 * The conformance suite: the WDK interface's behaviour, written only against the public API
 * (IoGetIommuInterfaceEx, the platform's devices/memory, and a device's DMA driver). It runs on
 * the simulator in `npm test` and, unchanged, against the native backends inside `dma-iommu vm`.
 * Where a backend's platform forces a difference, the suite reads it from the backend's
 * capability record (one table), never from the backend's name.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DMA_IOMMU_INTERFACE_EX_VERSION_1,
  DMA_IOMMU_INTERFACE_EX_VERSION_2,
  DMA_IOMMU_INTERFACE_EX_VERSION_3,
  DomainConfigurationX64,
  DomainTypeMax,
  DomainTypePassThrough,
  DomainTypeTranslate,
  DomainTypeTranslateS1,
  DomainTypeUnmanaged,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  IoGetIommuInterface,
  IoGetIommuInterfaceEx,
  IommuDeviceCreationConfigTypeAcpi,
  IommuDeviceCreationConfigTypePasid,
  IommuDmaLogicalAllocatorBuddy,
  IommuError,
  MapPhysicalAddressTypeContiguousRange,
  PasidConfigTypePasidTaggedDma,
  V1_MEMBERS,
  V2_MEMBERS,
  V3_MEMBERS,
  type DMA_IOMMU_INTERFACE_V1,
  type DMA_IOMMU_INTERFACE_V3,
  type DmaMemory,
  type FAULT_INFORMATION,
  type IommuDmaDevice,
  type IommuDmaDomain,
  type IommuPlatform,
  type PhysicalDeviceObject,
} from '../../lib/index.js';
import { type DmaDriver, dmaDriverFor } from '../../lib/devices/dma.js';
import { paceFault } from '../support/fault-pacer.js';
import type { FaultRecord } from '../../lib/core/platform.js';
import { expectIommu } from '../support/expect-error.js';

export interface ConformanceOptions {
  /** Two devices with DMA drivers, each in its own IOMMU group (e.g. the two edu devices). */
  readonly devices: readonly [string, string];
  /** How long to wait for a fault report (kernel-log faults are polled). */
  readonly faultTimeoutMs?: number;
}

const PAGE = 4096n;
const BASE = 0x100000n; // low IOVAs: the edu device addresses 28 bits
const LEN = 1024;

/** `fn` throws an IommuError with `code`; returns it. */
export const expectStatus = expectIommu;

function fill(mem: DmaMemory, seed: number, length = LEN): Uint8Array {
  const data = new Uint8Array(length);
  for (let i = 0; i < length; i++) data[i] = (i * 31 + seed * 7 + 1) & 0xff;
  mem.bytes.set(data);
  return data;
}

function faultIova(f: FAULT_INFORMATION): bigint {
  return (f.X64?.FaultAddress ?? f.Arm64?.FaultAddress) as bigint;
}

export function describeConformance(name: string, makePlatform: () => IommuPlatform, opts: ConformanceOptions): void {
  describe(`conformance: ${name}`, () => {
    let platform: IommuPlatform;
    let V3: DMA_IOMMU_INTERFACE_V3;
    let pdoA: PhysicalDeviceObject;
    let pdoB: PhysicalDeviceObject;
    const faultWait = opts.faultTimeoutMs ?? 5000;

    beforeEach(() => {
      platform = makePlatform();
      const iface = IoGetIommuInterfaceEx(DMA_IOMMU_INTERFACE_EX_VERSION_3, 0n, { platform });
      if (iface.Version !== 3) throw new Error('expected V3');
      V3 = iface.V3;
      const a = platform.findDevice(opts.devices[0]);
      const b = platform.findDevice(opts.devices[1]);
      if (!a || !b) throw new Error(`devices ${opts.devices.join(', ')} not present`);
      pdoA = a;
      pdoB = b;
    });

    afterEach(() => {
      platform.close();
    });

    /**
     * Expect a fault from the DMA about to start, as far as the platform reports faults (read from
     * its capabilities, never its name): paced to the source's rate limit; the record's address is
     * the faulting page's (`page`) or, where the IOMMU records the byte (faultDetails.address
     * 'exact'; arm64 on a backend without faultDetails), `exact`. Resolves to null when no record
     * can come (faultSource 'none', e.g. QEMU's amd-iommu): the caller's memory checks are then
     * what proves the DMA was blocked.
     */
    const faultAhead = async (bdf: string, page: bigint, exact = page): Promise<{ fault: Promise<FaultRecord | null> }> => {
      const caps = platform.backend.capabilities;
      if (caps.faultSource === 'none') return { fault: Promise.resolve(null) };
      await paceFault(caps);
      const exactAddress = caps.faultDetails ? caps.faultDetails.address === 'exact' : caps.arch === 'arm64';
      const iova = exactAddress ? exact : page;
      // (an object: an async function returning the bare promise would wait for the fault itself)
      return {
        fault: platform.waitForFault({ bdf, iova }, faultWait).then((rec) => {
          expect(faultIova(rec.information)).toBe(iova);
          return rec;
        }),
      };
    };
    /**
     * Turn fault reporting on, as far as the platform observes faults: with faultSource 'none' the
     * platform must refuse it (STATUS_NOT_SUPPORTED) instead of promising handler calls that never come.
     */
    const enableFaults = (enable: () => void): boolean => {
      if (platform.backend.capabilities.faultSource !== 'none') {
        enable();
        return true;
      }
      expectStatus(enable, 'STATUS_NOT_SUPPORTED');
      return false;
    };
    /** The record's direction, where the IOMMU reports one (capabilities.faultDetails.direction). */
    const expectDirection = (rec: FaultRecord | null, write: boolean): void => {
      if (!rec) return;
      const d = rec.information.Details;
      if (platform.backend.capabilities.faultDetails?.direction !== false) expect(d.directionKnown).not.toBe(false);
      if (d.directionKnown !== false) expect(d.write).toBe(write);
    };

    /** A device attached to a new Translate domain, with two pages of memory. */
    function setup(pdo = pdoA): { dev: IommuDmaDevice; dom: IommuDmaDomain; driver: DmaDriver; mem: DmaMemory; mem2: DmaMemory } {
      const dev = V3.CreateDevice(pdo);
      const dom = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
      V3.AttachDeviceEx(dom, dev);
      const driver = dmaDriverFor(platform, dev);
      if (!driver) throw new Error(`no DMA driver for ${pdo.bdf}`);
      const mem = platform.allocateDmaMemory(8192n);
      const mem2 = platform.allocateDmaMemory(8192n);
      return { dev, dom, driver, mem, mem2 };
    }

    describe('the interface', () => {
      it('gives V1 (13), V2 (22) and V3 (27) tables with the WDK member names, Size 0xe8', () => {
        const v1 = IoGetIommuInterfaceEx(DMA_IOMMU_INTERFACE_EX_VERSION_1, 0n, { platform });
        const v2 = IoGetIommuInterfaceEx(DMA_IOMMU_INTERFACE_EX_VERSION_2, 0, { platform });
        const v3 = IoGetIommuInterfaceEx(DMA_IOMMU_INTERFACE_EX_VERSION_3, 0n, { platform });
        expect(v1.Size).toBe(0xe8);
        expect(v1.Version).toBe(1);
        expect(Object.keys((v1 as { V1: object }).V1)).toEqual([...V1_MEMBERS]);
        expect(Object.keys((v2 as { V2: object }).V2)).toEqual([...V2_MEMBERS]);
        expect(Object.keys((v3 as { V3: object }).V3)).toEqual([...V3_MEMBERS]);
        expect(V1_MEMBERS.length).toBe(13);
        expect(V2_MEMBERS.length).toBe(22);
        expect(V3_MEMBERS.length).toBe(27);
        expect(Object.keys(v3)).toEqual(['Size', 'Version', 'V3']);
        const legacy = IoGetIommuInterface(1, { platform });
        expect(legacy.Version).toBe(1);
        expect(typeof legacy.CreateDomain).toBe('function');
      });

      it('rejects unknown versions and non-zero flags', () => {
        expectStatus(() => IoGetIommuInterfaceEx(0, 0n, { platform }), 'STATUS_NOT_SUPPORTED');
        expectStatus(() => IoGetIommuInterfaceEx(4, 0n, { platform }), 'STATUS_NOT_SUPPORTED');
        expectStatus(() => IoGetIommuInterfaceEx(1.5, 0n, { platform }), 'STATUS_INVALID_PARAMETER_1');
        expectStatus(() => IoGetIommuInterfaceEx(2, 1n, { platform }), 'STATUS_INVALID_PARAMETER_2');
        expectStatus(() => IoGetIommuInterface(2, { platform }), 'STATUS_NOT_SUPPORTED');
      });

      it('errors carry code, NTSTATUS and the argument', () => {
        const e = expectStatus(() => V3.CreateDomainEx(DomainTypeMax, 0n, null, null), 'STATUS_INVALID_PARAMETER_1');
        expect(e.status).toBe(0xc00000ef);
        expect(e.name).toBe('IommuError');
        expect(e.argument).toBe('DomainType');
        expect(e.message).toMatch(/DomainType/);
      });
    });

    describe('devices', () => {
      it('enumerates PDOs with BDF, ids, group and requester ID; the same object per BDF', () => {
        const all = platform.enumerateDevices();
        expect(all.length).toBeGreaterThanOrEqual(2);
        expect(pdoA.bdf).toBe(opts.devices[0]);
        expect(pdoA.iommuGroup).not.toBeNull();
        expect(pdoA.iommuGroup).not.toBe(pdoB.iommuGroup);
        const [bus, rest] = pdoA.bdf.slice(5).split(':');
        const [slot, fn] = rest.split('.');
        expect(pdoA.requesterId).toBe((Number.parseInt(bus, 16) << 8) | (Number.parseInt(slot, 16) << 3) | Number(fn));
        expect(platform.findDevice(pdoA.bdf)).toBe(pdoA);
      });

      it('CreateDevice / DeleteDevice and their failures', () => {
        const dev = V3.CreateDevice(pdoA);
        expect(dev.PhysicalDeviceObject).toBe(pdoA);
        expectStatus(() => V3.CreateDevice(pdoA), 'STATUS_DEVICE_BUSY');
        expectStatus(() => V3.CreateDevice({} as PhysicalDeviceObject), 'STATUS_INVALID_PARAMETER_1');
        V3.DeleteDevice(dev);
        expectStatus(() => V3.DeleteDevice(dev), 'STATUS_INVALID_PARAMETER_1');
        expectStatus(() => V3.QueryAvailableDomainTypes(dev), 'STATUS_INVALID_PARAMETER_1');
        expectStatus(() => V3.CreateDevice(pdoA, { ConfigType: IommuDeviceCreationConfigTypeAcpi, Acpi: { InputMappingBase: 0, MappingsCount: 1 } }), 'STATUS_INVALID_PARAMETER_2');
        expectStatus(() => V3.CreateDevice(pdoA, { ConfigType: 99 }), 'STATUS_INVALID_PARAMETER_2');
        // the device is still usable after the failures
        V3.DeleteDevice(V3.CreateDevice(pdoA));
      });

      it('QueryAvailableDomainTypes includes Translate; QueryDeviceInfo reports PASID state', () => {
        const dev = V3.CreateDevice(pdoA);
        expect(V3.QueryAvailableDomainTypes(dev) & (1 << DomainTypeTranslate)).not.toBe(0);
        expect(V3.QueryDeviceInfo(dev)).toEqual({ DefaultPasidEnabled: true, PasidTaggedDmaEnabled: false, PasidFaultsSuppressed: false });
        expectStatus(() => V3.QueryDeviceInfo(dev, 2), 'STATUS_BUFFER_TOO_SMALL');
        expectStatus(() => V3.CreatePasidDevice(dev), 'STATUS_INVALID_PARAMETER_1');
        V3.DeleteDevice(dev);
      });

      it('PASID-tagged DMA is refused on a device without the PASID capability', () => {
        if (pdoA.maxPasidLog2 !== 0) return;
        expectStatus(
          () => V3.CreateDevice(pdoA, { ConfigType: IommuDeviceCreationConfigTypePasid, Pasid: { ConfigType: PasidConfigTypePasidTaggedDma } }),
          'STATUS_INVALID_PARAMETER_2',
        );
      });

      it('the state-change callback runs on registration, once per device, and must be unregistered', () => {
        const dev = V3.CreateDevice(pdoA);
        const calls: Array<[number, unknown]> = [];
        const cb = (s: { AvailableDomainTypes: number }, ctx: unknown): void => {
          calls.push([s.AvailableDomainTypes, ctx]);
        };
        expectStatus(() => V3.RegisterInterfaceStateChangeCallback(cb, 'ctx', dev, {}), 'STATUS_INVALID_PARAMETER_4');
        expectStatus(() => V3.RegisterInterfaceStateChangeCallback('x' as never, 'ctx', dev, { AvailableDomainTypes: 1 }), 'STATUS_INVALID_PARAMETER_1');
        V3.RegisterInterfaceStateChangeCallback(cb, 'ctx', dev, { AvailableDomainTypes: 1 });
        expect(calls).toEqual([[V3.QueryAvailableDomainTypes(dev), 'ctx']]);
        expectStatus(() => V3.RegisterInterfaceStateChangeCallback(cb, 'ctx', dev, { AvailableDomainTypes: 1 }), 'STATUS_UNSUCCESSFUL');
        expectStatus(() => V3.DeleteDevice(dev), 'STATUS_RESOURCE_IN_USE');
        expectStatus(() => V3.UnregisterInterfaceStateChangeCallback(() => {}, dev), 'STATUS_UNSUCCESSFUL');
        V3.UnregisterInterfaceStateChangeCallback(cb, dev);
        expectStatus(() => V3.UnregisterInterfaceStateChangeCallback(cb, dev), 'STATUS_UNSUCCESSFUL');
        V3.DeleteDevice(dev);
      });
    });

    describe('domains and attachment', () => {
      it('creates the domain types the platform supports and refuses the rest', () => {
        const caps = platform.backend.capabilities;
        V3.DeleteDomain(V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null));
        expectStatus(() => V3.CreateDomainEx(DomainTypeTranslateS1, 0n, null, null), 'STATUS_NOT_SUPPORTED');
        expectStatus(() => V3.CreateDomainEx(DomainTypeMax, 0n, null, null), 'STATUS_INVALID_PARAMETER_1');
        expectStatus(() => V3.CreateDomainEx(-1, 0n, null, null), 'STATUS_INVALID_PARAMETER_1');
        expectStatus(() => V3.CreateDomainEx(DomainTypeTranslate, 1n, null, null), 'STATUS_INVALID_PARAMETER_2');
        expectStatus(() => V3.CreateDomainEx(DomainTypeTranslate, 0n, { LogicalAllocatorType: IommuDmaLogicalAllocatorBuddy, BuddyAllocatorConfig: { AddressWidth: 99 } }, null), 'STATUS_INVALID_PARAMETER_3');
        expectStatus(() => V3.CreateDomainEx(DomainTypeTranslate, 0n, { LogicalAllocatorType: 7 }, null), 'STATUS_INVALID_PARAMETER_3');
        expectStatus(() => V3.CreateDomainEx(DomainTypeTranslate, 0n, null, { Base: 0x1001n, NumberOfPages: 1n, ShouldMap: false }), 'STATUS_INVALID_PARAMETER_4');
        for (const [type, bit] of [[DomainTypePassThrough, 1], [DomainTypeUnmanaged, 2]] as const) {
          if (caps.domainTypes & (1 << bit)) V3.DeleteDomain(V3.CreateDomainEx(type, 0n, null, null));
          else expectStatus(() => V3.CreateDomainEx(type, 0n, null, null), 'STATUS_NOT_SUPPORTED');
        }
      });

      it('enforces one domain per device, detach before delete, and no use after delete', () => {
        const dev = V3.CreateDevice(pdoA);
        const d1 = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
        const d2 = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
        expectStatus(() => V3.DetachDeviceEx(dev), 'STATUS_INVALID_PARAMETER_1');
        V3.AttachDeviceEx(d1, dev);
        expectStatus(() => V3.AttachDeviceEx(d1, dev), 'STATUS_INVALID_PARAMETER');
        expectStatus(() => V3.AttachDeviceEx(d2, dev), 'STATUS_INVALID_PARAMETER');
        expectStatus(() => V3.DeleteDomain(d1), 'STATUS_RESOURCE_IN_USE');
        expectStatus(() => V3.DeleteDevice(dev), 'STATUS_RESOURCE_IN_USE');
        V3.DetachDeviceEx(dev);
        V3.DeleteDomain(d1);
        expectStatus(() => V3.DeleteDomain(d1), 'STATUS_INVALID_PARAMETER_1');
        expectStatus(() => V3.AttachDeviceEx(d1, dev), 'STATUS_INVALID_PARAMETER_1');
        expectStatus(() => V3.AttachDeviceEx(d2, {} as IommuDmaDevice), 'STATUS_INVALID_PARAMETER_2');
        V3.AttachDeviceEx(d2, dev);
        V3.DetachDeviceEx(dev);
        V3.DeleteDomain(d2);
        V3.DeleteDevice(dev);
      });

      it('an attached domain reports the aperture minus the reserved regions', () => {
        const { dom } = setup();
        const g = platform.geometry(dom);
        expect(g.alignment).toBe(4096n);
        if (platform.backend.capabilities.arch === 'x86_64') {
          // the MSI window 0xfee00000-0xfeefffff is never usable
          for (const r of g.ranges) expect(r.last < 0xfee00000n || r.start > 0xfeefffffn).toBe(true);
          expect(g.ranges[0].start).toBe(0n);
        }
      });
    });

    describe('logical mappings', () => {
      it('maps at an explicit address and checks every argument', () => {
        const { dom, mem } = setup();
        const RW = IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE;
        expect(V3.MapLogicalRangeEx(dom, RW, mem.asMdl(), BASE, null, null)).toBe(BASE);
        expectStatus(() => V3.MapLogicalRangeEx(dom, RW, mem.asMdl(), BASE, null, null), 'STATUS_IN_USE');
        expectStatus(() => V3.MapLogicalRangeEx(dom, RW, mem.asMdl(), BASE + PAGE, null, null), 'STATUS_IN_USE');
        expectStatus(() => V3.MapLogicalRangeEx(dom, RW, mem.asMdl(), BASE - PAGE, null, null), 'STATUS_IN_USE');
        expectStatus(() => V3.MapLogicalRangeEx(dom, RW, mem.asMdl(), BASE + 0x10000n + 1n, null, null), 'STATUS_INVALID_PARAMETER_4');
        expectStatus(() => V3.MapLogicalRangeEx(dom, 4, mem.asMdl(), BASE + 0x10000n, null, null), 'STATUS_INVALID_PARAMETER_2');
        expectStatus(() => V3.MapLogicalRangeEx(dom, RW, { MapType: MapPhysicalAddressTypeContiguousRange, ContiguousRange: { Base: mem.physicalAddress + 8n, Size: PAGE } }, BASE + 0x10000n, null, null), 'STATUS_INVALID_PARAMETER_3');
        expectStatus(() => V3.MapLogicalRangeEx(dom, RW, { MapType: MapPhysicalAddressTypeContiguousRange, ContiguousRange: { Base: mem.physicalAddress, Size: 100n } }, BASE + 0x10000n, null, null), 'STATUS_INVALID_PARAMETER_3');
        expectStatus(() => V3.MapLogicalRangeEx(dom, RW, { MapType: 9 } as never, BASE + 0x10000n, null, null), 'STATUS_INVALID_PARAMETER_3');
        expectStatus(() => V3.MapLogicalRangeEx(dom, RW, mem.asMdl(), null, null, null), 'STATUS_NOT_SUPPORTED');
        expectStatus(() => V3.MapLogicalRangeEx(dom, RW, mem.asMdl(), (1n << 64n) - PAGE, null, null), 'STATUS_INVALID_PARAMETER_4');
        expectStatus(() => V3.MapLogicalRangeEx(dom, RW, mem.asMdl(), 1n << 64n, null, null), 'STATUS_INVALID_PARAMETER_4');
        if (platform.backend.capabilities.arch === 'x86_64') {
          expectStatus(() => V3.MapLogicalRangeEx(dom, RW, mem.asMdl(), 0xfee00000n, null, null), 'STATUS_INVALID_PARAMETER_4');
          const top = platform.geometry(dom).ranges.at(-1)!.last;
          expectStatus(() => V3.MapLogicalRangeEx(dom, RW, mem.asMdl(), top + 1n, null, null), 'STATUS_INVALID_PARAMETER_4');
        }
        expectStatus(() => V3.MapLogicalRangeEx({} as IommuDmaDomain, RW, mem.asMdl(), BASE, null, null), 'STATUS_INVALID_PARAMETER_1');
        // failures left the first mapping intact: it still unmaps exactly once
        V3.UnmapLogicalRange(dom, BASE, 2n);
        expectStatus(() => V3.UnmapLogicalRange(dom, BASE, 2n), 'STATUS_INVALID_PARAMETER');
      });

      it('the Buddy allocator picks aligned low addresses within Min/Max and refuses explicit ones', () => {
        const dev = V3.CreateDevice(pdoA);
        const dom = V3.CreateDomainEx(DomainTypeTranslate, 0n, { LogicalAllocatorType: IommuDmaLogicalAllocatorBuddy, BuddyAllocatorConfig: { AddressWidth: 28 } }, null);
        V3.AttachDeviceEx(dom, dev);
        const mem = platform.allocateDmaMemory(3n * PAGE);
        const RW = IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE;
        const a = V3.MapLogicalRangeEx(dom, RW, mem.asMdl(0n, PAGE), null, null, null);
        const b = V3.MapLogicalRangeEx(dom, RW, mem.asMdl(0n, 3n * PAGE), null, null, null);
        expect(a % PAGE).toBe(0n);
        expect(b % (4n * PAGE)).toBe(0n); // 3 pages → a 4-page (16 KiB) aligned block
        expect(a).not.toBe(b);
        const c = V3.MapLogicalRangeEx(dom, RW, mem.asMdl(0n, PAGE), null, 0x800000n, 0x8fffffn);
        expect(c >= 0x800000n && c <= 0x8fffffn).toBe(true);
        expectStatus(() => V3.MapLogicalRangeEx(dom, RW, mem.asMdl(0n, PAGE), BASE, null, null), 'STATUS_NOT_SUPPORTED');
        expectStatus(() => V3.MapLogicalRangeEx(dom, RW, mem.asMdl(0n, PAGE), null, 0x900000n, 0x800000n), 'STATUS_INVALID_PARAMETER_MIX');
        expectStatus(() => V3.MapLogicalRangeEx(dom, RW, mem.asMdl(0n, 3n * PAGE), null, 0x800000n, 0x801fffn), 'STATUS_INVALID_PARAMETER_MIX');
        expectStatus(() => V3.MapLogicalRangeEx(dom, RW, mem.asMdl(0n, PAGE), null, 1n << 30n, null), 'STATUS_INVALID_PARAMETER_MIX');
        expectStatus(() => V3.MapIdentityRangeEx(dom, RW, mem.asMdl(0n, PAGE)), 'STATUS_NOT_SUPPORTED');
        for (const [iova, n] of [[a, 1n], [b, 3n], [c, 1n]] as const) V3.UnmapLogicalRange(dom, iova, n);
        V3.DetachDeviceEx(dev);
        V3.DeleteDomain(dom);
        V3.DeleteDevice(dev);
      });

      it('moves bytes by DMA through a mapping, and unmapping any sub-range blocks exactly that', async () => {
        const { dom, driver, mem } = setup();
        const big = platform.allocateDmaMemory(4n * PAGE);
        V3.MapLogicalRangeEx(dom, IOMMU_ACCESS_READ, mem.asMdl(0n, PAGE), BASE, null, null);
        V3.MapLogicalRangeEx(dom, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, big.asPfnArray(), BASE + 0x10000n, null, null);
        const data = fill(mem, 1);
        await driver.copy(BASE, BASE + 0x10000n + 2n * PAGE, LEN);
        expect(big.bytes.subarray(2 * 4096, 2 * 4096 + LEN)).toEqual(data);
        // unmap the middle page of the 4-page mapping: pages 0, 2, 3 stay mapped
        V3.UnmapLogicalRange(dom, BASE + 0x10000n + PAGE, 1n);
        big.bytes.fill(0);
        await driver.copy(BASE, BASE + 0x10000n + 3n * PAGE, LEN);
        expect(big.bytes.subarray(3 * 4096, 3 * 4096 + LEN)).toEqual(data);
        await driver.copy(BASE, BASE + 0x10000n, LEN);
        expect(big.bytes.subarray(0, LEN)).toEqual(data);
        const waitFault = await faultAhead(pdoA.bdf, BASE + 0x10000n + PAGE);
        big.bytes.fill(0x5a);
        await driver.writeToMemory(BASE + 0x10000n + PAGE, LEN);
        expectDirection(await waitFault.fault, true);
        expect(big.bytes.subarray(4096, 4096 + LEN).every((b) => b === 0x5a)).toBe(true);
        expectStatus(() => V3.UnmapLogicalRange(dom, BASE + 0x10000n + PAGE, 1n), 'STATUS_INVALID_PARAMETER');
        expectStatus(() => V3.UnmapLogicalRange(dom, BASE + 0x10000n, 4n), 'STATUS_INVALID_PARAMETER');
        expectStatus(() => V3.UnmapLogicalRange(dom, BASE + 1n, 1n), 'STATUS_INVALID_PARAMETER_2');
        expectStatus(() => V3.UnmapLogicalRange(dom, BASE, 0n), 'STATUS_INVALID_PARAMETER_3');
        expectStatus(() => V3.UnmapLogicalRange(dom, (1n << 64n) - PAGE, 2n), 'STATUS_INVALID_PARAMETER_3');
      });

      it('a read-only mapping blocks device writes with a permission fault and leaves memory untouched', async () => {
        const { dev, dom, driver, mem, mem2 } = setup();
        const seen: FAULT_INFORMATION[] = [];
        enableFaults(() => V3.SetDeviceFaultReportingEx(dev, 0, true, { FaultHandler: (ctx, info) => seen.push(info), FaultContext: 'ctx' }));
        V3.MapLogicalRangeEx(dom, IOMMU_ACCESS_READ, mem.asMdl(0n, PAGE), BASE, null, null);
        V3.MapLogicalRangeEx(dom, IOMMU_ACCESS_READ, mem2.asMdl(0n, PAGE), BASE + PAGE, null, null);
        fill(mem, 3);
        mem2.bytes.fill(0x11);
        const waiting = await faultAhead(pdoA.bdf, BASE + PAGE);
        await driver.copy(BASE, BASE + PAGE, LEN);
        const rec = await waiting.fault;
        if (rec) {
          expect(rec.delivered).toBe(true);
          expect(seen.length).toBeGreaterThanOrEqual(1);
          expect(faultIova(seen[0])).toBe(faultIova(rec.information));
          expect(seen[0].Details.bdf).toBe(pdoA.bdf);
          expect(seen[0].DmaDevice).toBe(dev);
          expect(seen[0].X64?.DomainHandle ?? seen[0].Arm64?.DomainHandle).toBe(dom);
          expectDirection(rec, true);
        }
        expect(mem2.bytes.subarray(0, LEN).every((b) => b === 0x11)).toBe(true);
      });
      // VT-d and Arm cannot express a write-only IOMMU mapping: VT-d's __domain_mapping sets the
      // present bit, which is DMA_PTE_READ, in every PTE, and Arm's io-pgtable has no write-only
      // encoding, so a write-only map is device-readable there. virtio-iommu maps write-only as
      // such and QEMU blocks the read (capabilities.writeOnlyMappings 'enforced').
      it('a write-only mapping is device-readable where the IOMMU cannot express write-only (a device read moves the bytes, no fault), read-blocked where it can', async () => {
        const { dom, driver, mem, mem2 } = setup();
        const RW = IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE;
        V3.MapLogicalRangeEx(dom, IOMMU_ACCESS_WRITE, mem.asMdl(0n, PAGE), BASE, null, null);
        V3.MapLogicalRangeEx(dom, RW, mem2.asMdl(0n, PAGE), BASE + PAGE, null, null);
        const data = fill(mem, 77);
        if (platform.backend.capabilities.writeOnlyMappings === 'enforced') {
          // the IOMMU maps write-only as such (virtio-iommu): the read is blocked (zeros reach the
          // device, a read fault), and the device writes through the mapping
          mem2.bytes.fill(0x77);
          const waiting = await faultAhead(pdoA.bdf, BASE);
          await driver.copy(BASE, BASE + PAGE, LEN);
          expectDirection(await waiting.fault, false);
          expect(mem2.bytes.subarray(0, LEN).every((b) => b === 0)).toBe(true);
          mem2.bytes.set(data);
          mem.bytes.fill(0);
          await driver.copy(BASE + PAGE, BASE, LEN);
          expect(mem.bytes.subarray(0, LEN)).toEqual(data);
          return;
        }
        const before = platform.faults().length;
        mem2.bytes.fill(0);
        await driver.copy(BASE, BASE + PAGE, LEN); // device reads through the write-only map, then writes mem2
        expect(mem2.bytes.subarray(0, LEN)).toEqual(data);
        // and the device still writes through it
        mem.bytes.fill(0);
        await driver.writeToMemory(BASE, LEN);
        expect(mem.bytes.subarray(0, LEN)).toEqual(data);
        expect(platform.faults().slice(before).filter((f) => faultIova(f.information) === BASE)).toEqual([]);
      });
      // Each page of a DMA is translated on its own (QEMU's memory core behind VT-d, and the
      // simulator's engine): the pages that translate move, a blocked page's write is dropped and its
      // read yields zeros, and the fault names the first blocked access (VT-d records its page,
      // SMMUv3 the exact address: capabilities.arch).
      it('a device write straddling mapped and unmapped pages moves the mapped part only, the fault names the unmapped page', async () => {
        const { dom, driver, mem, mem2 } = setup();
        const RW = IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE;
        V3.MapLogicalRangeEx(dom, RW, mem.asMdl(0n, PAGE), BASE, null, null); // BASE: mapped
        V3.MapLogicalRangeEx(dom, RW, mem2.asMdl(0n, PAGE), BASE + 2n * PAGE, null, null); // BASE+PAGE: not mapped
        const data = fill(mem, 21);
        mem2.bytes.fill(0x33);
        await driver.copy(BASE, BASE + 2n * PAGE, LEN); // the device buffer now holds data
        expect(mem2.bytes.subarray(0, LEN)).toEqual(data);
        const half = LEN / 2;
        // mapped → unmapped: the first half lands at the end of BASE's page, the second half is dropped
        mem.bytes.fill(0x44);
        let waiting = await faultAhead(pdoA.bdf, BASE + PAGE);
        await driver.writeToMemory(BASE + PAGE - BigInt(half), LEN);
        expectDirection(await waiting.fault, true);
        expect(mem.bytes.subarray(4096 - half, 4096)).toEqual(data.subarray(0, half));
        expect(mem.bytes.subarray(0, 4096 - half).every((b) => b === 0x44)).toBe(true);
        expect(mem.bytes.subarray(4096).every((b) => b === 0x44)).toBe(true);
        // unmapped → mapped: the page AFTER the blocked one still receives its part
        mem2.bytes.fill(0x55);
        const first = BASE + 2n * PAGE - BigInt(half);
        waiting = await faultAhead(pdoA.bdf, BASE + PAGE, first);
        await driver.writeToMemory(first, LEN);
        expectDirection(await waiting.fault, true);
        expect(mem2.bytes.subarray(0, half)).toEqual(data.subarray(half));
        expect(mem2.bytes.subarray(half).every((b) => b === 0x55)).toBe(true);
      });

      it('a device read straddling mapped and unmapped pages brings the mapped part and zeros for the rest (QEMU\'s edu)', async () => {
        const { dom, driver, mem, mem2 } = setup();
        const RW = IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE;
        V3.MapLogicalRangeEx(dom, RW, mem.asMdl(0n, PAGE), BASE, null, null); // BASE+PAGE: not mapped
        V3.MapLogicalRangeEx(dom, RW, mem2.asMdl(0n, PAGE), BASE + 2n * PAGE, null, null);
        mem.bytes.fill(0xa5);
        fill(mem, 23, 4096);
        for (let i = 0; i < 4096; i++) if (mem.bytes[i] === 0) mem.bytes[i] = 0xa5; // no zero can pass for a blocked byte
        // load the device buffer with non-zero bytes first
        await driver.copy(BASE, BASE + 2n * PAGE, LEN);
        expect(mem2.bytes.subarray(0, LEN).some((b) => b === 0)).toBe(false);
        mem2.bytes.fill(0x66);
        const waiting = await faultAhead(pdoA.bdf, BASE + PAGE);
        // the device reads LEN bytes from the last LEN/2 of BASE's page on, then writes its buffer out
        await driver.copy(BASE + PAGE - BigInt(LEN / 2), BASE + 2n * PAGE, LEN);
        expectDirection(await waiting.fault, false);
        expect(mem2.bytes.subarray(0, LEN / 2)).toEqual(mem.bytes.subarray(4096 - LEN / 2, 4096));
        expect(mem2.bytes.subarray(LEN / 2, LEN).every((b) => b === 0)).toBe(true);
        expect(mem2.bytes.subarray(LEN).every((b) => b === 0x66)).toBe(true);
      });
    });

    describe('fault reporting', () => {
      it('checks its arguments', () => {
        const dev = V3.CreateDevice(pdoA);
        const cfg = { FaultHandler: () => {} };
        expectStatus(() => V3.SetDeviceFaultReportingEx(dev, 0, true, cfg), 'STATUS_INVALID_PARAMETER_1');
        const dom = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
        V3.AttachDeviceEx(dom, dev);
        expectStatus(() => V3.SetDeviceFaultReportingEx(dev, 1, true, cfg), 'STATUS_INVALID_PARAMETER_2');
        expectStatus(() => V3.SetDeviceFaultReportingEx(dev, 0, 1 as never, cfg), 'STATUS_INVALID_PARAMETER_3');
        expectStatus(() => V3.SetDeviceFaultReportingEx(dev, 0, true, null), 'STATUS_INVALID_PARAMETER_4');
        enableFaults(() => V3.SetDeviceFaultReportingEx(dev, 0, true, cfg));
        V3.SetDeviceFaultReportingEx(dev, 0, false, null);
      });
    });

    describe('identity mappings', () => {
      it('maps IOVA = physical address, refuses overlaps, and unmaps by the same description', async () => {
        const { dom, driver, mem, mem2 } = setup();
        const RW = IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE;
        if (mem.physicalAddress + 2n * PAGE > driver.iovaLimit || mem2.physicalAddress + 2n * PAGE > driver.iovaLimit) {
          // the device cannot address this memory's physical addresses: mapping still works, DMA is skipped
          V3.MapIdentityRangeEx(dom, RW, mem.asMdl());
          V3.UnmapIdentityRangeEx(dom, mem.asMdl());
          return;
        }
        V3.MapIdentityRangeEx(dom, RW, mem.asMdl());
        V3.MapIdentityRangeEx(dom, RW, mem2.asPfnArray());
        expectStatus(() => V3.MapIdentityRangeEx(dom, RW, mem.asMdl(0n, PAGE)), 'STATUS_IN_USE');
        const data = fill(mem, 5);
        await driver.copy(mem.physicalAddress, mem2.physicalAddress, LEN);
        expect(mem2.bytes.subarray(0, LEN)).toEqual(data);
        V3.UnmapIdentityRangeEx(dom, mem2.asPfnArray());
        expectStatus(() => V3.UnmapIdentityRangeEx(dom, mem2.asPfnArray()), 'STATUS_INVALID_PARAMETER');
        expectStatus(() => V3.UnmapIdentityRangeEx(dom, { MapType: MapPhysicalAddressTypeContiguousRange, ContiguousRange: { Base: 1n, Size: PAGE } }), 'STATUS_INVALID_PARAMETER_2');
        V3.UnmapIdentityRangeEx(dom, mem.asMdl());
      });
    });

    describe('reserved logical ranges', () => {
      it('reserve, map segments, and the token lifetime rules', async () => {
        const { dom, driver, mem, mem2 } = setup();
        const token = V3.ReserveLogicalAddressRange(dom, 0x8000n, BASE, null, null);
        expect(token.LogicalAddressBase).toBe(BASE);
        expect(token.Size).toBe(0x8000n);
        expectStatus(() => V3.ReserveLogicalAddressRange(dom, 0x1000n, BASE + 0x4000n, null, null), 'STATUS_IN_USE');
        expectStatus(() => V3.MapLogicalRangeEx(dom, 1, mem.asMdl(0n, PAGE), BASE + 0x7000n, null, null), 'STATUS_IN_USE');
        expectStatus(() => V3.ReserveLogicalAddressRange(dom, 0x1001n, BASE + 0x10000n, null, null), 'STATUS_INVALID_PARAMETER_2');
        expectStatus(() => V3.ReserveLogicalAddressRange(dom, 0x1000n, BASE + 0x10010n, null, null), 'STATUS_INVALID_PARAMETER_3');
        expectStatus(() => V3.ReserveLogicalAddressRange(dom, 0x1000n, null, null, null), 'STATUS_NOT_SUPPORTED');
        const s1 = V3.MapReservedLogicalRange(token, 0n, IOMMU_ACCESS_READ, mem.asMdl(0n, PAGE));
        const s2 = V3.MapReservedLogicalRange(token, 0x2000n, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, mem2.asMdl(0n, PAGE));
        expect(s2).toMatchObject({ OwningToken: token, Offset: 0x2000n, Size: PAGE });
        expectStatus(() => V3.MapReservedLogicalRange(token, 0x2000n, 1, mem.asMdl(0n, PAGE)), 'STATUS_RESOURCE_IN_USE');
        expectStatus(() => V3.MapReservedLogicalRange(token, 0x1800n, 1, mem.asMdl(0n, PAGE)), 'STATUS_INVALID_PARAMETER_2');
        expectStatus(() => V3.MapReservedLogicalRange(token, 0x3000n, 8, mem.asMdl(0n, PAGE)), 'STATUS_INVALID_PARAMETER_3');
        expectStatus(() => V3.MapReservedLogicalRange(token, 0x3000n, 1, { MapType: MapPhysicalAddressTypeContiguousRange, ContiguousRange: { Base: 3n, Size: PAGE } }), 'STATUS_INVALID_PARAMETER_4');
        expectStatus(() => V3.MapReservedLogicalRange(token, 0x7000n, 1, mem.asMdl()), 'STATUS_INVALID_PARAMETER_MIX');
        const data = fill(mem, 9);
        await driver.copy(BASE, BASE + 0x2000n, LEN);
        expect(mem2.bytes.subarray(0, LEN)).toEqual(data);
        expectStatus(() => V3.FreeReservedLogicalAddressRange(token), 'STATUS_RESOURCE_IN_USE');
        expectStatus(() => V3.DeleteDomain(dom), 'STATUS_RESOURCE_IN_USE');
        V3.UnmapReservedLogicalRange(s2);
        expectStatus(() => V3.UnmapReservedLogicalRange(s2), 'STATUS_INVALID_PARAMETER');
        // after the unmap, the device's write through the segment is blocked
        const waiting = await faultAhead(pdoA.bdf, BASE + 0x2000n);
        mem2.bytes.fill(7);
        await driver.writeToMemory(BASE + 0x2000n, LEN);
        await waiting.fault;
        expect(mem2.bytes.subarray(0, LEN).every((b) => b === 7)).toBe(true);
        V3.UnmapReservedLogicalRange(s1);
        V3.FreeReservedLogicalAddressRange(token);
        expectStatus(() => V3.FreeReservedLogicalAddressRange(token), 'STATUS_INVALID_PARAMETER_1');
        expectStatus(() => V3.MapReservedLogicalRange(token, 0n, 1, mem.asMdl(0n, PAGE)), 'STATUS_INVALID_PARAMETER_1');
      });
    });

    describe('several devices and domains', () => {
      it('two devices in two domains see only their own mappings', async () => {
        const a = setup(pdoA);
        const b = setup(pdoB);
        V3.MapLogicalRangeEx(a.dom, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, a.mem.asMdl(), BASE, null, null);
        V3.MapLogicalRangeEx(b.dom, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, b.mem.asMdl(), BASE + 0x20000n, null, null);
        const dataA = fill(a.mem, 11);
        await a.driver.copy(BASE, BASE + PAGE, LEN);
        expect(a.mem.bytes.subarray(4096, 4096 + LEN)).toEqual(dataA);
        // B's DMA to A's IOVA is blocked: B's domain has nothing there
        a.mem.bytes.fill(0x33, 4096);
        const waiting = await faultAhead(pdoB.bdf, BASE + PAGE);
        await b.driver.writeToMemory(BASE + PAGE, LEN);
        const f = await waiting.fault;
        if (f) expect(f.information.Details.bdf).toBe(pdoB.bdf);
        expect(a.mem.bytes.subarray(4096, 4096 + LEN).every((x) => x === 0x33)).toBe(true);
        const dataB = fill(b.mem, 12);
        await b.driver.copy(BASE + 0x20000n, BASE + 0x21000n, LEN);
        expect(b.mem.bytes.subarray(4096, 4096 + LEN)).toEqual(dataB);
      });

      it('a device moved between domains follows its new domain', async () => {
        const a = setup(pdoA);
        const other = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
        V3.MapLogicalRangeEx(a.dom, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, a.mem.asMdl(), BASE, null, null);
        V3.MapLogicalRangeEx(other, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, a.mem2.asMdl(), BASE, null, null);
        const d1 = fill(a.mem, 21);
        await a.driver.copy(BASE, BASE + PAGE, LEN);
        expect(a.mem.bytes.subarray(4096, 4096 + LEN)).toEqual(d1);
        V3.DetachDeviceEx(a.dev);
        V3.AttachDeviceEx(other, a.dev);
        const d2 = fill(a.mem2, 22);
        await a.driver.copy(BASE, BASE + PAGE, LEN);
        expect(a.mem2.bytes.subarray(4096, 4096 + LEN)).toEqual(d2);
        // the old domain's memory was not touched by the second copy
        expect(a.mem.bytes.subarray(4096, 4096 + LEN)).toEqual(d1);
        // and the old domain still holds its mapping, usable again after moving back
        V3.DetachDeviceEx(a.dev);
        V3.AttachDeviceEx(a.dom, a.dev);
        a.mem.bytes.fill(0, 4096);
        await a.driver.copy(BASE, BASE + PAGE, LEN);
        expect(a.mem.bytes.subarray(4096, 4096 + LEN)).toEqual(d1);
      });
    });

    describe('V1 (and the deprecated interface)', () => {
      it('runs the PDO-based lifecycle and refuses what x86 cannot do', async () => {
        const iface = IoGetIommuInterfaceEx(DMA_IOMMU_INTERFACE_EX_VERSION_1, 0n, { platform });
        const V1 = (iface as { V1: DMA_IOMMU_INTERFACE_V1 }).V1;
        const dom = V1.CreateDomain(true);
        expectStatus(() => V1.CreateDomain(1 as never), 'STATUS_INVALID_PARAMETER_1');
        expectStatus(() => V1.AttachDevice(dom, pdoA, 1, 1), 'STATUS_INVALID_PARAMETER_3');
        expectStatus(() => V1.AttachDevice(dom, pdoA, 0, 2), 'STATUS_INVALID_PARAMETER_4');
        V1.AttachDevice(dom, pdoA, 0, 1);
        const mem = platform.allocateDmaMemory(2n * PAGE);
        V1.MapLogicalRange(dom, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, mem.mdl(), BASE);
        expectStatus(() => V1.MapLogicalRange(dom, 3, mem.mdl(), BASE), 'STATUS_IN_USE');
        expectStatus(() => V1.MapLogicalRange(dom, 3, { ...mem.mdl(), ByteOffset: 16 }, BASE + 0x10000n), 'STATUS_INVALID_PARAMETER_3');
        const seen: FAULT_INFORMATION[] = [];
        enableFaults(() => V1.SetDeviceFaultReporting(pdoA, 0, true, { FaultHandler: (_c, i) => seen.push(i) }));
        expectStatus(() => V1.FlushDomain(dom), 'STATUS_INVALID_PARAMETER_1');
        expectStatus(() => V1.FlushDomainByVaList(dom, true, 1, [BASE]), 'STATUS_INVALID_PARAMETER_1');
        expectStatus(() => V1.ConfigureDomain(dom, { Type: DomainConfigurationX64 }), 'STATUS_INVALID_PARAMETER_1');
        if (platform.backend.capabilities.arch === 'x86_64') {
          expectStatus(() => V1.QueryInputMappings(pdoA), 'STATUS_NOT_SUPPORTED');
        }
        V1.UnmapLogicalRange(dom, BASE, 2n);
        expectStatus(() => V1.DetachDevice(dom, pdoB, 0), 'STATUS_INVALID_PARAMETER_2');
        expectStatus(() => V1.DetachDevice(dom, pdoA, 1), 'STATUS_INVALID_PARAMETER_3');
        V1.DetachDevice(dom, pdoA, 0);
        V1.DeleteDomain(dom);
        if ((platform.backend.capabilities.domainTypes & (1 << DomainTypeUnmanaged)) === 0) {
          expectStatus(() => V1.CreateDomain(false), 'STATUS_NOT_SUPPORTED');
        }
      });
    });

    describe('memory and lifetime', () => {
      it('memory cannot be freed while mapped; the platform closes in order and idempotently', () => {
        const { dom, mem } = setup();
        V3.MapLogicalRangeEx(dom, IOMMU_ACCESS_READ, mem.asMdl(), BASE, null, null);
        expectStatus(() => mem.free(), 'STATUS_RESOURCE_IN_USE');
        V3.UnmapLogicalRange(dom, BASE, 2n);
        mem.free();
        mem.free();
        // leave mappings, tokens and attachments behind: close() tears all of it down
        V3.MapLogicalRangeEx(dom, IOMMU_ACCESS_READ, platform.allocateDmaMemory(PAGE).asMdl(), BASE, null, null);
        V3.ReserveLogicalAddressRange(dom, 0x4000n, BASE + 0x10000n, null, null);
        platform.close();
        platform.close();
        expectStatus(() => V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null), 'STATUS_INVALID_DEVICE_REQUEST');
      });

      it('garbage in any argument of any member is a STATUS_* error, never a crash, and leaves state usable', () => {
        const garbage: unknown[] = [undefined, null, 0, -1, 1.5, 2 ** 64, -1n, 1n << 80n, 'x', {}, [], () => {}, Symbol('s'), new Uint8Array(3)];
        const table = V3 as unknown as Record<string, (...args: unknown[]) => unknown>;
        let thrown = 0;
        for (const name of V3_MEMBERS) {
          for (const g of garbage) {
            for (let pos = 0; pos < 6; pos++) {
              const args = [g, g, g, g, g, g].map((v, i) => (i === pos ? v : g));
              try {
                table[name](...args);
              } catch (e) {
                expect(e, `${name}(${String(g)})`).toBeInstanceOf(IommuError);
                expect((e as IommuError).code).toMatch(/^STATUS_/);
                thrown++;
              }
            }
          }
        }
        expect(thrown).toBeGreaterThan(V3_MEMBERS.length * garbage.length * 5);
        // the platform still works
        const { dom, mem } = setup();
        V3.MapLogicalRangeEx(dom, 1, mem.asMdl(), BASE, null, null);
        V3.UnmapLogicalRange(dom, BASE, 2n);
      });
    });
  });
}
