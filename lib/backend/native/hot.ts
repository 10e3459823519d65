/**
 * The JS side of the addon's map/unmap calls (native/binding/hot.h): the arguments go into the
 * addon's per-thread slot buffer and the call takes none, so the addon converts and unwraps
 * nothing (handles and memory are named by their `hotId`). The addon checks the ids, handle state
 * and memory bounds, runs the ioctl and zeroes the slots, so nothing written for one call can act
 * in the next (and a slot buffer whose writes no longer arrive makes the next call a TypeError).
 * Used by the backends' kernelMap/kernelUnmap, the calls made once per WDK map and unmap.
 */
import type { NativeAddon, NativeHandle, NativeMemory } from './addon-types.js';

// Slot indices: keep in step with native/binding/hot.h. (A list of constants, alike in shape only to
// edu.ts's register offsets.)
const IOVA = 0;
const OFFSET = 1;
const LENGTH = 2;
const HANDLE = 8;
const MEMORY = 9;
const FLAGS = 10;
const IOAS = 11;

export class HotCalls {
  readonly #addon: NativeAddon;
  readonly #u64: BigUint64Array;
  readonly #u32: Uint32Array;

  constructor(addon: NativeAddon) {
    this.#addon = addon;
    this.#u64 = new BigUint64Array(addon.hotSlots, 0, 3);
    this.#u32 = new Uint32Array(addon.hotSlots, 0, 12);
  }

  /** The slots of a map: [offset, offset + length) of `memory` at `iova` through `handle`, with `flags`. */
  #mapSlots(handle: NativeHandle, iova: bigint, memory: NativeMemory, offset: bigint, length: bigint, flags: number): void {
    const u64 = this.#u64;
    const u32 = this.#u32;
    u64[IOVA] = iova;
    u64[OFFSET] = offset;
    u64[LENGTH] = length;
    u32[HANDLE] = handle.hotId;
    u32[MEMORY] = memory.hotId;
    u32[FLAGS] = flags;
  }

  /** The slots of an unmap: [iova, iova + length) through `handle`. */
  #unmapSlots(handle: NativeHandle, iova: bigint, length: bigint): void {
    this.#u64[IOVA] = iova;
    this.#u64[LENGTH] = length;
    this.#u32[HANDLE] = handle.hotId;
  }

  /** VFIO_IOMMU_MAP_DMA of [offset, offset + length) of `memory` at `iova` (flags: VFIO_DMA_MAP_FLAG_*). */
  dmaMap(container: NativeHandle, iova: bigint, memory: NativeMemory, offset: bigint, length: bigint, flags: number): void {
    this.#mapSlots(container, iova, memory, offset, length, flags);
    this.#addon.dmaMapHot();
  }

  /** VFIO_IOMMU_UNMAP_DMA (flags: VFIO_DMA_UNMAP_FLAG_*); whether anything was unmapped. */
  dmaUnmap(container: NativeHandle, iova: bigint, length: bigint, flags: number): boolean {
    this.#unmapSlots(container, iova, length);
    this.#u32[FLAGS] = flags;
    return this.#addon.dmaUnmapHot();
  }

  /** IOMMU_IOAS_MAP of [offset, offset + length) of `memory` at `iova` (flags: IOMMU_IOAS_MAP_*, with FIXED_IOVA). */
  ioasMap(iommufd: NativeHandle, ioasId: number, iova: bigint, memory: NativeMemory, offset: bigint, length: bigint, flags: number): void {
    this.#mapSlots(iommufd, iova, memory, offset, length, flags);
    this.#u32[IOAS] = ioasId;
    this.#addon.ioasMapHot();
  }

  /** IOMMU_IOAS_UNMAP; whether anything was unmapped. */
  ioasUnmap(iommufd: NativeHandle, ioasId: number, iova: bigint, length: bigint): boolean {
    this.#unmapSlots(iommufd, iova, length);
    this.#u32[IOAS] = ioasId;
    return this.#addon.ioasUnmapHot();
  }
}
