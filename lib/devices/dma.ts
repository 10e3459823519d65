/**
 * A DMA driver for a created device: what the selftest and the conformance suite use to make a
 * device move bytes. The QEMU edu device gets the edu driver (lib/devices/edu.ts, written against
 * PCI config/BAR access only, so it runs on the simulator's edu model and on a real edu device in
 * `dma-iommu vm`); other simulated devices use the simulator's DMA engine directly.
 */
import type { IommuDmaDevice } from '../core/objects.js';
import type { IommuPlatform } from '../core/platform.js';
import { SimulatedBackend } from '../backend/simulated/index.js';
import { EDU_DEVICE_ID, EDU_VENDOR_ID, EduDevice } from './edu.js';

export interface DmaDriver {
  readonly name: string;
  /** Largest transfer the device supports in one go. */
  readonly maxTransfer: number;
  /** Highest IOVA (exclusive) the device can address. */
  readonly iovaLimit: bigint;
  /** RAM → device → RAM: read `length` bytes at `srcIova`, write them at `dstIova`. */
  copy(srcIova: bigint, dstIova: bigint, length: number): Promise<void>;
  /** Device → RAM: the device writes `length` bytes of its own buffer at `iova`. */
  writeToMemory(iova: bigint, length: number): Promise<void>;
}

/** The driver for a device, or null when dma-iommu has none for it on this backend. */
export function dmaDriverFor(platform: IommuPlatform, device: IommuDmaDevice): DmaDriver | null {
  const pdo = device.PhysicalDeviceObject;
  if (pdo.vendorId === EDU_VENDOR_ID && pdo.deviceId === EDU_DEVICE_ID) {
    const edu = new EduDevice(platform.deviceRegions(device));
    edu.enableBusMaster();
    return {
      name: 'edu',
      maxTransfer: 2048,
      iovaLimit: 1n << 28n,
      async copy(src, dst, length) {
        await edu.dmaToDevice(src, length, 0);
        await edu.dmaFromDevice(dst, length, 0);
      },
      async writeToMemory(iova, length) {
        await edu.dmaFromDevice(iova, length, 0);
      },
    };
  }
  const backend = platform.backend;
  if (backend instanceof SimulatedBackend) {
    const bdf = pdo.bdf;
    let last: Uint8Array = new Uint8Array(0);
    return {
      name: 'simulated DMA engine',
      maxTransfer: 1 << 20,
      iovaLimit: 1n << 64n,
      async copy(src, dst, length) {
        const r = backend.dmaRead(bdf, src, length);
        if (!r.ok || !r.data) return;
        last = r.data;
        backend.dmaWrite(bdf, dst, r.data);
      },
      async writeToMemory(iova, length) {
        const data = new Uint8Array(length);
        data.set(last.subarray(0, length));
        backend.dmaWrite(bdf, iova, data);
      },
    };
  }
  return null;
}
