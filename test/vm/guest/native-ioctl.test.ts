/**
 * The addon's ioctl layer against the real kernel (inside a `dma-iommu vm` guest): the kernel's own
 * errno conventions that the backends translate (type1: unmap of nothing = success/0, bisect =
 * EINVAL; iommufd: ENOENT for both), the EMSGSIZE protocol of IOMMU_IOAS_IOVA_RANGES, GET_HW_INFO,
 * and the per-call cost of map+unmap (printed). Skipped anywhere else.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { getSystemErrorName } from 'node:util';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import type { NativeAddon, NativeHandle } from '../../../lib/backend/native/addon-types.js';
import { createNativeBackend } from '../../../lib/backend/native/index.js';
import { HotCalls } from '../../../lib/backend/native/hot.js';
import { loadNative } from '../../../lib/backend/native/loader.js';
import { eduDevices, inGuest, kernel } from './guest-env.js';

function groupOf(bdf: string): number {
  return Number(readlinkSync(`/sys/bus/pci/devices/${bdf}/iommu_group`).split('/').pop());
}

/** The errno name of what `fn` threw (a BackendError: the addon throws the loader's class). */
function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    const errno = (e as { errno?: unknown }).errno;
    return typeof errno === 'number' ? getSystemErrorName(errno) : String(e);
  }
  return undefined;
}

describe.skipIf(!inGuest)(`addon ioctls on the ${kernel} kernel`, () => {
  const a = (loadNative() as { addon: NativeAddon }).addon;
  const c = a.constants;
  const hot = new HotCalls(a);

  it('type1: the kernel rules the backend translates', () => {
    const container = a.open('/dev/vfio/vfio', c.O_RDWR, 'container');
    expect(a.getApiVersion(container)).toBe(0);
    expect(a.checkExtension(container, c.VFIO_TYPE1v2_IOMMU)).toBeGreaterThan(0);
    expect(code(() => a.setIommu(container, c.VFIO_TYPE1v2_IOMMU))).toBe('EINVAL'); // no group yet
    expect(code(() => a.iommuGetInfo(container))).toBe('EINVAL');
    const group = a.open(`/dev/vfio/${groupOf(eduDevices[0])}`, c.O_RDWR, 'group');
    expect(code(() => a.open(`/dev/vfio/${groupOf(eduDevices[0])}`, c.O_RDWR, 'group'))).toBe('EBUSY');
    expect(a.groupGetStatus(group) & c.VFIO_GROUP_FLAGS_VIABLE).toBeTruthy();
    a.groupSetContainer(group, container);
    a.setIommu(container, c.VFIO_TYPE1v2_IOMMU);
    const info = a.iommuGetInfo(container);
    expect(info.pageSizes).toBe(0x40201000n);
    expect(info.ranges).toEqual([
      { start: 0n, last: 0xfedfffffn },
      { start: 0xfef00000n, last: 0x7fffffffffn },
    ]);
    expect(info.dmaAvail).toBe(65535);
    const dev = a.groupGetDeviceFd(group, eduDevices[0]);
    const di = a.deviceGetInfo(dev);
    expect(di.flags & c.VFIO_DEVICE_FLAGS_PCI).toBeTruthy();
    expect(di.numRegions).toBeGreaterThanOrEqual(9);
    const bar0 = a.deviceGetRegionInfo(dev, 0);
    expect(bar0.size).toBe(1n << 20n);
    expect(a.regionRead(dev, bar0.offset, 4)).toBe(0x010000ed);
    const m = a.allocMemory(0x4000n, c.MEM_POPULATE, true);
    expect(hot.dmaUnmap(container, 0x100000n, 0x1000n, 0)).toBe(false); // nothing mapped: success, size 0
    hot.dmaMap(container, 0x100000n, m, 0n, 0x2000n, c.VFIO_DMA_MAP_FLAG_READ | c.VFIO_DMA_MAP_FLAG_WRITE);
    expect(m.pins).toBe(1);
    expect(container.areas).toBe(1);
    expect(a.iommuGetInfo(container).dmaAvail).toBe(65534);
    expect(code(() => hot.dmaMap(container, 0x101000n, m, 0n, 0x1000n, 3))).toBe('EEXIST');
    expect(code(() => hot.dmaMap(container, 0xfee00000n, m, 0n, 0x1000n, 3))).toBe('EINVAL'); // MSI window
    expect(code(() => hot.dmaMap(container, 0x200000n, m, 0n, 0x1000n, 0))).toBe('EINVAL'); // no permission
    expect(code(() => hot.dmaUnmap(container, 0x100000n, 0x1000n, 0))).toBe('EINVAL'); // bisect
    expect(code(() => m.free())).toBe('EBUSY');
    // closing the device and unsetting the last group drops every kernel mapping (and the pin)
    dev.close();
    a.groupUnsetContainer(group);
    expect(m.pins).toBe(0);
    expect(container.areas).toBe(0);
    m.free();
    group.close();
    container.close();
  });

  it.runIf(kernel === 'iommufd')('iommufd: IOAS, HWPT, hw info, ranges, map/unmap errnos', () => {
    const fd = a.open('/dev/iommu', c.O_RDWR, 'iommufd');
    const ioas = a.ioasAlloc(fd);
    expect(a.ioasIovaRanges(fd, ioas)).toEqual({ ranges: [{ start: 0n, last: (1n << 64n) - 1n }], alignment: 1n });
    const vfioN = readdirSync(`/sys/bus/pci/devices/${eduDevices[0]}/vfio-dev`)[0] as string;
    const dev = a.open(`/dev/vfio/devices/${vfioN}`, c.O_RDWR, 'device');
    const devId = a.deviceBindIommufd(dev, fd);
    expect(devId).toBeGreaterThan(0);
    const hw = a.getHwInfo(fd, devId);
    expect(hw.type).toBe(c.IOMMU_HW_INFO_TYPE_INTEL_VTD);
    expect(hw.data.length).toBe(24);
    expect(hw.maxPasidLog2).toBe(0);
    expect(code(() => a.hwptAlloc(fd, devId, ioas, c.IOMMU_HWPT_ALLOC_DIRTY_TRACKING))).toBe('ENOTSUP'); // EOPNOTSUPP (95): Node's name
    const hwpt = a.hwptAlloc(fd, devId, ioas, 0);
    expect(a.deviceAttachPt(dev, hwpt)).toBe(hwpt);
    const r = a.ioasIovaRanges(fd, ioas); // 2 ranges: the EMSGSIZE protocol is not needed; 4 slots fit
    expect(r).toEqual({ ranges: [{ start: 0n, last: 0xfedfffffn }, { start: 0xfef00000n, last: 0x7fffffffffn }], alignment: 0x1000n });
    const m = a.allocMemory(0x4000n, c.MEM_POPULATE, true);
    const RW = c.IOMMU_IOAS_MAP_FIXED_IOVA | c.IOMMU_IOAS_MAP_READABLE | c.IOMMU_IOAS_MAP_WRITEABLE;
    expect(code(() => hot.ioasUnmap(fd, ioas, 0x100000n, 0x1000n))).toBe('ENOENT'); // nothing mapped
    hot.ioasMap(fd, ioas, 0x100000n, m, 0n, 0x2000n, RW);
    expect([m.pins, fd.areas]).toEqual([1, 1]);
    expect(code(() => hot.ioasMap(fd, ioas, 0x101000n, m, 0n, 0x1000n, RW))).toBe('EEXIST');
    expect(code(() => hot.ioasMap(fd, ioas, 0xfee00000n, m, 0n, 0x1000n, RW))).toBe('EINVAL');
    expect(code(() => hot.ioasUnmap(fd, ioas, 0x100000n, 0x1000n))).toBe('ENOENT'); // a cut
    expect(code(() => a.destroy(fd, hwpt))).toBe('EBUSY'); // device attached
    expect(hot.ioasUnmap(fd, ioas, 0n, (1n << 64n) - 1n)).toBe(true); // unmap all
    expect(fd.areas).toBe(0);
    expect(m.pins).toBe(0);
    a.deviceDetachPt(dev);
    a.destroy(fd, hwpt);
    hot.ioasMap(fd, ioas, 0x100000n, m, 0n, 0x1000n, RW);
    a.destroy(fd, ioas); // drops its areas
    expect(m.pins).toBe(0);
    m.free();
    dev.close();
    fd.close();
  });

  it('a worker thread has its own addon state; terminating it releases its kernel objects', async () => {
    const r = loadNative();
    if (!r.ok) throw new Error(r.message);
    const group = `/dev/vfio/${groupOf(eduDevices[1])}`;
    const src = `
      const { parentPort, workerData: w } = require('node:worker_threads');
      const a = require(w.path);
      const c = a.constants;
      const container = a.open('/dev/vfio/vfio', c.O_RDWR, 'container');
      const g = a.open(w.group, c.O_RDWR, 'group');
      a.groupSetContainer(g, container);
      a.setIommu(container, c.VFIO_TYPE1v2_IOMMU);
      const dev = a.groupGetDeviceFd(g, w.bdf);
      const m = a.allocMemory(0x10000n, c.MEM_POPULATE, true);
      // VFIO_IOMMU_MAP_DMA through the hot slots (hot.h): iova, offset, length; handle, memory, flags
      const u64 = new BigUint64Array(a.hotSlots, 0, 3), u32 = new Uint32Array(a.hotSlots, 0, 12);
      u64[0] = 0x100000n; u64[1] = 0n; u64[2] = 0x10000n;
      u32[8] = container.hotId; u32[9] = m.hotId; u32[10] = 3;
      a.dmaMapHot();
      parentPort.postMessage({ id: a.regionRead(dev, a.deviceGetRegionInfo(dev, 0).offset, 4), stats: a.stats() });
      setInterval(() => {}, 1000); // stay alive with everything open until terminated
    `;
    const w = new Worker(src, { eval: true, workerData: { path: r.path, group, bdf: eduDevices[1] } });
    const msg = await new Promise<{ id: number; stats: { openHandles: number; pinnedRegions: number } }>((res, rej) => {
      w.once('message', res);
      w.once('error', rej);
    });
    expect(msg.id).toBe(0x010000ed);
    expect(msg.stats).toMatchObject({ openHandles: 3, pinnedRegions: 1 });
    expect(code(() => a.open(group, c.O_RDWR, 'group'))).toBe('EBUSY'); // the worker holds it
    expect(a.stats().openHandles).toBe(0); // the main thread's state is separate
    await w.terminate();
    const g = a.open(group, c.O_RDWR, 'group'); // the env cleanup hook closed the worker's fds
    g.close();
  });

  it('map+unmap cost (4 KiB pairs per second, raw ioctl and through the backend)', () => {
    const N = 2000;
    const r = createNativeBackend(kernel === 'iommufd' ? 'iommufd' : 'vfio-type1');
    const b = r.backend;
    if (!b) throw new Error(r.reason);
    const d = b.openDevice(eduDevices[0]);
    const dom = b.allocDomain('translate');
    b.attach(dom, d);
    const mem = b.allocateMemory(0x1000n);
    const runs = mem.runs(0n, 0x1000n);
    const pair = () => {
      b.map(dom, 0x100000n, runs, 3);
      b.unmap(dom, 0x100000n, 0x1000n);
    };
    // raw: the same pair straight through the addon (on the other edu device)
    const m = a.allocMemory(0x1000n, c.MEM_POPULATE, true);
    let h: NativeHandle;
    let raw: () => void;
    let cleanup: () => void;
    if (kernel === 'iommufd') {
      h = a.open('/dev/iommu', c.O_RDWR, 'iommufd');
      const vfioN = readdirSync(`/sys/bus/pci/devices/${eduDevices[1]}/vfio-dev`)[0] as string;
      const dev = a.open(`/dev/vfio/devices/${vfioN}`, c.O_RDWR, 'device');
      a.deviceBindIommufd(dev, h);
      const ioas = a.ioasAlloc(h);
      a.deviceAttachPt(dev, ioas);
      const F = c.IOMMU_IOAS_MAP_FIXED_IOVA | c.IOMMU_IOAS_MAP_READABLE | c.IOMMU_IOAS_MAP_WRITEABLE;
      raw = () => {
        hot.ioasMap(h, ioas, 0x100000n, m, 0n, 0x1000n, F);
        hot.ioasUnmap(h, ioas, 0x100000n, 0x1000n);
      };
      cleanup = () => {
        dev.close();
        h.close();
      };
    } else {
      h = a.open('/dev/vfio/vfio', c.O_RDWR, 'container');
      const g = a.open(`/dev/vfio/${groupOf(eduDevices[1])}`, c.O_RDWR, 'group');
      a.groupSetContainer(g, h);
      a.setIommu(h, c.VFIO_TYPE1v2_IOMMU);
      raw = () => {
        hot.dmaMap(h, 0x100000n, m, 0n, 0x1000n, 3);
        hot.dmaUnmap(h, 0x100000n, 0x1000n, 0);
      };
      cleanup = () => {
        g.close();
        h.close();
      };
    }
    const rate = (fn: () => void) => {
      const t = performance.now();
      for (let i = 0; i < N; i++) fn();
      return N / ((performance.now() - t) / 1000);
    };
    rate(raw); // warm up the JIT (slow under TCG) on both paths first
    rate(pair);
    const rawRate = Math.max(rate(raw), rate(raw));
    const backendRate = Math.max(rate(pair), rate(pair));
    cleanup();
    m.free();
    b.close();
    console.log(`[${kernel}] 4 KiB map+unmap pairs/s under TCG: raw addon ${rawRate.toFixed(0)}, backend ${backendRate.toFixed(0)} (${((rawRate / backendRate - 1) * 100).toFixed(0)}% overhead)`);
    expect(backendRate).toBeGreaterThan(0);
  });
});
