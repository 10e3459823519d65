/**
 * WDK behaviour that needs the simulator's test controls (device removal, policy changes, failure
 * injection, PASID-capable devices, Arm64): the public interface plus `SimulatedBackend`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  DMA_IOMMU_INTERFACE_EX_VERSION_3,
  DomainConfigurationArm64,
  DomainTypePassThrough,
  DomainTypeTranslate,
  DomainTypeUnmanaged,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  IoGetIommuInterfaceEx,
  IommuDeviceCreationConfigTypePasid,
  PasidConfigTypePasidTaggedDma,
  SimulatedBackend,
  openPlatform,
  type DMA_IOMMU_INTERFACE_V3,
  type FAULT_INFORMATION,
  type IommuPlatform,
  type SimulatedBackendOptions,
} from '../../../lib/index.js';
import { dmaDriverFor } from '../../../lib/devices/dma.js';
import { expectStatus } from '../../conformance/suite.js';

const RW = IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE;
let platform: IommuPlatform;

function open(simulator: SimulatedBackendOptions = {}): { V3: DMA_IOMMU_INTERFACE_V3; sim: SimulatedBackend } {
  platform = openPlatform({ backend: 'sim', simulator });
  const iface = IoGetIommuInterfaceEx(DMA_IOMMU_INTERFACE_EX_VERSION_3, 0n, { platform });
  if (iface.Version !== 3) throw new Error('V3 expected');
  return { V3: iface.V3, sim: platform.backend as SimulatedBackend };
}

afterEach(() => platform?.close());

describe('simulator-only WDK behaviour', () => {
  it('PASID devices: create, attach to their own domain, translate PASID-tagged DMA there', () => {
    const { V3, sim } = open();
    const pdo = platform.findDevice('0000:00:05.0')!;
    expect(pdo.maxPasidLog2).toBe(20);
    const dev = V3.CreateDevice(pdo, { ConfigType: IommuDeviceCreationConfigTypePasid, Pasid: { ConfigType: PasidConfigTypePasidTaggedDma } });
    expect(V3.QueryDeviceInfo(dev)).toEqual({ DefaultPasidEnabled: true, PasidTaggedDmaEnabled: true, PasidFaultsSuppressed: false });
    const main = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
    const side = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
    V3.AttachDeviceEx(main, dev);
    const { PasidDevice, Asid } = V3.CreatePasidDevice(dev);
    expect(Asid).toBe(1);
    expect(V3.CreatePasidDevice(dev).Asid).toBe(2);
    expectStatus(() => V3.DetachPasidDevice(PasidDevice), 'STATUS_INVALID_PARAMETER_1');
    V3.AttachPasidDevice(side, PasidDevice);
    expectStatus(() => V3.AttachPasidDevice(side, PasidDevice), 'STATUS_UNSUCCESSFUL');
    const a = platform.allocateDmaMemory(4096n);
    const b = platform.allocateDmaMemory(4096n);
    V3.MapLogicalRangeEx(main, RW, a.asMdl(), 0x10000n, null, null);
    V3.MapLogicalRangeEx(side, RW, b.asMdl(), 0x10000n, null, null);
    expect(sim.dmaWrite(pdo.bdf, 0x10000n, Uint8Array.of(1, 2, 3)).ok).toBe(true);
    expect(sim.dmaWrite(pdo.bdf, 0x10000n, Uint8Array.of(9, 8, 7), { pasid: Asid }).ok).toBe(true);
    expect([...a.bytes.subarray(0, 3)]).toEqual([1, 2, 3]);
    expect([...b.bytes.subarray(0, 3)]).toEqual([9, 8, 7]);
    expectStatus(() => V3.DeletePasidDevice(PasidDevice), 'STATUS_RESOURCE_IN_USE');
    expectStatus(() => V3.DeleteDomain(side), 'STATUS_RESOURCE_IN_USE');
    V3.DetachPasidDevice(PasidDevice);
    // detached PASID: tagged DMA is blocked and reported with the PASID
    const r = sim.dmaWrite(pdo.bdf, 0x10000n, Uint8Array.of(5), { pasid: Asid });
    expect(r.ok).toBe(false);
    expect(platform.faults().at(-1)!.information.Details.pasid).toBe(Asid);
    V3.DeletePasidDevice(PasidDevice);
    expectStatus(() => V3.DeletePasidDevice(PasidDevice), 'STATUS_INVALID_PARAMETER_1');
  });

  it('IOMMU groups move as one: group mates cannot be in different domains', () => {
    const { V3 } = open();
    const d0 = V3.CreateDevice(platform.findDevice('0000:00:05.0')!);
    const d1 = V3.CreateDevice(platform.findDevice('0000:00:05.1')!);
    const x = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
    const y = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
    V3.AttachDeviceEx(x, d0);
    expectStatus(() => V3.AttachDeviceEx(y, d1), 'STATUS_ACCESS_DENIED');
    V3.AttachDeviceEx(x, d1);
  });

  it('device removal and policy changes reach the state-change callback and later calls', () => {
    const { V3, sim } = open();
    const dev = V3.CreateDevice(platform.findDevice('0000:00:03.0')!);
    const other = V3.CreateDevice(platform.findDevice('0000:00:04.0')!);
    const seen: number[] = [];
    const cb = (s: { AvailableDomainTypes: number }): void => {
      seen.push(s.AvailableDomainTypes);
    };
    V3.RegisterInterfaceStateChangeCallback(cb, null, other, { AvailableDomainTypes: 1 });
    expect(seen).toEqual([(1 << DomainTypeTranslate) | (1 << DomainTypePassThrough)]);
    sim.setAvailableDomainTypes('0000:00:04.0', 1 << DomainTypeTranslate);
    expect(seen.at(-1)).toBe(1 << DomainTypeTranslate);
    const pt = V3.CreateDomainEx(DomainTypePassThrough, 0n, null, null);
    expectStatus(() => V3.AttachDeviceEx(pt, other), 'STATUS_ACCESS_DENIED');
    sim.removeDevice('0000:00:04.0');
    expect(seen.at(-1)).toBe(0);
    expect(V3.QueryAvailableDomainTypes(other)).toBe(0);
    const t = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
    expectStatus(() => V3.AttachDeviceEx(t, other), 'STATUS_DEVICE_REMOVED');
    V3.AttachDeviceEx(t, dev); // the other device is unaffected
  });

  it('an injected kernel failure gives its status and leaves no partial state', () => {
    const { V3, sim } = open();
    const dev = V3.CreateDevice(platform.findDevice('0000:00:03.0')!);
    const dom = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
    sim.failNth(1, -12 /* ENOMEM */, 'attach');
    const e = expectStatus(() => V3.AttachDeviceEx(dom, dev), 'STATUS_INSUFFICIENT_RESOURCES');
    expect(e.errno).toBe(-12);
    expect(e.syscall).toBe('VFIO_DEVICE_ATTACH_IOMMUFD_PT');
    V3.AttachDeviceEx(dom, dev);
    const mem = platform.allocateDmaMemory(16384n);
    sim.failNth(1, -12, 'map');
    expectStatus(() => V3.MapLogicalRangeEx(dom, RW, mem.asMdl(), 0x40000n, null, null), 'STATUS_INSUFFICIENT_RESOURCES');
    expect(V3.MapLogicalRangeEx(dom, RW, mem.asMdl(), 0x40000n, null, null)).toBe(0x40000n);
    // a sub-range unmap whose re-map of the kept part fails: reported, and the bookkeeping
    // matches the kernel (the kept pages are unmapped, so they can be mapped again)
    sim.failNth(1, -12, 'map');
    expectStatus(() => V3.UnmapLogicalRange(dom, 0x41000n, 1n), 'STATUS_UNSUCCESSFUL');
    V3.MapLogicalRangeEx(dom, RW, mem.asMdl(), 0x40000n, null, null);
    V3.UnmapLogicalRange(dom, 0x40000n, 4n);
  });

  it('faults of PASID-tagged DMA are not delivered when the device suppresses them', () => {
    const { V3, sim } = open();
    const pdo = platform.findDevice('0000:00:05.0')!;
    const dev = V3.CreateDevice(pdo, { ConfigType: IommuDeviceCreationConfigTypePasid, Pasid: { ConfigType: PasidConfigTypePasidTaggedDma, SuppressPasidFaults: true } });
    const dom = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
    V3.AttachDeviceEx(dom, dev);
    const got: FAULT_INFORMATION[] = [];
    V3.SetDeviceFaultReportingEx(dev, 0, true, { FaultHandler: (_c, i) => got.push(i) });
    const { PasidDevice, Asid } = V3.CreatePasidDevice(dev);
    V3.AttachPasidDevice(dom, PasidDevice);
    sim.dmaWrite(pdo.bdf, 0x5000n, Uint8Array.of(1), { pasid: Asid });
    sim.dmaWrite(pdo.bdf, 0x5000n, Uint8Array.of(1));
    expect(got.length).toBe(1); // only the untagged one
    expect(got[0].Details.pasid).toBeUndefined();
    expect(platform.faults().length).toBe(2);
  });

  it('a pass-through domain lets the device reach memory at its physical address', async () => {
    const { V3 } = open();
    const dev = V3.CreateDevice(platform.findDevice('0000:00:03.0')!);
    const pt = V3.CreateDomainEx(DomainTypePassThrough, 0n, null, null);
    V3.AttachDeviceEx(pt, dev);
    const a = platform.allocateDmaMemory(4096n);
    const b = platform.allocateDmaMemory(4096n);
    expect(b.physicalAddress < 1n << 28n).toBe(true);
    a.bytes.set([4, 5, 6, 7]);
    await dmaDriverFor(platform, dev)!.copy(a.physicalAddress, b.physicalAddress, 4);
    expect([...b.bytes.subarray(0, 4)]).toEqual([4, 5, 6, 7]);
    expectStatus(() => V3.MapLogicalRangeEx(pt, RW, a.asMdl(), 0x1000n, null, null), 'STATUS_INVALID_PARAMETER_1');
    V3.MapIdentityRangeEx(pt, RW, a.asMdl());
    expectStatus(() => V3.MapIdentityRangeEx(pt, RW, a.asMdl()), 'STATUS_IN_USE');
    V3.UnmapIdentityRangeEx(pt, a.asMdl());
  });

  it('reserved regions at domain creation: ShouldMap identity-maps, otherwise the range stays unusable', () => {
    const { V3, sim } = open();
    const pdo = platform.findDevice('0000:00:05.0')!;
    const dev = V3.CreateDevice(pdo);
    const mem = platform.allocateDmaMemory(8192n);
    mem.bytes.fill(0x42);
    const hole = 0x300000n;
    const dom = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, {
      Base: mem.physicalAddress,
      NumberOfPages: 2n,
      ShouldMap: true,
      RegionNext: { Base: hole, NumberOfPages: 16n, ShouldMap: false },
    });
    V3.AttachDeviceEx(dom, dev);
    // ShouldMap TRUE: identity-mapped, DMA at the PA reaches the memory
    const r = sim.dmaRead(pdo.bdf, mem.physicalAddress + 4096n, 4);
    expect(r.ok && [...r.data]).toEqual([0x42, 0x42, 0x42, 0x42]);
    // ShouldMap FALSE: nothing is mapped there, and nothing may be
    expect(sim.dmaRead(pdo.bdf, hole, 4).ok).toBe(false);
    expectStatus(() => V3.MapLogicalRangeEx(dom, RW, mem.asMdl(0n, 4096n), hole + 0x5000n, null, null), 'STATUS_IN_USE');
    expectStatus(() => V3.ReserveLogicalAddressRange(dom, 0x2000n, hole - 0x1000n, null, null), 'STATUS_IN_USE');
    V3.MapLogicalRangeEx(dom, RW, platform.allocateDmaMemory(4096n).asMdl(), hole + 0x10000n, null, null);
    // the Buddy allocator steps around a reserved region too
    const buddy = V3.CreateDomainEx(DomainTypeTranslate, 0n, { LogicalAllocatorType: 1, BuddyAllocatorConfig: { AddressWidth: 32 } }, [
      { Base: 0n, NumberOfPages: 0x100n, ShouldMap: false },
    ]);
    expect(V3.MapLogicalRangeEx(buddy, RW, mem.asMdl(0n, 4096n), null, null, null)).toBe(0x100000n);
    // malformed lists
    expectStatus(() => V3.CreateDomainEx(DomainTypeTranslate, 0n, null, [{ Base: 0x1000n, NumberOfPages: 0n, ShouldMap: false }]), 'STATUS_INVALID_PARAMETER_4');
    expectStatus(() => V3.CreateDomainEx(DomainTypeTranslate, 0n, null, [{ Base: 0x1000n, NumberOfPages: 2n, ShouldMap: false }, { Base: 0x2000n, NumberOfPages: 1n, ShouldMap: false }]), 'STATUS_INVALID_PARAMETER_4');
    const loop: { Base: bigint; NumberOfPages: bigint; ShouldMap: boolean; RegionNext?: unknown } = { Base: 0x1000n, NumberOfPages: 1n, ShouldMap: false };
    loop.RegionNext = loop;
    expectStatus(() => V3.CreateDomainEx(DomainTypeTranslate, 0n, null, loop as never), 'STATUS_INVALID_PARAMETER_4');
  });

  it('Arm64: caller-owned stage-1 tables (Unmanaged + ConfigureDomain), IOTLB flushes, input mappings', () => {
    const { V3, sim } = open({ arch: 'arm64' });
    const pdo = platform.findDevice('0000:00:05.0')!;
    const { Buffer, ReturnLength } = platform.QueryInputMappings(pdo);
    expect(ReturnLength).toBe(Buffer.length);
    expect(Buffer[0].InputMappingId).toBe(pdo.requesterId);
    expectStatus(() => platform.QueryInputMappings(pdo, 0), 'STATUS_BUFFER_TOO_SMALL');
    const dev = V3.CreateDevice(pdo);
    const dom = V3.CreateDomainEx(DomainTypeUnmanaged, 0n, null, null);
    V3.AttachDeviceEx(dom, dev);
    // DMA is blocked until the domain is configured
    expect(sim.dmaWrite(pdo.bdf, 0x400000n, Uint8Array.of(1)).ok).toBe(false);
    // build a 3-level table (InputSize0 = 39): VA 0x400000 -> data page
    const tables = platform.allocateDmaMemory(3n * 4096n);
    const data = platform.allocateDmaMemory(4096n);
    const data2 = platform.allocateDmaMemory(4096n);
    const view = new DataView(tables.bytes.buffer, tables.bytes.byteOffset, tables.bytes.byteLength);
    const l1 = tables.physicalAddress;
    const l2 = l1 + 4096n;
    const l3 = l2 + 4096n;
    view.setBigUint64(0, l2 | 3n, true); // L1[0] -> L2
    view.setBigUint64(4096 + 2 * 8, l3 | 3n, true); // L2[2] -> L3 (VA bits 29:21 = 2)
    view.setBigUint64(8192, data.physicalAddress | (1n << 10n) | 3n, true); // L3[0] -> data page, AF
    V3.ConfigureDomain(dom, {
      Type: DomainConfigurationArm64,
      Arm64: { Ttbr0: l1, Ttbr1: 0n, Mair0: 0xff, Mair1: 0, InputSize0: 39, InputSize1: 0, CoherentTableWalks: true, TranslationEnabled: true },
    });
    expect(sim.dmaWrite(pdo.bdf, 0x400010n, Uint8Array.of(0xaa, 0xbb)).ok).toBe(true);
    expect([...data.bytes.subarray(16, 18)]).toEqual([0xaa, 0xbb]);
    // repoint the leaf: the IOTLB keeps the old translation until flushed
    view.setBigUint64(8192, data2.physicalAddress | (1n << 10n) | 3n, true);
    sim.dmaWrite(pdo.bdf, 0x400000n, Uint8Array.of(1));
    expect(data.bytes[0]).toBe(1);
    V3.FlushDomainByVaList(dom, true, 1, [0x400000n]);
    sim.dmaWrite(pdo.bdf, 0x400000n, Uint8Array.of(2));
    expect(data2.bytes[0]).toBe(2);
    // read-only leaf (AP[2]): writes fault with a permission fault
    view.setBigUint64(8192, data2.physicalAddress | (1n << 10n) | (1n << 7n) | 3n, true);
    V3.FlushDomain(dom);
    expect(sim.dmaWrite(pdo.bdf, 0x400000n, Uint8Array.of(3)).ok).toBe(false);
    const f = platform.faults().at(-1)!.information;
    expect(f.Arm64?.FaultAddress).toBe(0x400000n);
    expect(f.Arm64?.Flags.WriteNotRead).toBe(1);
    expect(data2.bytes[0]).toBe(2);
    expectStatus(() => V3.MapLogicalRangeEx(dom, RW, data.asMdl(), 0x1000n, null, null), 'STATUS_INVALID_PARAMETER_1');
  });
});
