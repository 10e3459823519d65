/**
 * Hugepage-backed DMA memory on the native backends, in the guest: a 2 MiB hugetlb page is one
 * physically contiguous run, maps as a contiguous range and carries DMA; with an empty hugetlb
 * pool the allocation fails with a clear status instead of silently using small pages.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { dmaDriverFor } from '../../../lib/devices/dma.js';
import {
  DMA_IOMMU_INTERFACE_EX_VERSION_2,
  DomainTypeTranslate,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  IoGetIommuInterfaceEx,
  IommuError,
  openPlatform,
  type DMA_IOMMU_INTERFACE_V2,
} from '../../../lib/index.js';
import { eduDevices, inGuest } from './guest-env.js';

const POOL = '/proc/sys/vm/nr_hugepages';

describe.runIf(inGuest && eduDevices.length > 0)('hugepage DMA memory (native)', () => {
  const before = inGuest ? readFileSync(POOL, 'utf8').trim() : '0';
  afterAll(() => writeFileSync(POOL, before));

  it('a 2 MiB hugepage is one contiguous run that maps and carries DMA', async () => {
    writeFileSync(POOL, '8');
    const platform = openPlatform({ backend: 'native' });
    try {
      const V2 = (IoGetIommuInterfaceEx(DMA_IOMMU_INTERFACE_EX_VERSION_2, 0n, { platform }) as { V2: DMA_IOMMU_INTERFACE_V2 }).V2;
      const mem = platform.allocateDmaMemory(2n << 20n, { hugePages: true });
      expect(mem.runs()).toHaveLength(1);
      expect(mem.physicalAddress % (2n << 20n)).toBe(0n);
      const dev = V2.CreateDevice(platform.findDevice(eduDevices[0])!);
      const dom = V2.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
      V2.AttachDeviceEx(dom, dev);
      V2.MapLogicalRangeEx(dom, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, mem.asContiguousRange(), 0x200000n, null, null);
      for (let i = 0; i < 1024; i++) mem.bytes[i] = (i * 13) & 0xff;
      await dmaDriverFor(platform, dev)!.copy(0x200000n, 0x200000n + 0x1ff000n, 1024);
      expect(mem.bytes.subarray(0x1ff000, 0x1ff000 + 1024)).toEqual(mem.bytes.subarray(0, 1024));
      V2.UnmapLogicalRange(dom, 0x200000n, 512n);
      V2.DetachDeviceEx(dev);
      V2.DeleteDomain(dom);
      V2.DeleteDevice(dev);
      mem.free();
    } finally {
      platform.close();
    }
  });

  it('an empty hugetlb pool is STATUS_INSUFFICIENT_RESOURCES with the reason', () => {
    writeFileSync(POOL, '0');
    const platform = openPlatform({ backend: 'native' });
    try {
      let err: unknown;
      try {
        platform.allocateDmaMemory(2n << 20n, { hugePages: true });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(IommuError);
      expect((err as IommuError).code).toBe('STATUS_INSUFFICIENT_RESOURCES');
      expect((err as IommuError).message).toMatch(/HUGETLB|huge/i);
    } finally {
      platform.close();
    }
  });
});
