// Types of native-cycle.mjs (plain JS so child processes run it with bare node).
import type { DmaMemory, IommuDmaDevice, IommuPlatform, PhysicalDeviceObject } from '../../../lib/index.js';

export { DomainTypeTranslate, EduDevice, IOMMU_ACCESS_READ, IOMMU_ACCESS_WRITE, IommuError, openPlatform } from '../../../lib/index.js';
export declare const IOVA: bigint;
export declare const DMA_BYTES: number;
export declare function openFds(): number;
export declare function vmStatus(): { VmLck: number; VmPin: number };
export declare function pattern(n: number, length?: number): Uint8Array;
export declare function eduRoundTrip(platform: IommuPlatform, dev: IommuDmaDevice, mem: DmaMemory, n: number, iova?: bigint, length?: number): Promise<number>;
export declare function cycle(platform: IommuPlatform, pdo: PhysicalDeviceObject, mem: DmaMemory, n: number, dma: boolean): Promise<number | null>;
