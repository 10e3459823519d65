/**
 * Surprise removal (issue 9 class 3): after a device disappears, every path to release what it
 * held works — DetachDeviceEx reports STATUS_DEVICE_REMOVED and records the device detached,
 * DeleteDevice/DeleteDomain succeed, close() succeeds — also from the state-change callback;
 * and a PDO of the removed device does not name the device that later appears at its address.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DomainTypeTranslate, IOMMU_ACCESS_READ, IOMMU_ACCESS_WRITE, IommuDeviceCreationConfigTypePasid, PasidConfigTypePasidTaggedDma } from '../../../lib/index.js';
import { type Rig, expectIommu, simRig } from './helpers.js';

const RW = IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE;
const BDF = '0000:00:04.0';
let rig: Rig | null = null;

afterEach(() => {
  rig?.platform.close();
  rig = null;
});

function attached(): Rig & { dev: ReturnType<Rig['V3']['CreateDevice']>; dom: ReturnType<Rig['V3']['CreateDomainEx']> } {
  rig = simRig();
  const { V3, platform } = rig;
  const dev = V3.CreateDevice(platform.findDevice(BDF)!);
  const dom = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
  V3.AttachDeviceEx(dom, dev);
  const mem = platform.allocateDmaMemory(4096n);
  V3.MapLogicalRangeEx(dom, RW, mem.asMdl(), 0x10000n, null, null);
  return { ...rig, dev, dom };
}

function attachedDevices(r: Rig): number {
  const state = r.platform.inspect() as { domains: Array<{ devices: string[] }> };
  return state.domains.reduce((n, d) => n + d.devices.length, 0);
}

describe('surprise removal leaves a path to release everything', () => {
  it('DetachDeviceEx reports STATUS_DEVICE_REMOVED and records the device detached; Delete* and close() work', () => {
    const r = attached();
    r.sim.removeDevice(BDF);
    expectIommu(() => r.V3.DetachDeviceEx(r.dev), 'STATUS_DEVICE_REMOVED');
    expect(attachedDevices(r)).toBe(0);
    // detached now: a second detach is an argument error, not a removal
    expectIommu(() => r.V3.DetachDeviceEx(r.dev), 'STATUS_INVALID_PARAMETER_1');
    r.V3.UnmapLogicalRange(r.dom, 0x10000n, 1n);
    r.V3.DeleteDevice(r.dev);
    r.V3.DeleteDomain(r.dom);
    r.platform.close();
    expect(r.platform.closed).toBe(true);
  });

  it('close() succeeds with a removed device still attached (nothing to undo for hardware that is gone)', () => {
    const r = attached();
    r.sim.removeDevice(BDF);
    r.platform.close();
    expect(r.platform.closed).toBe(true);
  });

  it('a state-change callback can clean up on removal (detach, unregister, delete) and close() then works', () => {
    const r = attached();
    const seen: number[] = [];
    const codes: string[] = [];
    const cb = (s: { AvailableDomainTypes: number }): void => {
      seen.push(s.AvailableDomainTypes);
      if (s.AvailableDomainTypes !== 0) return;
      try {
        r.V3.DetachDeviceEx(r.dev);
      } catch (e) {
        codes.push((e as { code: string }).code);
      }
      r.V3.UnregisterInterfaceStateChangeCallback(cb, r.dev);
      r.V3.DeleteDevice(r.dev);
    };
    r.V3.RegisterInterfaceStateChangeCallback(cb, null, r.dev, { AvailableDomainTypes: 1 });
    r.sim.removeDevice(BDF);
    expect(seen.at(-1)).toBe(0);
    expect(codes).toEqual(['STATUS_DEVICE_REMOVED']);
    expect(attachedDevices(r)).toBe(0);
    expect((r.platform.inspect() as { devices: unknown[] }).devices).toEqual([]);
    r.V3.UnmapLogicalRange(r.dom, 0x10000n, 1n);
    r.V3.DeleteDomain(r.dom);
    r.platform.close();
  });

  it('a removed PASID device detaches the same way', () => {
    rig = simRig();
    const { V3, platform, sim } = rig;
    const pdo = platform.findDevice('0000:00:05.0')!;
    const dev = V3.CreateDevice(pdo, { ConfigType: IommuDeviceCreationConfigTypePasid, Pasid: { ConfigType: PasidConfigTypePasidTaggedDma } });
    const dom = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
    const side = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
    V3.AttachDeviceEx(dom, dev);
    const { PasidDevice } = V3.CreatePasidDevice(dev);
    V3.AttachPasidDevice(side, PasidDevice);
    sim.removeDevice(pdo.bdf);
    expectIommu(() => V3.DetachPasidDevice(PasidDevice), 'STATUS_DEVICE_REMOVED');
    expectIommu(() => V3.DetachDeviceEx(dev), 'STATUS_DEVICE_REMOVED');
    V3.DeletePasidDevice(PasidDevice);
    V3.DeleteDevice(dev);
    V3.DeleteDomain(side);
    V3.DeleteDomain(dom);
    platform.close();
  });

  it('the V1 DetachDevice of a removed device also records it detached', () => {
    rig = simRig();
    const { platform, sim } = rig;
    const pdo = platform.findDevice(BDF)!;
    const dom = platform.CreateDomain(true);
    platform.AttachDevice(dom, pdo);
    sim.removeDevice(BDF);
    expectIommu(() => platform.DetachDevice(dom, pdo), 'STATUS_DEVICE_REMOVED');
    platform.DeleteDomain(dom);
    platform.close();
  });

  it('a stale PDO does not name the device that later appears at its address; the new PDO works', () => {
    rig = simRig();
    const { V3, platform, sim } = rig;
    const oldPdo = platform.findDevice(BDF)!;
    const group = oldPdo.iommuGroup!;
    const unused = platform.findDevice('0000:00:03.0')!;
    const oldDev = V3.CreateDevice(oldPdo);
    sim.removeDevice(BDF);
    // removed: the old device cannot attach; its PDO cannot create a new device
    const dom = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
    expectIommu(() => V3.AttachDeviceEx(dom, oldDev), 'STATUS_DEVICE_REMOVED');
    sim.addDevice({ bdf: BDF, model: 'edu', iommuGroup: group });
    expectIommu(() => V3.AttachDeviceEx(dom, oldDev), 'STATUS_DEVICE_REMOVED');
    expectIommu(() => V3.CreateDevice(oldPdo), 'STATUS_INVALID_PARAMETER_1');
    V3.DeleteDevice(oldDev);
    expectIommu(() => V3.CreateDevice(oldPdo), 'STATUS_INVALID_PARAMETER_1');
    expectIommu(() => platform.AttachDevice(dom, oldPdo), 'STATUS_INVALID_PARAMETER_2');
    // the device now at that address has a new PDO, and works
    const newPdo = platform.findDevice(BDF)!;
    expect(newPdo).not.toBe(oldPdo);
    expect(platform.findDevice('0000:00:03.0')).toBe(unused);
    const newDev = V3.CreateDevice(newPdo);
    V3.AttachDeviceEx(dom, newDev);
    const mem = platform.allocateDmaMemory(4096n);
    V3.MapLogicalRangeEx(dom, RW, mem.asMdl(), 0x20000n, null, null);
    expect(sim.dmaWrite(BDF, 0x20000n, Uint8Array.of(7, 8, 9)).ok).toBe(true);
    expect([...mem.bytes.subarray(0, 3)]).toEqual([7, 8, 9]);
  });

  it('a PDO never used before the removal is stale too', () => {
    rig = simRig();
    const { V3, platform, sim } = rig;
    const pdo = platform.findDevice(BDF)!;
    sim.removeDevice(BDF);
    expect(platform.findDevice(BDF)).toBeUndefined();
    expectIommu(() => V3.CreateDevice(pdo), 'STATUS_INVALID_PARAMETER_1');
  });
});
