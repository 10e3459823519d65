import { constants as osc } from 'node:os';
import { describe, expect, it } from 'vitest';
import { BackendError } from '../../../lib/errors.js';
import { loadNative } from '../../../lib/backend/native/loader.js';
import type { NativeAddon, NativeHandle } from '../../../lib/backend/native/addon-types.js';
import { HotCalls } from '../../../lib/backend/native/hot.js';

function addon(): NativeAddon {
  const r = loadNative();
  if (!r.ok) throw new Error(`addon not loaded: ${r.message}`);
  return r.addon;
}

describe('native addon: build and ABI', () => {
  it('is built and loads through bindings', () => {
    const r = loadNative();
    expect(r.ok).toBe(true);
    expect(loadNative()).toBe(r); // memoised
  });

  it('carries the kernel ABI: ioctl numbers and struct sizes', () => {
    const a = addon().abi;
    expect(a.checked).toBe(true);
    expect(a.IOMMU_DESTROY).toBe(0x3b80);
    expect(a.IOMMU_IOAS_ALLOC).toBe(0x3b81);
    expect(a.IOMMU_IOAS_IOVA_RANGES).toBe(0x3b84);
    expect(a.IOMMU_IOAS_MAP).toBe(0x3b85);
    expect(a.IOMMU_IOAS_UNMAP).toBe(0x3b86);
    expect(a.IOMMU_OPTION).toBe(0x3b87);
    expect(a.IOMMU_HWPT_ALLOC).toBe(0x3b89);
    expect(a.IOMMU_GET_HW_INFO).toBe(0x3b8a);
    expect(a.IOMMU_FAULT_QUEUE_ALLOC).toBe(0x3b8e);
    expect(a.VFIO_GET_API_VERSION).toBe(0x3b64);
    expect(a.VFIO_GROUP_GET_DEVICE_FD).toBe(0x3b6a);
    expect(a.VFIO_IOMMU_MAP_DMA).toBe(0x3b71);
    expect(a.VFIO_IOMMU_UNMAP_DMA).toBe(0x3b72);
    expect(a.VFIO_DEVICE_BIND_IOMMUFD).toBe(0x3b76);
    expect(a.VFIO_DEVICE_ATTACH_IOMMUFD_PT).toBe(0x3b77);
    expect(a.VFIO_DEVICE_DETACH_IOMMUFD_PT).toBe(0x3b78);
    expect(a.sizes).toMatchObject({
      iommu_ioas_alloc: 12,
      iommu_ioas_iova_ranges: 32,
      iommu_ioas_map: 40,
      iommu_ioas_unmap: 24,
      iommu_option: 24,
      iommu_hwpt_alloc: 48,
      iommu_hw_info: 40,
      vfio_device_bind_iommufd: 16,
      vfio_device_attach_iommufd_pt: 12,
      vfio_iommu_type1_info: 24,
      vfio_iommu_type1_dma_map: 32,
      vfio_iommu_type1_dma_unmap: 24,
      vfio_region_info: 32,
    });
    const c = addon().constants;
    expect(c.pageSize).toBe(4096);
    expect([c.IOMMU_IOAS_MAP_FIXED_IOVA, c.IOMMU_IOAS_MAP_WRITEABLE, c.IOMMU_IOAS_MAP_READABLE]).toEqual([1, 2, 4]);
    expect([c.VFIO_DMA_MAP_FLAG_READ, c.VFIO_DMA_MAP_FLAG_WRITE, c.VFIO_TYPE1v2_IOMMU]).toEqual([1, 2, 3]);
  });
});

describe('native addon: memory', () => {
  it('allocates page-aligned memory with a live view, accounted to V8, and frees it', () => {
    const a = addon();
    const before = a.stats().externalBytes;
    const m = a.allocMemory(3n * 4096n, a.constants.MEM_POPULATE, true);
    expect(m.address % 4096n).toBe(0n);
    expect(m.size).toBe(12288n);
    expect(a.stats().externalBytes - before).toBe(12288);
    const view = new Uint8Array(m.buffer as ArrayBuffer);
    view[4097] = 0x5a;
    expect([...m.read(4096n, 2)]).toEqual([0, 0x5a]);
    m.write(8190n, Uint8Array.from([1, 2]));
    expect([view[8190], view[8191]]).toEqual([1, 2]);
    const pm = m.pagemap(0, 3);
    expect(pm.length).toBe(3);
    expect(pm[0] >> 63n).toBe(1n); // present (pre-faulted)
    expect(m.pins).toBe(0);
    m.free();
    m.free(); // idempotent
    expect(m.freed).toBe(true);
    expect(m.buffer).toBeNull();
    expect(view.length).toBe(0); // detached: no dangling view
    expect(a.stats().externalBytes).toBe(before);
    expect(() => m.read(0n, 1)).toThrow(TypeError);
  });

  it('lazy allocations have no view and are reached by read/write', () => {
    const a = addon();
    const m = a.allocMemory(1n << 30n, 0, false); // 1 GiB, MAP_NORESERVE: costs nothing untouched
    expect(m.buffer).toBeNull();
    m.write((1n << 30n) - 4n, Uint8Array.from([9, 8, 7, 6]));
    expect([...m.read((1n << 30n) - 4n, 4)]).toEqual([9, 8, 7, 6]);
    m.lock(0n, 4096n);
    m.free();
  });

  it('refuses bad sizes and ranges', () => {
    const a = addon();
    expect(() => a.allocMemory(0n, 0, true)).toThrow(RangeError);
    expect(() => a.allocMemory(4095n, 0, true)).toThrow(RangeError);
    expect(() => a.allocMemory(4096 as unknown as bigint, 0, true)).toThrow(TypeError);
    expect(() => a.allocMemory(-1n, 0, true)).toThrow(RangeError);
    const m = a.allocMemory(4096n, 0, true);
    expect(() => m.read(4095n, 2)).toThrow(RangeError);
    expect(() => m.write(4096n, Uint8Array.from([1]))).toThrow(RangeError);
    expect(() => m.write(0n, [1] as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => m.pagemap(0, 2)).toThrow(RangeError);
    m.free();
  });

  it('huge pages fail with an errno when the hugetlb pool is empty', () => {
    const a = addon();
    try {
      const m = a.allocMemory(2n << 20n, a.constants.MEM_HUGE_PAGES, true);
      m.free(); // a machine with huge pages configured
    } catch (e) {
      expect((e as { errno?: number }).errno).toBeLessThan(0);
      expect((e as { syscall?: string }).syscall).toBe('mmap');
    }
  });
});

describe('native addon: errors and misuse never crash', () => {
  it('kernel failures are BackendErrors straight from the addon: errno (negative), bare syscall, detail', () => {
    const a = addon();
    let err: unknown;
    try {
      a.open('/nonexistent/dma-iommu', a.constants.O_RDWR, 'file');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BackendError);
    expect(err).toMatchObject({ errno: -osc.errno.ENOENT, syscall: 'open' });
    expect((err as Error).message).toBe('open: ENOENT: /nonexistent/dma-iommu');
  });

  it('an ioctl on the wrong kind of fd is an errno, not a crash', () => {
    const a = addon();
    const h = a.open('/dev/null', a.constants.O_RDWR, 'iommufd');
    const ENOTTY = -osc.errno.ENOTTY;
    expect(() => a.ioasAlloc(h)).toThrow(expect.objectContaining({ syscall: 'IOMMU_IOAS_ALLOC', errno: ENOTTY }));
    expect(() => a.getApiVersion(h)).toThrow(expect.objectContaining({ syscall: 'VFIO_GET_API_VERSION', errno: ENOTTY }));
    expect(() => a.iommuGetInfo(h)).toThrow(expect.objectContaining({ syscall: 'VFIO_IOMMU_GET_INFO', errno: ENOTTY }));
    const m = a.allocMemory(4096n, 0, true);
    expect(() => new HotCalls(a).ioasMap(h, 1, 0x1000n, m, 0n, 4096n, 7)).toThrow(expect.objectContaining({ syscall: 'IOMMU_IOAS_MAP', errno: ENOTTY }));
    expect(m.pins).toBe(0);
    expect(() => a.regionRead(h, 0n, 4)).toThrow(expect.objectContaining({ syscall: 'pread', errno: -osc.errno.EIO })); // short read
    m.free();
    h.close();
  });

  it('closed handles, foreign objects, wrong types and lossy numbers are TypeError/RangeError', () => {
    const a = addon();
    const h = a.open('/dev/null', a.constants.O_RDONLY, 'file');
    expect(h.closed).toBe(false);
    expect(h.kind).toBe('file');
    h.close();
    h.close();
    expect(h.closed).toBe(true);
    expect(h.fd).toBe(-1);
    expect(() => a.ioasAlloc(h)).toThrow(TypeError);
    expect(() => a.deviceBindIommufd(h, h)).toThrow(TypeError);
    const fake = { fd: 0, closed: false } as unknown as NativeHandle;
    for (const bad of [undefined, null, 1, 'x', {}, fake, [], () => 0]) {
      expect(() => a.ioasAlloc(bad as NativeHandle)).toThrow(TypeError);
      expect(() => a.groupGetStatus(bad as NativeHandle)).toThrow(TypeError);
    }
    const m = a.allocMemory(4096n, 0, true);
    // a Memory is not a Handle and vice versa (type tags)
    expect(() => a.ioasAlloc(m as unknown as NativeHandle)).toThrow(TypeError);
    const k = a.open('/dev/null', a.constants.O_RDONLY, 'file');
    expect(() => a.deviceBindIommufd(k, m as never)).toThrow(TypeError);
    expect(() => a.regionRead(k, 0x1000 as unknown as bigint, 4)).toThrow(TypeError);
    expect(() => a.destroy(k, -1)).toThrow(RangeError);
    expect(() => a.regionRead(k, 1n << 64n, 4)).toThrow(RangeError);
    expect(() => a.regionRead(k, -1n, 4)).toThrow(RangeError);
    expect(() => m.read(0n, 8192)).toThrow(RangeError); // beyond the allocation
    expect(() => a.regionWrite(k, 0n, 3 as never, 0)).toThrow(RangeError);
    expect(() => a.regionWrite(k, 0n, 1, 0x100)).toThrow(RangeError);
    expect(() => a.open('a\0b', 0, 'file')).toThrow(TypeError);
    expect(() => a.open('/dev/null', 0, 'bogus' as never)).toThrow(TypeError);
    m.free();
    expect(() => new HotCalls(a).ioasMap(k, 1, 0n, m, 0n, 4096n, 0)).toThrow(TypeError); // freed memory
    k.close();
    // wraps cannot be constructed from JS
    const Ctor = (h as unknown as { constructor: new (...args: unknown[]) => unknown }).constructor;
    expect(() => new Ctor()).toThrow(TypeError);
    expect(() => new Ctor({})).toThrow(TypeError);
  });

  it('hot calls check ids, handle state and memory bounds', () => {
    const a = addon();
    const hot = new HotCalls(a);
    const h = a.open('/dev/null', a.constants.O_RDWR, 'container');
    const m = a.allocMemory(4096n, 0, true);
    expect(Number.isInteger(h.hotId) && Number.isInteger(m.hotId) && h.hotId !== m.hotId).toBe(true);
    expect(() => {
      (h as { hotId: number }).hotId = 1;
    }).toThrow(TypeError); // read-only
    // reaches the kernel: the ioctl's errno and bare name; nothing pinned
    const ENOTTY = -osc.errno.ENOTTY;
    expect(() => hot.dmaMap(h, 0x1000n, m, 0n, 4096n, 3)).toThrow(expect.objectContaining({ syscall: 'VFIO_IOMMU_MAP_DMA', errno: ENOTTY }));
    expect(() => hot.dmaUnmap(h, 0x1000n, 4096n, 0)).toThrow(expect.objectContaining({ syscall: 'VFIO_IOMMU_UNMAP_DMA', errno: ENOTTY }));
    expect(() => hot.ioasMap(h, 1, 0x1000n, m, 0n, 4096n, 7)).toThrow(expect.objectContaining({ syscall: 'IOMMU_IOAS_MAP', errno: ENOTTY }));
    expect(() => hot.ioasUnmap(h, 1, 0x1000n, 4096n)).toThrow(expect.objectContaining({ syscall: 'IOMMU_IOAS_UNMAP', errno: ENOTTY }));
    expect(m.pins).toBe(0);
    // ids that name nothing, or the other kind of wrap
    expect(() => hot.dmaMap(m as unknown as NativeHandle, 0x1000n, m, 0n, 4096n, 3)).toThrow(TypeError);
    expect(() => hot.dmaMap(h, 0x1000n, h as never, 0n, 4096n, 3)).toThrow(TypeError);
    expect(() => hot.dmaUnmap({ hotId: 0 } as unknown as NativeHandle, 0n, 4096n, 0)).toThrow(TypeError);
    expect(() => hot.dmaUnmap({ hotId: 2 ** 32 - 1 } as unknown as NativeHandle, 0n, 4096n, 0)).toThrow(TypeError);
    // memory bounds, freed memory, closed handles
    expect(() => hot.dmaMap(h, 0x1000n, m, 0n, 8192n, 3)).toThrow(RangeError);
    expect(() => hot.dmaMap(h, 0x1000n, m, 4096n, 1n, 3)).toThrow(RangeError);
    m.free();
    expect(() => hot.dmaMap(h, 0x1000n, m, 0n, 4096n, 3)).toThrow(TypeError);
    h.close();
    expect(() => hot.dmaUnmap(h, 0x1000n, 4096n, 0)).toThrow(/container is closed/);
  });

  it('a detached source buffer is refused', () => {
    const a = addon();
    const m = a.allocMemory(4096n, 0, true);
    const src = new Uint8Array(16);
    structuredClone(src.buffer, { transfer: [src.buffer] });
    expect(() => m.write(0n, src)).toThrow(TypeError);
    m.free();
  });

  it('reads the kernel log from its end without blocking (root here)', () => {
    const a = addon();
    let k: NativeHandle;
    try {
      k = a.kmsgOpen();
    } catch (e) {
      expect(e).toMatchObject({ syscall: 'open', message: expect.stringContaining('/dev/kmsg') });
      return;
    }
    expect(k.kind).toBe('kmsg');
    expect(Array.isArray(a.kmsgRead(k, 64))).toBe(true);
    k.close();
    expect(() => a.kmsgRead(k, 1)).toThrow(TypeError);
  });
});
