/**
 * Nothing but IommuError leaves the public API (issue 9 class 6), and no bad value is silently
 * accepted (class 7): WDK members answer STATUS_INVALID_PARAMETER_n, platform services and
 * options STATUS_INVALID_PARAMETER naming `.argument`, a closed platform or freed memory
 * STATUS_INVALID_DEVICE_REQUEST, and a backend failure its errno's status.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  DMA_IOMMU_INTERFACE_EX_VERSION_2,
  DomainConfigurationArm64,
  DomainTypeTranslate,
  DmaMemory,
  DomainTypeUnmanaged,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  IoGetIommuInterfaceEx,
  IommuDeviceCreationConfigTypePasid,
  IommuPlatform,
  MapPhysicalAddressTypeContiguousRange,
  PasidConfigTypeDefaultPasidOnly,
  SimulatedBackend,
  openPlatform,
} from '../../../lib/index.js';
import { type Rig, expectIommu, simRig } from './helpers.js';

const RW = IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE;
let rig: Rig | null = null;

afterEach(() => {
  try {
    rig?.platform.close();
  } finally {
    rig = null;
  }
});

function arm64Config(over: Record<string, unknown> = {}): never {
  return { Type: DomainConfigurationArm64, Arm64: { Ttbr0: 0x100000n, Ttbr1: 0n, Mair0: 0, Mair1: 0, InputSize0: 39, InputSize1: 0, CoherentTableWalks: true, TranslationEnabled: true, ...over } } as never;
}

describe('backend failures become IommuError at the one conversion point', () => {
  it('MapLogicalRangeEx whose IOVA-range query fails: the errno status, the bookkeeping untouched', () => {
    rig = simRig();
    const { V3, platform, sim } = rig;
    const dom = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
    const mem = platform.allocateDmaMemory(4096n);
    sim.failNth(1, -12 /* ENOMEM */, 'geometry');
    const e = expectIommu(() => V3.MapLogicalRangeEx(dom, RW, mem.asMdl(), 0x10000n, null, null), 'STATUS_INSUFFICIENT_RESOURCES');
    expect(e.operation).toBe('MapLogicalRangeEx');
    expect(e.errno).toBe(-12);
    expect(V3.MapLogicalRangeEx(dom, RW, mem.asMdl(), 0x10000n, null, null)).toBe(0x10000n);
  });

  it('geometry() whose query fails, and the fast contiguous path: IommuError', () => {
    rig = simRig();
    const { V3, platform, sim } = rig;
    const dom = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
    sim.failNth(1, -5 /* EIO */, 'geometry');
    expectIommu(() => platform.geometry(dom), 'STATUS_IO_DEVICE_ERROR');
    const mem = platform.allocateDmaMemory(4096n);
    sim.failNth(1, -12, 'geometry');
    const range = { MapType: MapPhysicalAddressTypeContiguousRange, ContiguousRange: { Base: mem.physicalAddress, Size: 4096n } } as never;
    expectIommu(() => V3.MapLogicalRangeEx(dom, RW, range, 0x10000n, null, null), 'STATUS_INSUFFICIENT_RESOURCES');
  });

  it('DmaMemory after free and after close: STATUS_INVALID_DEVICE_REQUEST from every member', () => {
    rig = simRig();
    const { platform } = rig;
    const a = platform.allocateDmaMemory(8192n);
    const b = platform.allocateDmaMemory(8192n);
    a.free();
    platform.close();
    for (const m of [a, b]) {
      expect(m.freed).toBe(true);
      expectIommu(() => m.asMdl(), 'STATUS_INVALID_DEVICE_REQUEST');
      expectIommu(() => m.mdl(), 'STATUS_INVALID_DEVICE_REQUEST');
      expectIommu(() => m.asPfnArray(), 'STATUS_INVALID_DEVICE_REQUEST');
      expectIommu(() => m.asContiguousRange(), 'STATUS_INVALID_DEVICE_REQUEST');
      expectIommu(() => m.physicalAddress, 'STATUS_INVALID_DEVICE_REQUEST');
      expectIommu(() => m.read(0n, 4), 'STATUS_INVALID_DEVICE_REQUEST');
      expectIommu(() => m.write(0n, Uint8Array.of(1)), 'STATUS_INVALID_DEVICE_REQUEST');
      expectIommu(() => m.runs(), 'STATUS_INVALID_DEVICE_REQUEST');
      expectIommu(() => m.bytes, 'STATUS_INVALID_DEVICE_REQUEST');
      m.free(); // idempotent
    }
  });

  it('DmaMemory bad offsets and lengths: STATUS_INVALID_PARAMETER naming the argument', () => {
    rig = simRig();
    const m = rig.platform.allocateDmaMemory(8192n);
    expectIommu(() => m.asMdl(1n), 'STATUS_INVALID_PARAMETER', 'offset');
    expectIommu(() => m.asMdl(8192n), 'STATUS_INVALID_PARAMETER', 'offset');
    expectIommu(() => m.asMdl(-4096n), 'STATUS_INVALID_PARAMETER', 'offset');
    expectIommu(() => m.asMdl(1 as never), 'STATUS_INVALID_PARAMETER', 'offset');
    expectIommu(() => m.asMdl(0n, 0n), 'STATUS_INVALID_PARAMETER', 'length');
    expectIommu(() => m.asMdl(0n, 8193n), 'STATUS_INVALID_PARAMETER', 'length');
    expectIommu(() => m.asPfnArray(0n, 1.5 as never), 'STATUS_INVALID_PARAMETER', 'length');
    expectIommu(() => m.read(0n, 8193), 'STATUS_INVALID_PARAMETER', 'length');
    expectIommu(() => m.read(0n, Number.NaN), 'STATUS_INVALID_PARAMETER', 'length');
    expectIommu(() => m.read(-1n, 1), 'STATUS_INVALID_PARAMETER', 'offset');
    expectIommu(() => m.write(8192n, Uint8Array.of(1)), 'STATUS_INVALID_PARAMETER', 'data');
    expectIommu(() => m.write(0n, [1, 2] as never), 'STATUS_INVALID_PARAMETER', 'data');
    expect(m.read(0n, 4)).toEqual(new Uint8Array(4));
  });

  it('asContiguousRange of non-contiguous memory: STATUS_NOT_SUPPORTED', () => {
    // a backend allocation of two physically separate pages
    const pages = [0x200000n, 0x800000n];
    const mem = {
      id: 1,
      size: 8192n,
      bytes: new Uint8Array(8192),
      freed: false,
      runs: (offset: bigint, length: bigint) =>
        offset === 0n && length === 8192n ? pages.map((pa) => ({ pa, length: 4096n })) : [{ pa: pages[Number(offset / 4096n)], length }],
      pageAddress: (i: number) => pages[i],
      read: () => new Uint8Array(0),
      write: () => undefined,
      free() {
        this.freed = true;
      },
    };
    const m = new DmaMemory(mem);
    expectIommu(() => m.asContiguousRange(), 'STATUS_NOT_SUPPORTED');
    expect((m.asContiguousRange(4096n) as { ContiguousRange: { Base: bigint } }).ContiguousRange.Base).toBe(0x800000n);
    expect((m.asPfnArray() as { PfnArray: { PageFrame: BigUint64Array } }).PfnArray.PageFrame).toEqual(new BigUint64Array([0x200n, 0x800n]));
  });

  it('deviceRegions(): failures of the returned object are IommuError (bad offset, after DeleteDevice, after close)', () => {
    rig = simRig();
    const { V3, platform } = rig;
    const dev = V3.CreateDevice(platform.findDevice('0000:00:03.0')!);
    const regions = platform.deviceRegions(dev);
    expect(regions.configRead(0, 2)).toBe(0x1234);
    expectIommu(() => regions.barRead32(0, 0x7fffffff), 'STATUS_INVALID_PARAMETER');
    expectIommu(() => regions.configRead(1 << 20, 4), 'STATUS_INVALID_PARAMETER');
    expectIommu(() => regions.barRead32(9, 0), 'STATUS_INVALID_PARAMETER');
    V3.DeleteDevice(dev);
    expectIommu(() => regions.barRead32(0, 0), 'STATUS_INVALID_DEVICE_REQUEST');
    expectIommu(() => platform.deviceRegions(dev), 'STATUS_INVALID_PARAMETER', 'device');
    const dev2 = V3.CreateDevice(platform.findDevice('0000:00:03.0')!);
    const r2 = platform.deviceRegions(dev2);
    platform.close();
    expectIommu(() => r2.configRead(0, 2), 'STATUS_INVALID_DEVICE_REQUEST');
    expectIommu(() => platform.deviceRegions(dev2), 'STATUS_INVALID_DEVICE_REQUEST');
  });

  it('geometry() and deviceRegions() after close say STATUS_INVALID_DEVICE_REQUEST', () => {
    rig = simRig();
    const { V3, platform } = rig;
    const dom = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
    const dev = V3.CreateDevice(platform.findDevice('0000:00:03.0')!);
    platform.close();
    expectIommu(() => platform.geometry(dom), 'STATUS_INVALID_DEVICE_REQUEST');
    expectIommu(() => platform.deviceRegions(dev), 'STATUS_INVALID_DEVICE_REQUEST');
    expectIommu(() => platform.findDevice('00:03.0'), 'STATUS_INVALID_DEVICE_REQUEST');
    expectIommu(() => platform.allocateDmaMemory(4096n), 'STATUS_INVALID_DEVICE_REQUEST');
  });
});

describe('JS conversions never escape: bad numbers are argument errors', () => {
  it('CreateDomainEx and IoGetIommuInterfaceEx Flags: NaN, 1.5, Infinity, 2^64, strings', () => {
    rig = simRig();
    const { V3, platform } = rig;
    for (const bad of [Number.NaN, 1.5, Infinity, -0.5, 1, 1n, 2n ** 64n, '0', null, {}, { AsUlonglong: 1.5 }, { AsUlonglong: Number.NaN }]) {
      expectIommu(() => V3.CreateDomainEx(DomainTypeTranslate, bad as never, null, null), 'STATUS_INVALID_PARAMETER_2', 'Flags');
      expectIommu(() => IoGetIommuInterfaceEx(DMA_IOMMU_INTERFACE_EX_VERSION_2, bad as never, { platform }), 'STATUS_INVALID_PARAMETER_2', 'Flags');
    }
    V3.DeleteDomain(V3.CreateDomainEx(DomainTypeTranslate, { AsUlonglong: 0n } as never, null, null));
    V3.DeleteDomain(V3.CreateDomainEx(DomainTypeTranslate, 0, null, null));
  });

  it('platform services and options: STATUS_INVALID_PARAMETER with .argument', () => {
    rig = simRig();
    const { platform } = rig;
    expectIommu(() => platform.findDevice(42 as never), 'STATUS_INVALID_PARAMETER', 'bdf');
    expectIommu(() => platform.findDevice(undefined as never), 'STATUS_INVALID_PARAMETER', 'bdf');
    expectIommu(() => platform.allocateDmaMemory(4096n, 7 as never), 'STATUS_INVALID_PARAMETER', 'options');
    expectIommu(() => platform.allocateDmaMemory(4096n, { lazy: 1 } as never), 'STATUS_INVALID_PARAMETER', 'options.lazy');
    for (const size of [0, -1, 1.5, Number.NaN, Infinity, '4096', 0n, -4096n, 2n ** 64n]) {
      expectIommu(() => platform.allocateDmaMemory(size as never), 'STATUS_INVALID_PARAMETER', 'size');
    }
    // absent means undefined or null
    platform.allocateDmaMemory(4096n, null as never).free();
    platform.allocateDmaMemory(4096n, undefined).free();
    expectIommu(() => platform.geometry({} as never), 'STATUS_INVALID_PARAMETER', 'domain');
    expectIommu(() => new IommuPlatform(null as never), 'STATUS_INVALID_PARAMETER', 'backend');
    expectIommu(() => IoGetIommuInterfaceEx(DMA_IOMMU_INTERFACE_EX_VERSION_2, 0n, { platform: 7 } as never), 'STATUS_INVALID_PARAMETER', 'options.platform');
    expectIommu(() => IoGetIommuInterfaceEx(DMA_IOMMU_INTERFACE_EX_VERSION_2, 0n, 5 as never), 'STATUS_INVALID_PARAMETER', 'options');
    expectIommu(() => openPlatform({ backend: 42 } as never), 'STATUS_INVALID_PARAMETER');
    expectIommu(() => openPlatform({ backend: 'sim', simulator: { arch: 'x' } } as never), 'STATUS_INVALID_PARAMETER');
    expectIommu(() => new IommuPlatform(new SimulatedBackend(), { onHandlerError: 5 } as never), 'STATUS_INVALID_PARAMETER', 'options.onHandlerError');
  });
});

describe('no silent acceptance (strict parsers, absent = undefined/null only)', () => {
  it('reserved regions: negative base, 0/NaN lists, bad page counts, bad ShouldMap', () => {
    rig = simRig();
    const { V3 } = rig;
    const create = (regions: unknown): unknown => V3.CreateDomainEx(DomainTypeTranslate, 0n, null, regions as never);
    expectIommu(() => create({ Base: -4096n, NumberOfPages: 1 }), 'STATUS_INVALID_PARAMETER_4', 'ReservedRegions');
    expectIommu(() => create([{ Base: -(2n ** 64n), NumberOfPages: 1 }]), 'STATUS_INVALID_PARAMETER_4', 'ReservedRegions');
    expectIommu(() => create(0), 'STATUS_INVALID_PARAMETER_4', 'ReservedRegions');
    expectIommu(() => create(Number.NaN), 'STATUS_INVALID_PARAMETER_4', 'ReservedRegions');
    expectIommu(() => create({ Base: 0x10000n, NumberOfPages: 1.5 }), 'STATUS_INVALID_PARAMETER_4', 'ReservedRegions');
    expectIommu(() => create({ Base: 0x10000n, NumberOfPages: 1, RegionNext: 0 }), 'STATUS_INVALID_PARAMETER_4', 'ReservedRegions');
    expectIommu(() => create({ Base: 0x10000n, NumberOfPages: 1, ShouldMap: 'yes' }), 'STATUS_INVALID_PARAMETER_4', 'ReservedRegions.ShouldMap');
    V3.DeleteDomain(create({ Base: 0x10000n, NumberOfPages: 1, RegionNext: null }) as never);
  });

  it('allocator and device configurations: 0/NaN/false are not "absent"', () => {
    rig = simRig();
    const { V3, platform } = rig;
    for (const bad of [0, Number.NaN, false, '']) {
      expectIommu(() => V3.CreateDomainEx(DomainTypeTranslate, 0n, bad as never, null), 'STATUS_INVALID_PARAMETER_3', 'LogicalAllocatorConfig');
      expectIommu(() => V3.CreateDevice(platform.findDevice('0000:00:03.0')!, bad as never), 'STATUS_INVALID_PARAMETER_2', 'DeviceConfig');
    }
    const linked = { ConfigType: IommuDeviceCreationConfigTypePasid, Pasid: { ConfigType: PasidConfigTypeDefaultPasidOnly }, NextConfiguration: 0 };
    expectIommu(() => V3.CreateDevice(platform.findDevice('0000:00:03.0')!, linked as never), 'STATUS_INVALID_PARAMETER_2', 'DeviceConfig');
    // nothing was created by the refused calls
    expect((platform.inspect() as { devices: unknown[]; domains: unknown[] }).devices).toEqual([]);
    expect((platform.inspect() as { domains: unknown[] }).domains).toEqual([]);
  });

  it('StateFields: fractional or wider than 32 bits is refused, not truncated', () => {
    rig = simRig();
    const { V3, platform } = rig;
    const dev = V3.CreateDevice(platform.findDevice('0000:00:03.0')!);
    const cb = (): void => undefined;
    for (const bad of [{ AsULONG: 1.5 }, { AsULONG: 2 ** 32 + 1 }, { AsULONG: -1 }, { AsULONG: Number.NaN }, { AvailableDomainTypes: 2 }, { AvailableDomainTypes: 'yes' }, 1, null]) {
      expectIommu(() => V3.RegisterInterfaceStateChangeCallback(cb, null, dev, bad as never), 'STATUS_INVALID_PARAMETER_4');
    }
    V3.RegisterInterfaceStateChangeCallback(cb, null, dev, { AsULONG: 1 });
    V3.UnregisterInterfaceStateChangeCallback(cb, dev);
  });

  it('the V1 MDL members take an MDL only, not an IOMMU_MAP_PHYSICAL_ADDRESS', () => {
    rig = simRig();
    const { platform } = rig;
    const dom = platform.CreateDomain(true);
    const mem = platform.allocateDmaMemory(4096n);
    expectIommu(() => platform.MapLogicalRange(dom, RW, mem.asMdl() as never, 0x10000n), 'STATUS_INVALID_PARAMETER_3', 'Mdl');
    expectIommu(() => platform.MapIdentityRange(dom, RW, mem.asPfnArray() as never), 'STATUS_INVALID_PARAMETER_3', 'Mdl');
    expectIommu(() => platform.UnmapIdentityRange(dom, mem.asMdl() as never), 'STATUS_INVALID_PARAMETER_2', 'Mdl');
    platform.MapLogicalRange(dom, RW, mem.mdl(), 0x10000n);
    platform.UnmapLogicalRange(dom, 0x10000n, 1n);
  });

  it('ConfigureDomain: Mair0 must be a ULONG; what the backend refuses is parameter 2', () => {
    rig = simRig({ arch: 'arm64' } as never);
    const { V3 } = rig;
    const dom = V3.CreateDomainEx(DomainTypeUnmanaged, 0n, null, null);
    for (const Mair0 of ['x', 1.5, -1, 2 ** 32, Number.NaN]) {
      expectIommu(() => V3.ConfigureDomain(dom, arm64Config({ Mair0 })), 'STATUS_INVALID_PARAMETER_2', 'Configuration');
    }
    expectIommu(() => V3.ConfigureDomain(dom, arm64Config({ TranslationEnabled: 'on' })), 'STATUS_INVALID_PARAMETER_2');
    // a table address outside RAM: refused by the backend, reported as the configuration's fault
    expectIommu(() => V3.ConfigureDomain(dom, arm64Config({ Ttbr0: 1n << 50n })), 'STATUS_INVALID_PARAMETER_2');
    expectIommu(() => V3.FlushDomainByVaList(dom, true, 1, [-1n]), 'STATUS_INVALID_PARAMETER_4', 'VaList');
    expectIommu(() => V3.FlushDomainByVaList(dom, true, 1, [2n ** 64n]), 'STATUS_INVALID_PARAMETER_4', 'VaList');
    expectIommu(() => V3.FlushDomainByVaList(dom, true, '1' as never, [0n]), 'STATUS_INVALID_PARAMETER_3', 'Number');
  });
});
