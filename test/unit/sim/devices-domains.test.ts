import { describe, expect, it, vi } from 'vitest';
import { SimulatedBackend } from '../../../lib/backend/simulated/index.js';
import type { DeviceEvent } from '../../../lib/backend/contract.js';
import { EDU0, EDU1, expectErrno, GEN0, GEN1, rig, run, RW } from './helpers.js';

const U64_MAX = (1n << 64n) - 1n;

describe('the default machine', () => {
  it('mirrors the QEMU VM plus a PASID-capable pair', () => {
    const sim = new SimulatedBackend();
    const devs = sim.enumerateDevices();
    expect(devs.map((d) => d.bdf)).toEqual([EDU0, EDU1, GEN0, GEN1]);
    expect(devs[0]).toMatchObject({ vendorId: 0x1234, deviceId: 0x11e8, classCode: 0x00ff00, maxPasidLog2: 0, requesterId: 0x18, driver: 'sim', usable: true });
    expect(devs[1]).toMatchObject({ vendorId: 0x1234, deviceId: 0x11e8, requesterId: 0x20 });
    expect(devs[0].iommuGroup).not.toBe(devs[1].iommuGroup);
    expect(devs[2]).toMatchObject({ vendorId: 0x1b36, deviceId: 0x0005, maxPasidLog2: 20, requesterId: 0x28 });
    expect(devs[3]).toMatchObject({ requesterId: 0x29, maxPasidLog2: 20 });
    expect(devs[2].iommuGroup).toBe(devs[3].iommuGroup);
    expect(sim.kind).toBe('simulated');
    expect(sim.reason).toBe('simulated backend requested');
    expect(sim.memoryInfo.physicalIsReal).toBe(true);
    expect(sim.capabilities).toEqual({
      domainTypes: 0b011,
      passThrough: 'native',
      iommu: 'vtd',
      faultSource: 'engine',
      faultDetails: { direction: true, reasonCodes: true, address: 'page' },
      writeOnlyMappings: 'readable',
      mapBeforeAttach: 'direct',
      maxAreasPerDomain: null,
      pasid: true,
      unmanagedDomains: false,
      arch: 'x86_64',
      unattachedGeometry: 'modelled',
    });
    expect(new SimulatedBackend({ reason: 'because' }).reason).toBe('because');
  });

  it('arm64 machines add Unmanaged domains and stream IDs', () => {
    const sim = new SimulatedBackend({ arch: 'arm64' });
    expect(sim.capabilities).toMatchObject({ domainTypes: 0b111, unmanagedDomains: true, arch: 'arm64' });
    const dev = sim.openDevice(EDU0);
    expect(sim.inputMappingIds(dev)).toEqual([0x18]);
    const x86 = new SimulatedBackend();
    expectErrno(() => x86.allocDomain('bogus' as never), 'ENOTSUP');
    expect(() => x86.allocDomain(1 as never)).toThrow(TypeError);
  });

  it('is configurable: devices, width, reserved regions, page sizes', () => {
    const sim = new SimulatedBackend({
      addressWidth: 48,
      reservedRegions: [{ start: 0x10000000n, last: 0x1fffffffn }],
      pageSizes: (1n << 12n) | (1n << 21n),
      devices: [{ bdf: '01:00.0', model: 'edu', iommuGroup: 7, reservedRegions: [{ start: 0x8000000n, last: 0x80fffffn }] }],
    });
    expect(sim.enumerateDevices().map((d) => [d.bdf, d.iommuGroup])).toEqual([['0000:01:00.0', 7]]);
    const dom = sim.allocDomain('translate');
    sim.attach(dom, sim.openDevice('0000:01:00.0'));
    expect(sim.geometry(dom)).toEqual({
      ranges: [
        { start: 0n, last: 0x7ffffffn },
        { start: 0x8100000n, last: 0xfffffffn },
        { start: 0x20000000n, last: (1n << 48n) - 1n },
      ],
      alignment: 4096n,
      pageSizes: (1n << 12n) | (1n << 21n),
      addressWidth: 48,
    });
    expect(sim.inspect().domains[0].pageTable?.levels).toBe(4);
    expect(() => new SimulatedBackend({ addressWidth: 20 })).toThrow(RangeError);
    expect(() => new SimulatedBackend({ pageSizes: 1n << 21n })).toThrow(RangeError);
    expect(() => new SimulatedBackend({ devices: [{ bdf: 'nonsense' }] })).toThrow(RangeError);
  });
});

describe('geometry (IOMMU_IOAS_IOVA_RANGES)', () => {
  it('unattached: [0, 2^64-1], alignment 1; attached: the kernel numbers of the VM', () => {
    const { sim, dom, dev } = rig({}, false);
    expect(sim.geometry(dom)).toEqual({ ranges: [{ start: 0n, last: U64_MAX }], alignment: 1n, pageSizes: 0x40201000n, addressWidth: 64 });
    sim.attach(dom, dev);
    expect(sim.geometry(dom)).toEqual({
      ranges: [
        { start: 0n, last: 0xfedfffffn },
        { start: 0xfef00000n, last: 0x7fffffffffn },
      ],
      alignment: 0x1000n,
      pageSizes: 0x40201000n,
      addressWidth: 39,
    });
    sim.detach(dev);
    expect(sim.geometry(dom).alignment).toBe(1n);
  });

  it('ENOENT for unknown handles; a device handle is not a domain', () => {
    const { sim, dev } = rig();
    expectErrno(() => sim.geometry(1234), 'ENOENT', 'IOMMU_IOAS_IOVA_RANGES');
    expectErrno(() => sim.geometry(dev), 'ENOENT');
    expectErrno(() => sim.freeDomain(dev), 'ENOENT');
  });
});

describe('attach / detach and IOMMU groups', () => {
  it('detach of a detached device is a no-op', () => {
    const { sim, dev } = rig();
    const dom2 = sim.allocDomain('translate');
    sim.detach(dev);
    sim.detach(dev);
    sim.attach(dom2, dev);
  });

  it('devices of one group must share a domain (EINVAL otherwise)', () => {
    const sim = new SimulatedBackend();
    const a = sim.openDevice(GEN0);
    const b = sim.openDevice(GEN1);
    const d1 = sim.allocDomain('translate');
    const d2 = sim.allocDomain('translate');
    sim.attach(d1, a);
    expectErrno(() => sim.attach(d2, b), 'EINVAL', 'VFIO_DEVICE_ATTACH_IOMMUFD_PT');
    sim.attach(d1, b);
    sim.detach(a);
    expectErrno(() => sim.attach(d2, a), 'EINVAL');
    sim.detach(b);
    sim.attach(d2, a);
    // separate groups are independent
    const e0 = sim.openDevice(EDU0);
    const e1 = sim.openDevice(EDU1);
    sim.attach(d1, e0);
    sim.attach(d2, e1);
  });

  it('attach fails EADDRINUSE when areas overlap the reserved regions of the new device', () => {
    const sim = new SimulatedBackend({
      devices: [
        { bdf: '00:03.0', model: 'edu', iommuGroup: 1 },
        { bdf: '00:04.0', model: 'edu', iommuGroup: 2, reservedRegions: [{ start: 0x100000n, last: 0x1fffffn }] },
      ],
    });
    const dom = sim.allocDomain('translate');
    const a = sim.openDevice('00:03.0');
    const b = sim.openDevice('00:04.0');
    sim.attach(dom, a);
    const mem = sim.allocateMemory(0x1000n);
    sim.map(dom, 0x180000n, mem.runs(0n, 0x1000n), RW);
    expectErrno(() => sim.attach(dom, b), 'EADDRINUSE');
    sim.unmap(dom, 0x180000n, 0x1000n);
    sim.attach(dom, b);
    expect(sim.geometry(dom).ranges[0]).toEqual({ start: 0n, last: 0xfffffn });
    expectErrno(() => sim.map(dom, 0x180000n, mem.runs(0n, 0x1000n), RW), 'EINVAL');
  });

  it('open / close: EINVAL for a malformed BDF; close detaches, and the old handle is EBADF', () => {
    const { sim, dom, dev } = rig();
    expectErrno(() => sim.openDevice('garbage'), 'EINVAL');
    sim.closeDevice(dev);
    expectErrno(() => sim.attach(dom, dev), 'EBADF');
    sim.freeDomain(dom); // close detached it
    const again = sim.openDevice(EDU0);
    expect(again).not.toBe(dev);
    expect(sim.availableDomainTypes(again)).toBe(0b011);
  });
});

describe('PASID', () => {
  it('attach rules: EOPNOTSUPP without the capability, EINVAL out of range, EBUSY twice, ENOENT on detach', () => {
    const sim = new SimulatedBackend();
    const edu = sim.openDevice(EDU0);
    const gen = sim.openDevice(GEN0);
    const dom = sim.allocDomain('translate');
    expectErrno(() => sim.attachPasid(dom, edu, 1), 'EOPNOTSUPP');
    expectErrno(() => sim.attachPasid(dom, gen, 0), 'EINVAL');
    expectErrno(() => sim.attachPasid(dom, gen, 1 << 20), 'EINVAL');
    sim.attachPasid(dom, gen, 5);
    expectErrno(() => sim.attachPasid(dom, gen, 5), 'EBUSY');
    const dom2 = sim.allocDomain('translate');
    expectErrno(() => sim.attachPasid(dom2, gen, 5), 'EBUSY');
    sim.attachPasid(dom2, gen, (1 << 20) - 1);
    expect(sim.geometry(dom).alignment).toBe(4096n); // a PASID attachment narrows the geometry
    expectErrno(() => sim.freeDomain(dom), 'EBUSY');
    sim.detachPasid(gen, 5);
    expectErrno(() => sim.detachPasid(gen, 5), 'ENOENT');
    sim.freeDomain(dom);
    expect(() => sim.attachPasid(dom2, gen, 1.5)).toThrow(TypeError);
  });

  it('PASID-tagged DMA translates through the PASID domain; untagged DMA through the RID domain', () => {
    const sim = new SimulatedBackend();
    const gen = sim.openDevice(GEN0);
    const ridDom = sim.allocDomain('translate');
    const pasidDom = sim.allocDomain('translate');
    sim.attach(ridDom, gen);
    sim.attachPasid(pasidDom, gen, 7);
    const a = sim.allocateMemory(0x1000n);
    const b = sim.allocateMemory(0x1000n);
    a.bytes!.fill(0xaa);
    b.bytes!.fill(0xbb);
    sim.map(ridDom, 0x1000n, a.runs(0n, 0x1000n), RW);
    sim.map(pasidDom, 0x1000n, b.runs(0n, 0x1000n), RW);
    const untagged = sim.dmaRead(GEN0, 0x1000n, 4);
    const tagged = sim.dmaRead(GEN0, 0x1000n, 4, { pasid: 7 });
    expect(untagged.ok && untagged.data).toEqual(new Uint8Array(4).fill(0xaa));
    expect(tagged.ok && tagged.data).toEqual(new Uint8Array(4).fill(0xbb));
    const miss = sim.dmaRead(GEN0, 0x1000n, 4, { pasid: 8 });
    expect(miss.ok).toBe(false);
    if (!miss.ok) {
      expect(miss.fault).toMatchObject({ kind: 'translation', reasonCode: 0x59, pasid: 8, bdf: GEN0 });
      expect(miss.fault.raw).toBe('DMAR: [DMA Read PASID 0x8] Request device [00:05.0] fault addr 0x1000 [fault reason 0x59] SM: Present bit in PASID Table Entry is clear');
    }
    const edu = sim.dmaRead(EDU0, 0x1000n, 4, { pasid: 1 });
    expect(!edu.ok && edu.fault.reasonCode).toBe(0x45);
  });
});

describe('device removal and policy changes', () => {
  it('removeDevice: event, handles fail ENODEV, attachments dropped, DMA refused, close still works', () => {
    const { sim, dom, dev } = rig();
    const events: DeviceEvent[] = [];
    sim.onDeviceEvent((e) => events.push(e));
    const regions = sim.deviceRegions(dev);
    sim.removeDevice(EDU0);
    expect(events).toEqual([{ bdf: EDU0, present: false, availableDomainTypes: 0 }]);
    expect(sim.enumerateDevices().map((d) => d.bdf)).not.toContain(EDU0);
    expectErrno(() => sim.availableDomainTypes(dev), 'ENODEV');
    expectErrno(() => sim.attach(dom, dev), 'ENODEV');
    expectErrno(() => sim.detach(dev), 'ENODEV');
    expectErrno(() => sim.deviceRegions(dev), 'ENODEV');
    expectErrno(() => regions.barRead32(0, 0), 'ENODEV');
    expectErrno(() => sim.dmaRead(EDU0, 0n, 4), 'ENODEV');
    expect(sim.geometry(dom).alignment).toBe(1n);
    sim.freeDomain(dom);
    sim.closeDevice(dev);
    expectErrno(() => sim.removeDevice(EDU0), 'ENOENT');
    // hot-plug it back: a new device, old handle stays dead
    sim.addDevice({ bdf: EDU0, model: 'edu', iommuGroup: 3 });
    expect(events[1]).toEqual({ bdf: EDU0, present: true, availableDomainTypes: 0b011 });
    expectErrno(() => sim.addDevice({ bdf: EDU0 }), 'EEXIST');
    const h = sim.openDevice(EDU0);
    expect(h).not.toBe(dev);
  });

  it('setAvailableDomainTypes changes the mask and emits an event', () => {
    const { sim, dev } = rig();
    const listener = vi.fn();
    const off = sim.onDeviceEvent(listener);
    sim.setAvailableDomainTypes(EDU0, 0b001);
    expect(sim.availableDomainTypes(dev)).toBe(0b001);
    expect(listener).toHaveBeenCalledWith({ bdf: EDU0, present: true, availableDomainTypes: 0b001 });
    off();
    sim.setAvailableDomainTypes(EDU0, 0b011);
    expect(listener).toHaveBeenCalledTimes(1);
    expect(() => sim.setAvailableDomainTypes(EDU0, -1)).toThrow(TypeError);
  });

  it('after close() later calls fail EBADF', () => {
    const { sim, dom } = rig();
    sim.close();
    expectErrno(() => sim.allocDomain('translate'), 'EBADF');
    expectErrno(() => sim.map(dom, 0x1000n, run(0x100000n, 0x1000n), RW), 'EBADF');
  });
});
