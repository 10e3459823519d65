/**
 * The backend contract: the leaf operations a kernel (real, or the simulator's model of one)
 * offers. Backends follow the KERNEL's rules and report failures by throwing `BackendError`
 * (errno + syscall name). Every Windows rule (one domain per device, token lifetimes, allocator
 * policy, status codes, sub-range unmap) lives once, above the backends, in `lib/core/`.
 *
 * Units: addresses and lengths are `bigint` bytes. "Physical address" (PA) is the backend's own
 * physical namespace: the simulator's machine RAM, or on native backends the real physical
 * address of memory this process allocated through `allocateMemory` (or, when the process cannot
 * read /proc/self/pagemap, a documented synthetic namespace: see `MemoryInfo.physicalIsReal`).
 *
 * Handles are small positive integers chosen by the backend; 0 is never valid.
 *
 * Obligations of every backend (the conformance suite checks them through the public interface):
 *  - `map` installs one *area* at a fixed IOVA. The range must be inside `geometry().ranges`,
 *    aligned to `geometry().alignment`, non-empty, must not wrap 2^64 and must not overlap an
 *    existing area (EEXIST). `perms` is non-zero (read=1, write=2). PAs must come from
 *    `allocateMemory` and not freed since (the simulator checks the same); else EFAULT. A
 *    `MemorySpan` source decides as its allocation's runs would.
 *  - `unmap(iova, length)` removes whole areas only: a range that cuts an area → ENOENT
 *    (iommufd semantics; type1 backends translate their EINVAL), nothing mapped → ENOENT. It
 *    returns the number of bytes unmapped. The core never asks for a cut.
 *  - After `unmap` returns, no DMA by any attached device can reach the old pages.
 *  - A device is attached to at most one domain; `attach` while attached → EBUSY (the core never
 *    asks). Devices of one IOMMU group must share a domain (EINVAL otherwise).
 *  - `freeDomain` with devices attached → EBUSY. Areas still mapped are dropped with the domain.
 *  - `close()` is idempotent and releases every kernel object in dependency order.
 */

/** Which backend implements a platform: the simulator, Linux iommufd, or legacy VFIO type1. */
export type BackendKind = 'simulated' | 'iommufd' | 'vfio-type1';

/** A PCI function as the platform enumerates it; stands in for a WDK PDO. */
export interface PciDeviceInfo {
  /** Full BDF, e.g. '0000:00:03.0'. */
  readonly bdf: string;
  /** PCI vendor ID (e.g. 0x1234 for QEMU's edu). */
  readonly vendorId: number;
  /** PCI device ID (e.g. 0x11e8 for QEMU's edu). */
  readonly deviceId: number;
  /** PCI class code, 24 bits (class << 16 | subclass << 8 | programming interface). */
  readonly classCode: number;
  /** IOMMU group number, or null when the device is not behind an IOMMU. */
  readonly iommuGroup: number | null;
  /** PCI requester ID: bus << 8 | device << 3 | function. */
  readonly requesterId: number;
  /** Bound kernel driver ('vfio-pci', ...) or null. Simulator: 'sim'. */
  readonly driver: string | null;
  /** True when this backend can open the device (e.g. bound to vfio-pci with a usable node). */
  readonly usable: boolean;
  /** Why not usable, when `usable` is false. */
  readonly whyNotUsable?: string;
  /** PASID capability: log2 of the number of PASIDs, 0 when the device has none. */
  readonly maxPasidLog2: number;
}

/** An inclusive range of logical addresses (IOVAs), in bytes. */
export interface IovaRange {
  /** First address of the range. */
  readonly start: bigint;
  /** Inclusive. */
  readonly last: bigint;
}

/** The logical address space of a domain as the backend sees it (`IommuPlatform.geometry`). */
export interface DomainGeometry {
  /** Usable IOVA ranges (aperture minus reserved regions such as the MSI window), sorted. */
  readonly ranges: readonly IovaRange[];
  /** IOVA and length alignment for `map` (bytes). */
  readonly alignment: bigint;
  /** Supported IOMMU page sizes as a bitmap (bit n set = 2^n bytes). */
  readonly pageSizes: bigint;
  /** Address width in bits of the aperture. */
  readonly addressWidth: number;
}

/** A physically contiguous piece of memory in the backend's PA namespace. */
export interface PhysicalRun {
  /** Start of the run: a physical address in the backend's namespace. */
  readonly pa: bigint;
  /** Length of the run in bytes. */
  readonly length: bigint;
}

/**
 * Memory named by its identity rather than its physical addresses: [offset, offset + length) of
 * an allocation made by `allocateMemory`. The platform hands `map` one instead of physical runs when
 * the caller described memory the library allocated (`DmaMemory.asContiguousRange`), so that the
 * backend need not rebuild the identity from physical addresses: the native backends map the
 * allocation's virtual memory directly, the simulator takes the allocation's own physical pages.
 * It names the same pages as `memory.runs(offset, length)`, and `map` decides exactly as it would
 * for those runs (memory of another backend, or freed: the runs' answer, EFAULT when freed).
 */
export interface MemorySpan {
  /** The allocation (from `allocateMemory`). */
  readonly memory: BackendMemory;
  /** Byte offset of the span in the allocation. */
  readonly offset: bigint;
  /** Length of the span in bytes. */
  readonly length: bigint;
}

/** What `map` maps: physical runs back to back, or a span of one allocation. */
export type MapSource = readonly PhysicalRun[] | MemorySpan;

/** Options of a backend allocation (the backend form of `allocateDmaMemory`'s options). */
export interface AllocateOptions {
  /** Back the memory with 2 MiB huge pages (native: MAP_HUGETLB; fails with ENOMEM if none). */
  readonly hugePages?: boolean;
  /** Request physically contiguous memory (the simulator always gives it; native only for hugePages ≤ 2 MiB). */
  readonly contiguous?: boolean;
  /**
   * Do not create a JS view: the memory is touched only through `read`/`write` and DMA.
   * Needed above 1 GiB. Untouched pages cost nothing (simulator: sparse; native: MAP_NORESERVE).
   */
  readonly lazy?: boolean;
}

/** Memory a backend allocated for DMA. Kept alive (and pinned by the kernel) while mapped. */
export interface BackendMemory {
  /** Backend-chosen identifier of the allocation (positive). */
  readonly id: number;
  /** Size of the allocation in bytes (a multiple of 4 KiB). */
  readonly size: bigint;
  /** A view of the whole allocation, or null for lazy allocations. */
  readonly bytes: Uint8Array | null;
  /** The physically contiguous runs of [offset, offset+length) in page order. */
  runs(offset: bigint, length: bigint): PhysicalRun[];
  /** PA of the 4 KiB page at `pageIndex`. */
  pageAddress(pageIndex: number): bigint;
  /** Copy `length` bytes from `offset` out of the allocation (works for lazy allocations too). */
  read(offset: bigint, length: number): Uint8Array;
  /** Copy `data` into the allocation at `offset`. */
  write(offset: bigint, data: Uint8Array): void;
  /** Release; throws BackendError(EBUSY) while any page is still mapped. Idempotent once released. */
  free(): void;
  /** True once `free()` succeeded. */
  readonly freed: boolean;
}

/** What the backend's physical addresses are. */
export interface MemoryInfo {
  /** True when PAs are real physical addresses (root with pagemap, or the simulator's RAM). */
  readonly physicalIsReal: boolean;
  /** Why not, when false. */
  readonly why?: string;
}

/** A DMA fault as a backend observed it. */
export interface BackendFault {
  /** PCI address of the faulting device. */
  readonly bdf: string;
  /** The faulting logical address, in bytes. */
  readonly iova: bigint;
  /**
   * True for a blocked write (device → memory), false for a read. Meaningful only when
   * `directionKnown` is not false: some IOMMUs do not say (virtio-iommu's no-mapping fault);
   * `write` is false then.
   */
  readonly write: boolean;
  /** False when the IOMMU's record does not give the direction (see capabilities.faultDetails). */
  readonly directionKnown?: boolean;
  /** PASID of the faulting request, when tagged. */
  readonly pasid?: number;
  /** 'translation' (no mapping) or 'permission' (mapping lacks the access). */
  readonly kind: 'translation' | 'permission' | 'other';
  /** Hardware fault reason code when known (VT-d: 0x05 = PTE write access not set, ...). */
  readonly reasonCode?: number;
  /** Human-readable reason, e.g. the kernel's log text. */
  readonly reason: string;
  /** Where it came from: the simulator's DMA engine, or the kernel log. */
  readonly source: 'simulator' | 'kmsg';
  /** Raw record (the kmsg line) when there is one. */
  readonly raw?: string;
  /** When the fault was observed: milliseconds since the Unix epoch. */
  readonly timestamp: number;
}

/** A device arrival, removal or policy change, as a backend observed it. */
export interface DeviceEvent {
  /** PCI address of the device. */
  readonly bdf: string;
  /** False when the device went away (surprise removal, unbind). */
  readonly present: boolean;
  /** The device's new available-domain-type mask (1 << IOMMU_DMA_DOMAIN_TYPE); 0 when removed. */
  readonly availableDomainTypes: number;
}

/** Caller-owned stage-1 table configuration (WDK DOMAIN_CONFIGURATION_ARM64). */
export interface Arm64DomainConfig {
  /** Translation table base 0 (physical address). */
  readonly ttbr0: bigint;
  /** Translation table base 1 (physical address). */
  readonly ttbr1: bigint;
  /** Memory attribute indirection register 0. */
  readonly mair0: number;
  /** Memory attribute indirection register 1. */
  readonly mair1: number;
  /** Input address width (bits) for `ttbr0`. */
  readonly inputSize0: number;
  /** Input address width (bits) for `ttbr1`. */
  readonly inputSize1: number;
  /** Table walks are cache-coherent. */
  readonly coherentTableWalks: boolean;
  /** False: traffic bypasses stage-1 translation. */
  readonly translationEnabled: boolean;
}

/**
 * A device's access path for drivers written in JS (e.g. the edu driver in lib/devices/): PCI
 * config space and BAR regions. The simulator models the same registers.
 */
export interface DeviceRegions {
  /** Read `size` bytes of PCI config space at `offset`. */
  configRead(offset: number, size: 1 | 2 | 4): number;
  /** Write `size` bytes of PCI config space at `offset`. */
  configWrite(offset: number, size: 1 | 2 | 4, value: number): void;
  /** Read a 32-bit register of BAR `bar` at byte `offset`. */
  barRead32(bar: number, offset: number): number;
  /** Write a 32-bit register of BAR `bar` at byte `offset`. */
  barWrite32(bar: number, offset: number, value: number): void;
  /** Read a 64-bit register of BAR `bar` at byte `offset`. */
  barRead64(bar: number, offset: number): bigint;
  /** Write a 64-bit register of BAR `bar` at byte `offset`. */
  barWrite64(bar: number, offset: number, value: bigint): void;
}

/**
 * What the platform can and cannot do, as data (the README's capability table is generated from
 * these, and the conformance suite reads them instead of scattering `if`s).
 */
export interface BackendCapabilities {
  /** Bitmask of 1 << IOMMU_DMA_DOMAIN_TYPE this backend can create. */
  readonly domainTypes: number;
  /** Real identity pass-through (no translation) vs identity maps over allocated memory only. */
  readonly passThrough: 'native' | 'emulated-identity' | 'none';
  /** Faults: 'engine' (simulated DMA engine), 'kmsg' (kernel log), 'none'. */
  readonly faultSource: 'engine' | 'kmsg' | 'none';
  /**
   * How many faults the source reports per interval before it drops records, or null when it
   * never drops. Intel VT-d's dmar_fault() prints under a static ratelimit (10 messages / 5 s)
   * and spends 3 messages' worth per fault (status line, record, loop exit): 3 faults per 5 s.
   */
  readonly faultRateLimit?: {
    /** Faults reported per interval. */
    readonly faults: number;
    /** The interval, in milliseconds. */
    readonly intervalMs: number;
  } | null;
  /**
   * A DMA that uses a translation the IOMMU cached for the other direction (the device read a
   * read-only page, then writes it) may be blocked without a fault record: QEMU 7.2's VT-d model
   * checks permissions on an IOTLB hit but reports nothing there. True on the native backends (the
   * IOMMU may be QEMU's); absent (false) on the simulator, which always reports. Read by the
   * differential runner (test/diff/).
   */
  readonly silentBlockOnCachedTranslation?: boolean;
  /**
   * Which IOMMU the platform sits on: the native backends read it from sysfs (/sys/class/iommu:
   * dmar* = Intel VT-d, ivhd* = AMD-Vi, an IOMMU under a virtio device = virtio-iommu, smmu3.* = Arm
   * SMMUv3); the simulator reports the model it imitates (`simulator.iommu`).
   */
  readonly iommu?: IommuModelKind;
  /**
   * What a fault record of this IOMMU tells (absent when faultSource is 'none'):
   *  - direction: every record says read or write (VT-d, AMD-Vi, SMMUv3); false when a record may
   *    not (virtio-iommu reports no R/W flag for a no-mapping fault: BackendFault.directionKnown false);
   *  - reasonCodes: records carry the hardware's reason code (VT-d fault reason, SMMUv3 event id,
   *    virtio-iommu fault reason); false for AMD-Vi's IO_PAGE_FAULT line, which has flags only;
   *  - address: 'page' when the record holds the faulting page (VT-d's FRCD), 'exact' when it holds
   *    the faulting byte (virtio-iommu, SMMUv3, AMD-Vi).
   */
  readonly faultDetails?: FaultRecordDetails | null;
  /**
   * What a write-only mapping allows the device: 'readable' (absent = this) when the IOMMU driver
   * cannot express write-only (VT-d's present bit is its read bit; Arm's io-pgtable has no
   * write-only encoding), 'enforced' when the IOMMU blocks a device read through it (virtio-iommu,
   * AMD-Vi: measured under QEMU 7.2; virtio-iommu logs a read fault with the R flag).
   */
  readonly writeOnlyMappings?: 'readable' | 'enforced';
  /** Map before any device is attached works directly ('direct') or is replayed ('replayed'). */
  readonly mapBeforeAttach: 'direct' | 'replayed';
  /** Maximum live areas per domain (type1: dma_entry_limit), or null when unbounded. */
  readonly maxAreasPerDomain: number | null;
  /** PASID-capable devices and `CreatePasidDevice` are possible (simulator only). */
  readonly pasid: boolean;
  /** Caller-owned page tables (Unmanaged domains + ConfigureDomain). */
  readonly unmanagedDomains: boolean;
  /** Architecture the platform models: x86 VT-d, or Arm64 SMMU (QueryInputMappings, ACPI configs). */
  readonly arch: 'x86_64' | 'arm64';
  /**
   * What `geometry()` reports for a domain no device has been attached to. Both: the whole 64-bit
   * space (no aperture or reserved region applies yet), address width 64.
   *  - 'modelled': the modelled IOMMU's page sizes and the alignment of the kernel's empty IOAS
   *    (1 byte): the simulator knows its IOMMU before any attach.
   *  - 'unknown': 4 KiB alignment and page size: the kernel knows nothing of the IOMMU until a
   *    device is attached (a type1 container has no IOMMU before a group joins; an empty IOAS has
   *    no domain), so the native backends report the minimum every IOMMU supports.
   * Once attached, every backend reports the IOMMU's own geometry, which lies within this one.
   */
  readonly unattachedGeometry: 'modelled' | 'unknown';
}

/** IOMMU models (BackendCapabilities.iommu). */
export type IommuModelKind = 'vtd' | 'virtio' | 'amd' | 'smmuv3' | 'unknown';

/** What a fault record tells (BackendCapabilities.faultDetails). */
export interface FaultRecordDetails {
  /** Every record says read or write. */
  readonly direction: boolean;
  /** Records carry the hardware's reason code. */
  readonly reasonCodes: boolean;
  /** The record's address: the faulting page's ('page') or the faulting byte's ('exact'). */
  readonly address: 'page' | 'exact';
}

/** One step of backend auto-selection, as `dma-iommu info` prints it. */
export interface ProbeStep {
  /** What was checked (e.g. `/dev/iommu`). */
  readonly check: string;
  /** Whether the check passed. */
  readonly ok: boolean;
  /** What was found, in words. */
  readonly detail: string;
}

/**
 * The backend contract below the WDK layer: the leaf operations of one kernel interface (the
 * simulator, iommufd or VFIO type1), with the kernel's rules and errnos; {@link IommuPlatform} adds
 * every Windows rule and status code on top. Reachable as `IommuPlatform.backend`; users read
 * `kind`, `reason`, `capabilities` and `memoryInfo`, and call the rest only to write a backend.
 * Every method throws a `BackendError` (errno + syscall), which the platform turns into an `IommuError`.
 */
export interface IommuBackend {
  /** Which kernel interface this is. */
  readonly kind: BackendKind;
  /** Why this backend was chosen (auto-selection writes every step here). */
  readonly reason: string;
  /** What this backend can and cannot do, as data (the README's capability table). */
  readonly capabilities: BackendCapabilities;
  /** Whether this backend's physical addresses are real. */
  readonly memoryInfo: MemoryInfo;

  /** Devices this platform knows, usable or not. */
  enumerateDevices(): PciDeviceInfo[];

  // ---- memory --------------------------------------------------------------------------------
  /** Allocate page-aligned memory for DMA of at least `size` bytes. ENOMEM when out of memory. */
  allocateMemory(size: bigint, options?: AllocateOptions): BackendMemory;

  // ---- devices -------------------------------------------------------------------------------
  /** Open and bind the device (iommufd: cdev + BIND; type1: group). ENOENT unknown, EBUSY taken. */
  openDevice(bdf: string): number;
  /** Close (detaches first if attached). Idempotent. */
  closeDevice(device: number): void;
  /** Config space and BAR access of an opened device. */
  deviceRegions(device: number): DeviceRegions;
  /** Bitmask of 1 << IOMMU_DMA_DOMAIN_TYPE the device may attach to right now (policy + hardware). */
  availableDomainTypes(device: number): number;
  /** Input-mapping (stream) IDs of the device: Arm64 only (x86 → ENOTSUP). */
  inputMappingIds(device: number): number[];

  // ---- domains -------------------------------------------------------------------------------
  /**
   * 'translate': paging domain (IOAS). 'passthrough': identity/bypass (see capabilities; on a
   * passthrough domain `map`/`unmap` record areas but do not change translation).
   * 'unmanaged': caller-owned page tables (only when capabilities.unmanagedDomains; DMA blocked
   * until `configureDomain`). Unsupported type → ENOTSUP.
   */
  allocDomain(type: 'translate' | 'passthrough' | 'unmanaged'): number;
  /** Unmanaged domains only (else EINVAL): install the caller's tables. */
  configureDomain(domain: number, config: Arm64DomainConfig): void;
  /** Unmanaged domains only (else EINVAL): invalidate cached translations (all, or the listed VAs). */
  flushDomain(domain: number, vaList?: readonly bigint[], lastLevel?: boolean): void;
  /** Free a domain (EBUSY while devices are attached); its areas go with it. */
  freeDomain(domain: number): void;
  /** Geometry of the domain as of now (narrows once a device is attached). */
  geometry(domain: number): DomainGeometry;
  /** Attach an opened device to a domain (EBUSY if attached; EINVAL if its IOMMU group is elsewhere). */
  attach(domain: number, device: number): void;
  /** Detach a device from its domain. */
  detach(device: number): void;
  /** Attach a PASID of the device to a domain (V3). ENOTSUP when the device has no PASID. */
  attachPasid(domain: number, device: number, pasid: number): void;
  /** Detach a PASID of the device from its domain (V3). */
  detachPasid(device: number, pasid: number): void;

  // ---- mappings ------------------------------------------------------------------------------
  /**
   * One area at `iova` covering `source`: physical runs back to back, or a span of an allocation
   * (the same pages as its runs; see {@link MemorySpan}). perms: bit0 read, bit1 write (non-zero).
   */
  map(domain: number, iova: bigint, source: MapSource, perms: number): void;
  /** Remove whole areas in [iova, iova+length). Returns bytes unmapped. */
  unmap(domain: number, iova: bigint, length: bigint): bigint;

  // ---- events --------------------------------------------------------------------------------
  /** Subscribe to DMA faults of opened devices. Returns an unsubscribe function. */
  onFault(listener: (fault: BackendFault) => void): () => void;
  /** Subscribe to device arrival/removal. */
  onDeviceEvent(listener: (event: DeviceEvent) => void): () => void;

  /** Everything as JSON-able data. */
  inspect(): unknown;
  /** Release every kernel object in dependency order. Idempotent. */
  close(): void;
  /** True once `close()` ran. */
  readonly closed: boolean;

  // ---- optional: the page-number lane ----------------------------------------------------------
  // For a backend whose memory is named by its physical page numbers (the simulator): the
  // platform's fast paths have already turned every address into a 4 KiB page number, and pass
  // those instead of converting them back to bigints for the backend to check again. Each is
  // exactly the bigint member on the same values (same errnos, messages, counters, failure
  // injection); arguments outside its domain are a TypeError/RangeError naming the argument.
  /**
   * `map(domain, page·4096, [{ pa: pfn·4096, length: pages·4096 }], perms)`. `page` and `pfn`
   * are integers in 0..2^31-1, `pages` in 1..2^31-1, `perms` 1, 2 or 3.
   */
  mapPageRun?(domain: number, page: number, pages: number, pfn: number, perms: number): void;
  /** `unmap(domain, page·4096, pages·4096)`; `page` and `pages` as for `mapPageRun`. */
  unmapPageRange?(domain: number, page: number, pages: number): void;
}
