/**
 * The native addon's surface (native/addon.cc + native/binding/), declared once so nothing at the
 * seam is `any`. Every kernel call is synchronous; a failed one throws the class handed to
 * `setErrorClass` (the loader hands it BackendError) as `new cls(errno, syscall, detail?)`: errno
 * negative, syscall the bare name every backend uses ('IOMMU_IOAS_MAP', 'mmap', 'open'). Misuse
 * (closed handle, wrong type or receiver, detached buffer, lossy number) throws TypeError / RangeError.
 */

export type HandleKind = 'iommufd' | 'device' | 'container' | 'group' | 'kmsg' | 'file';

/** An fd the addon opened. Closed by `close()`, by the GC as a last resort, or at env teardown. */
export interface NativeHandle {
  readonly fd: number;
  readonly closed: boolean;
  readonly kind: HandleKind;
  /** Kernel DMA areas the addon knows this object holds (IOAS maps, container maps). */
  readonly areas: number;
  /** This handle's id for the hot calls (lib/backend/native/hot.ts). */
  readonly hotId: number;
  close(): void;
}

/** Anonymous page-aligned memory (mmap). Pinned (free → EBUSY) while a kernel area maps it. */
export interface NativeMemory {
  readonly address: bigint;
  readonly size: bigint;
  readonly pins: number;
  readonly freed: boolean;
  /** External ArrayBuffer over the mapping, or null (lazy allocations, or after free). */
  readonly buffer: ArrayBuffer | null;
  /** This allocation's id for the hot calls (lib/backend/native/hot.ts). */
  readonly hotId: number;
  read(offset: bigint, length: number): Uint8Array;
  write(offset: bigint, data: Uint8Array): void;
  /** mlock a sub-range (faults it in and keeps it resident). */
  lock(offset: bigint, length: bigint): void;
  /** Raw /proc/self/pagemap entries of `count` (≤ 2^20) 4 KiB pages from `firstPage`. */
  pagemap(firstPage: number, count: number): BigUint64Array;
  free(): void;
}

export interface NativeIovaRange {
  readonly start: bigint;
  readonly last: bigint;
}

export interface NativeConstants {
  readonly pageSize: number;
  readonly O_RDONLY: number;
  readonly O_RDWR: number;
  readonly O_NONBLOCK: number;
  readonly MEM_HUGE_PAGES: number;
  readonly MEM_POPULATE: number;
  readonly MEM_LOCK: number;
  readonly IOMMU_IOAS_MAP_FIXED_IOVA: number;
  readonly IOMMU_IOAS_MAP_WRITEABLE: number;
  readonly IOMMU_IOAS_MAP_READABLE: number;
  readonly IOMMU_HWPT_ALLOC_NEST_PARENT: number;
  readonly IOMMU_HWPT_ALLOC_DIRTY_TRACKING: number;
  readonly IOMMU_HW_INFO_TYPE_INTEL_VTD: number;
  readonly IOMMU_HW_INFO_TYPE_ARM_SMMUV3: number;
  readonly VFIO_API_VERSION: number;
  readonly VFIO_TYPE1_IOMMU: number;
  readonly VFIO_TYPE1v2_IOMMU: number;
  readonly VFIO_UNMAP_ALL: number;
  readonly VFIO_GROUP_FLAGS_VIABLE: number;
  readonly VFIO_GROUP_FLAGS_CONTAINER_SET: number;
  readonly VFIO_DEVICE_FLAGS_RESET: number;
  readonly VFIO_DEVICE_FLAGS_PCI: number;
  readonly VFIO_REGION_INFO_FLAG_READ: number;
  readonly VFIO_REGION_INFO_FLAG_WRITE: number;
  readonly VFIO_PCI_CONFIG_REGION_INDEX: number;
  readonly VFIO_PCI_NUM_REGIONS: number;
  readonly VFIO_DMA_MAP_FLAG_READ: number;
  readonly VFIO_DMA_MAP_FLAG_WRITE: number;
  readonly VFIO_DMA_UNMAP_FLAG_ALL: number;
}

export interface NativeAbi {
  readonly [ioctl: string]: number | boolean | Readonly<Record<string, number>>;
  readonly sizes: Readonly<Record<string, number>>;
  readonly checked: boolean;
}

export interface NativeStats {
  readonly openHandles: number;
  readonly areas: number;
  readonly mappedRegions: number;
  readonly pinnedRegions: number;
  readonly externalBytes: number;
}

export interface NativeAddon {
  readonly version: string;
  readonly constants: NativeConstants;
  readonly abi: NativeAbi;
  stats(): NativeStats;
  /** The class kernel failures are thrown as from now on in this thread (see the top). */
  setErrorClass(cls: new (errno: number, syscall: string, detail?: string) => Error): void;

  open(path: string, flags: number, kind: 'iommufd' | 'device' | 'container' | 'group' | 'file'): NativeHandle;
  allocMemory(size: bigint, flags: number, view: boolean): NativeMemory;
  kmsgOpen(): NativeHandle;
  kmsgRead(kmsg: NativeHandle, max: number): string[];

  // iommufd
  ioasAlloc(iommufd: NativeHandle): number;
  destroy(iommufd: NativeHandle, id: number): void;
  ioasIovaRanges(iommufd: NativeHandle, ioasId: number): { ranges: NativeIovaRange[]; alignment: bigint };
  hwptAlloc(iommufd: NativeHandle, devId: number, ptId: number, flags: number): number;
  getHwInfo(iommufd: NativeHandle, devId: number): { type: number; maxPasidLog2: number; capabilities: bigint; data: Uint8Array };
  deviceBindIommufd(device: NativeHandle, iommufd: NativeHandle): number;
  deviceAttachPt(device: NativeHandle, ptId: number): number;
  deviceDetachPt(device: NativeHandle): void;

  // generic VFIO device
  deviceGetInfo(device: NativeHandle): { flags: number; numRegions: number; numIrqs: number };
  deviceGetRegionInfo(device: NativeHandle, index: number): { flags: number; size: bigint; offset: bigint };
  regionRead(device: NativeHandle, offset: bigint, size: 1 | 2 | 4): number;
  regionRead(device: NativeHandle, offset: bigint, size: 8): bigint;
  regionWrite(device: NativeHandle, offset: bigint, size: 1 | 2 | 4, value: number): void;
  regionWrite(device: NativeHandle, offset: bigint, size: 8, value: bigint): void;

  // legacy type1
  getApiVersion(container: NativeHandle): number;
  checkExtension(container: NativeHandle, extension: number): number;
  setIommu(container: NativeHandle, iommuType: number): void;
  groupGetStatus(group: NativeHandle): number;
  groupSetContainer(group: NativeHandle, container: NativeHandle): void;
  groupUnsetContainer(group: NativeHandle): void;
  groupGetDeviceFd(group: NativeHandle, name: string): NativeHandle;
  iommuGetInfo(container: NativeHandle): { flags: number; pageSizes: bigint; ranges: NativeIovaRange[] | null; dmaAvail: number | null };
  // Map/unmap (native/binding/hot.h; use through lib/backend/native/hot.ts): arguments in the slot
  // buffer `hotSlots` (zeroed by every call), none passed; unmaps say whether anything was unmapped.
  readonly hotSlots: ArrayBuffer;
  dmaMapHot(): void;
  dmaUnmapHot(): boolean;
  ioasMapHot(): void;
  ioasUnmapHot(): boolean;
}
