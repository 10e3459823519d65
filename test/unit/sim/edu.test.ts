import { describe, expect, it } from 'vitest';
import { EDU_ID, EduDevice } from '../../../lib/devices/edu.js';
import { SimulatedBackend } from '../../../lib/backend/simulated/index.js';
import type { BackendFault } from '../../../lib/backend/contract.js';
import { EDU0, expectErrno, GEN0, MiB, pattern, rig, RW } from './helpers.js';

function eduRig(opts: ConstructorParameters<typeof SimulatedBackend>[0] = {}) {
  const r = rig(opts);
  const regions = r.sim.deviceRegions(r.dev);
  const edu = new EduDevice(regions, { timeoutMs: 500 });
  return { ...r, regions, edu };
}

describe('edu model through the edu driver', () => {
  it('identifies itself through config space and BAR0', () => {
    const { edu, regions } = eduRig();
    expect(edu.identify()).toBe(EDU_ID);
    expect(edu.pciId()).toEqual({ vendorId: 0x1234, deviceId: 0x11e8 });
    expect(regions.configRead(0x08, 1)).toBe(0x10); // revision
    expect(regions.configRead(0x08, 4) >>> 8).toBe(0x00ff00); // class code
    expect(edu.checkLiveness(0x0badf00d)).toBe(true);
    expect(regions.barRead32(0, 0x04)).toBe(~0x0badf00d >>> 0);
    expect(regions.barRead32(0, 0x200)).toBe(0xffffffff); // unimplemented register
    expect(regions.barRead64(0, 0x00)).toBe((1n << 64n) - 1n); // 8-byte access below 0x80
    // BAR sizing
    regions.configWrite(0x10, 4, 0xffffffff);
    expect(regions.configRead(0x10, 4)).toBe(0xfff00000);
  });

  it('computes factorials', async () => {
    const { edu } = eduRig();
    expect(await edu.factorial(5)).toBe(120);
    expect(await edu.factorial(12)).toBe(479001600);
    expect(await edu.factorial(13)).toBe(Math.imul(479001600, 13) >>> 0);
  });

  it('round trip RAM → edu → RAM moves the exact bytes', async () => {
    const { sim, dom, edu } = eduRig();
    const mem = sim.allocateMemory(2n * MiB);
    sim.map(dom, 0x100000n, mem.runs(0n, 2n * MiB), RW);
    const src = pattern(2048, 42);
    mem.bytes!.set(src, 0);
    edu.enableBusMaster();
    await edu.dmaToDevice(0x100000n, 2048, 0);
    await edu.dmaFromDevice(0x102000n, 2048, 0);
    expect(mem.bytes!.subarray(0x2000, 0x2000 + 2048)).toEqual(src);
    // through the device offset too, and the largest safe transfer
    await edu.dmaToDevice(0x100100n, 4095, 0);
    await edu.dmaFromDevice(0x110000n, 100, 3995);
    expect(mem.bytes!.subarray(0x10000, 0x10000 + 100)).toEqual(mem.bytes!.subarray(0x100 + 3995, 0x100 + 4095));
    expect(sim.faultLog()).toEqual([]);
    const model = sim.inspect().devices.find((d) => d.bdf === EDU0)!.model;
    expect(model).toMatchObject({ state: 'running', busMaster: true, transfers: 4 });
  });

  it('blocked edu → RAM after unmap: fault with the IOVA and the BDF, memory untouched', async () => {
    const { sim, dom, edu } = eduRig();
    const mem = sim.allocateMemory(2n * MiB);
    sim.map(dom, 0x100000n, mem.runs(0n, 2n * MiB), RW);
    mem.bytes!.set(pattern(2048, 5));
    edu.enableBusMaster();
    await edu.dmaToDevice(0x100000n, 2048);
    expect(sim.unmap(dom, 0x100000n, 2n * MiB)).toBe(2n * MiB);
    const faults: BackendFault[] = [];
    sim.onFault((f) => faults.push(f));
    const before = mem.bytes!.slice();
    await edu.dmaFromDevice(0x102000n, 2048); // completes (the edu ignores the error), moves nothing
    expect(Buffer.compare(mem.bytes!, before)).toBe(0);
    expect(faults).toHaveLength(1);
    expect(faults[0]).toMatchObject({ bdf: EDU0, iova: 0x102000n, write: true, kind: 'translation', reasonCode: 0x05 });
    expect(faults[0].raw).toBe('DMAR: [DMA Write NO_PASID] Request device [00:03.0] fault addr 0x102000 [fault reason 0x05] PTE Write access is not set');
    expect(sim.inspect().devices[0].model).toMatchObject({ failedTransfers: 1 });
  });

  it('a blocked RAM → edu read leaves zeros in the buffer for the blocked page and the mapped part\'s bytes for the rest (QEMU 7.2)', async () => {
    const { sim, dom, edu } = eduRig();
    const mem = sim.allocateMemory(0x3000n);
    sim.map(dom, 0x10000n, mem.runs(0n, 0x1000n), RW); // page 0x10000 mapped, 0x11000 not
    sim.map(dom, 0x20000n, mem.runs(0x1000n, 0x2000n), RW); // where the buffer is copied out
    edu.enableBusMaster();
    const src = pattern(0x1000, 9);
    mem.bytes!.set(src, 0);
    // fill the whole buffer with a known pattern first, so that zeros can only come from the blocked read
    await edu.dmaToDevice(0x10000n, 0x800, 0);
    await edu.dmaToDevice(0x10000n, 0x800, 0x800 - 1);
    const faults: BackendFault[] = [];
    sim.onFault((f) => faults.push(f));
    // 0x400 bytes from the last 0x100 of the mapped page into the unmapped one
    await edu.dmaToDevice(0x10f00n, 0x400, 0);
    await edu.dmaFromDevice(0x20000n, 0x400, 0);
    expect(mem.bytes!.subarray(0x1000, 0x1100)).toEqual(src.subarray(0xf00));
    expect(mem.bytes!.subarray(0x1100, 0x1400).every((b) => b === 0)).toBe(true);
    expect(faults).toHaveLength(1);
    expect(faults[0]).toMatchObject({ bdf: EDU0, iova: 0x11000n, write: false, kind: 'translation', reasonCode: 0x06 });
    expect(sim.inspect().devices[0].model).toMatchObject({ failedTransfers: 1 });
    // edu → RAM straddling a mapped and an unmapped page: the mapped part lands
    mem.bytes!.fill(0xcc, 0, 0x1000);
    await edu.dmaFromDevice(0x10e00n, 0x400, 0);
    expect(mem.bytes!.subarray(0xe00, 0xf00)).toEqual(src.subarray(0xf00));
    expect(mem.bytes!.subarray(0xf00, 0x1000).every((b) => b === 0)).toBe(true);
    expect(faults).toHaveLength(2);
    expect(faults[1]).toMatchObject({ iova: 0x11000n, write: true, reasonCode: 0x05 });
  });

  it('bus-master bit clear: the DMA goes nowhere (no fault, nothing reaches RAM, a read from RAM leaves zeros in the buffer)', async () => {
    const { sim, dom, edu } = eduRig();
    const mem = sim.allocateMemory(0x3000n);
    sim.map(dom, 0x1000n, mem.runs(0n, 0x3000n), RW);
    mem.bytes!.fill(7, 0, 16);
    expect(edu.busMaster).toBe(false);
    await edu.dmaToDevice(0x1000n, 16);
    await edu.dmaFromDevice(0x2000n, 16);
    expect(mem.bytes!.subarray(0x1000, 0x1010).every((b) => b === 0)).toBe(true);
    expect(sim.faultLog()).toEqual([]);
    expect(sim.inspect().devices[0].model).toMatchObject({ droppedTransfers: 2 });
    // the buffer: loaded with 7s while mastering, then a read with mastering off leaves zeros
    edu.enableBusMaster();
    await edu.dmaToDevice(0x1000n, 16);
    edu.disableBusMaster();
    await edu.dmaToDevice(0x1000n, 8);
    edu.enableBusMaster();
    await edu.dmaFromDevice(0x3000n, 16);
    expect([...mem.bytes!.subarray(0x2000, 0x2010)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 7, 7, 7, 7, 7, 7, 7, 7]);
    expect(sim.faultLog()).toEqual([]);
  });

  it('the driver refuses transfers that would crash QEMU 7.2 or escape the 28-bit mask', async () => {
    const { edu } = eduRig();
    const bad = (argument: string) => expect.objectContaining({ name: 'IommuError', code: 'STATUS_INVALID_PARAMETER', argument });
    await expect(edu.dmaToDevice(0x1000n, 0)).rejects.toEqual(bad('length'));
    await expect(edu.dmaToDevice(0x1000n, 4096)).rejects.toEqual(bad('length'));
    await expect(edu.dmaToDevice(0x1000n, 100, 3996)).rejects.toEqual(bad('length'));
    await expect(edu.dmaFromDevice(0x1000n, 1, -1)).rejects.toEqual(bad('deviceOffset'));
    await expect(edu.dmaToDevice((1n << 28n) - 16n, 16)).rejects.toEqual(bad('iova'));
    await expect(edu.dmaToDevice(0x1000 as never, 16)).rejects.toEqual(bad('iova'));
    await expect(edu.dmaToDevice((1n << 28n) - 17n, 16)).resolves.toBeUndefined();
  });

  it('models the QEMU 7.2 abort as a hardware-error state when programmed directly', async () => {
    const { sim, dom, regions, edu } = eduRig();
    const mem = sim.allocateMemory(0x2000n);
    sim.map(dom, 0x1000n, mem.runs(0n, 0x2000n), RW);
    mem.bytes!.fill(0x33);
    edu.enableBusMaster();
    // a 4096-byte transfer ending exactly at the buffer's end: 7.2's off-by-one
    regions.barWrite64(0, 0x80, 0x1000n);
    regions.barWrite64(0, 0x88, 0x40000n);
    regions.barWrite64(0, 0x90, 4096n);
    regions.barWrite32(0, 0x98, 1);
    await new Promise((r) => setImmediate(r));
    const model = sim.inspect().devices[0].model;
    expect(model).toMatchObject({
      state: 'hardware-error',
      hardwareError: 'EDU: DMA range 0x0000000000040000-0x0000000000040fff out of bounds (0x0000000000040000-0x0000000000040fff)!',
    });
    expect(regions.barRead32(0, 0x00)).toBe(0xffffffff);
    await expect(edu.dmaFromDevice(0x1000n, 16)).rejects.toMatchObject({ name: 'IommuError', code: 'STATUS_DEVICE_REMOVED' });
    expect(mem.bytes!.every((b) => b === 0x33)).toBe(true);
  });

  it('clamps bus addresses to the DMA mask, as QEMU does', async () => {
    const { sim, dom, regions, edu } = eduRig();
    const mem = sim.allocateMemory(0x1000n);
    sim.map(dom, 0x1000n, mem.runs(0n, 0x1000n), RW);
    mem.bytes!.set([1, 2, 3, 4]);
    edu.enableBusMaster();
    regions.barWrite64(0, 0x80, (1n << 28n) + 0x1000n); // clamps to 0x1000
    regions.barWrite64(0, 0x88, 0x40000n);
    regions.barWrite64(0, 0x90, 4n);
    regions.barWrite32(0, 0x98, 1);
    await edu.dmaFromDevice(0x1800n, 4);
    expect(mem.bytes!.subarray(0x800, 0x804)).toEqual(new Uint8Array([1, 2, 3, 4]));
    expect(sim.inspect().devices[0].model.log).toEqual(['EDU: clamping DMA 0x0000000010001000 to 0x0000000000001000!']);
  });

  it('works with a completion delay (timer instead of microtask)', async () => {
    const { sim, dom, edu } = eduRig({ eduDmaDelayMs: 5 });
    const mem = sim.allocateMemory(0x2000n);
    sim.map(dom, 0x1000n, mem.runs(0n, 0x2000n), RW);
    mem.bytes!.set([9, 9, 9]);
    edu.enableBusMaster();
    await edu.dmaToDevice(0x1000n, 3);
    await edu.dmaFromDevice(0x2000n, 3);
    expect(mem.bytes!.subarray(0x1000, 0x1003)).toEqual(new Uint8Array([9, 9, 9]));
  });

  it('region accesses are validated; the generic device has config space only', () => {
    const { sim, regions } = eduRig();
    expectErrno(() => regions.barRead32(1, 0), 'EINVAL');
    expectErrno(() => regions.barRead32(0, 0x100002), 'EINVAL');
    expectErrno(() => regions.barRead32(0, 2), 'EINVAL');
    expectErrno(() => regions.configRead(0x101, 1), 'EINVAL');
    expectErrno(() => regions.configRead(0x3, 2), 'EINVAL');
    expect(() => regions.configRead(0, 3 as never)).toThrow(TypeError);
    const gen = sim.deviceRegions(sim.openDevice(GEN0));
    expect(gen.configRead(0, 4)).toBe(0x00051b36);
    expect(gen.configRead(0x0e, 1)).toBe(0x80); // multi-function
    expect(gen.configRead(0x100, 4)).toBe(0x0001001b); // PASID extended capability
    expect((gen.configRead(0x104, 2) >> 8) & 0x1f).toBe(20);
    expectErrno(() => gen.barRead32(0, 0), 'EINVAL');
  });

  it('closing the device disables bus mastering; a closed handle fails EBADF', () => {
    const { sim, dev, edu, regions } = eduRig();
    edu.enableBusMaster();
    sim.closeDevice(dev);
    expectErrno(() => regions.barRead32(0, 0), 'EBADF');
    const again = new EduDevice(sim.deviceRegions(sim.openDevice(EDU0)));
    expect(again.busMaster).toBe(false);
  });
});
