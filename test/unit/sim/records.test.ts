/**
 * Every per-object record of the simulator lives exactly as long as its object: loops that
 * create and release bring the backend's record counts (inspect().records) back to where they
 * started.
 */
import { describe, expect, it } from 'vitest';
import { DMA_IOMMU_INTERFACE_EX_VERSION_3, DomainTypeTranslate, IoGetIommuInterfaceEx, openPlatform } from '../../../lib/index.js';
import { simulatorControls } from '../../../lib/backend/simulated/controls.js';
import { SimulatedBackend } from '../../../lib/backend/simulated/index.js';
import { EDU0, EDU1, expectErrno, RW } from './helpers.js';

describe('records are released with their objects', () => {
  it('10,000 open → attach → allocate → map → DMA → unmap → free → detach → close cycles leave no record behind', () => {
    const sim = new SimulatedBackend({ faultLogCapacity: 64 });
    const baseline = sim.inspect().records;
    expect(baseline).toMatchObject({ handles: 0, domains: 0, openDevices: 0, devices: 4, allocations: 0, faultRecords: 0 });
    let last = 0;
    for (let i = 0; i < 10_000; i++) {
      const dev = sim.openDevice(EDU0);
      expect(dev).toBeGreaterThan(last); // handle numbers are still never reused
      last = dev;
      const dom = sim.allocDomain('translate');
      sim.attach(dom, dev);
      const off = sim.onFault(() => {});
      const mem = sim.allocateMemory(4096n);
      sim.map(dom, 0x100000n, mem.runs(0n, 4096n), RW);
      expect(sim.dmaWrite(EDU0, 0x100000n, new Uint8Array([i & 0xff])).ok).toBe(true);
      expect(sim.dmaWrite(EDU0, 0x200000n, new Uint8Array([1])).ok).toBe(false); // a fault record
      sim.unmap(dom, 0x100000n, 4096n);
      mem.free();
      sim.detach(dev);
      off();
      sim.freeDomain(dom);
      sim.closeDevice(dev);
    }
    expect(sim.inspect().records).toEqual({ ...baseline, faultRecords: 64 }); // the log is bounded
    sim.clearFaults();
    expect(sim.inspect().records).toEqual(baseline);
  });

  it('closed and freed handles still answer as before once their records are gone', () => {
    const sim = new SimulatedBackend();
    const dev = sim.openDevice(EDU0);
    const dom = sim.allocDomain('translate');
    const regions = sim.deviceRegions(dev);
    sim.closeDevice(dev);
    sim.closeDevice(dev); // idempotent
    expectErrno(() => sim.attach(dom, dev), 'EBADF');
    expectErrno(() => sim.availableDomainTypes(dev), 'EBADF');
    expectErrno(() => regions.barRead32(0, 0), 'EBADF');
    sim.freeDomain(dom);
    expectErrno(() => sim.geometry(dom), 'ENOENT');
    expectErrno(() => sim.map(dom, 0x1000n, [{ pa: 0x100000n, length: 0x1000n }], RW), 'ENOENT');
    expectErrno(() => sim.closeDevice(9999), 'ENOENT');
    expect(sim.inspect().records).toMatchObject({ handles: 0, domains: 0, openDevices: 0 });
  });

  it('surprise removal and re-adding: 1,000 cycles leave no record behind', () => {
    const sim = new SimulatedBackend();
    const baseline = sim.inspect().records;
    for (let i = 0; i < 1000; i++) {
      const dev = sim.openDevice(EDU1);
      const dom = sim.allocDomain('translate');
      sim.attach(dom, dev);
      sim.removeDevice(EDU1);
      sim.closeDevice(dev);
      sim.freeDomain(dom);
      sim.addDevice({ bdf: EDU1, model: 'edu', iommuGroup: 4 });
    }
    expect(sim.inspect().records).toEqual(baseline);
  });

  it('through the WDK: 10,000 CreateDevice / CreateDomainEx / Attach / Detach / Delete cycles', () => {
    const platform = openPlatform({ backend: 'sim' });
    try {
      const iface = IoGetIommuInterfaceEx(DMA_IOMMU_INTERFACE_EX_VERSION_3, 0n, { platform });
      if (iface.Version !== 3) throw new Error('V3 expected');
      const { V3 } = iface;
      const sim = simulatorControls(platform.backend);
      const baseline = sim.inspect().records;
      const pdo = platform.findDevice(EDU0)!;
      for (let i = 0; i < 10_000; i++) {
        const dev = V3.CreateDevice(pdo);
        const dom = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
        V3.AttachDeviceEx(dom, dev);
        V3.DetachDeviceEx(dev);
        V3.DeleteDomain(dom);
        V3.DeleteDevice(dev);
      }
      expect(sim.inspect().records).toEqual(baseline);
    } finally {
      platform.close();
    }
  });
});
