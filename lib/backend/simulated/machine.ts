/**
 * The simulated machine: options (checked by `parseOptions`), the default device set, and the
 * device objects.
 *
 * Default machine (x86_64), mirroring the project's QEMU q35 + intel-iommu VM plus a PASID pair:
 *   0000:00:03.0  edu 1234:11e8 rev 0x10 class 0x00ff00, IOMMU group 3, no PASID
 *   0000:00:04.0  edu 1234:11e8 rev 0x10 class 0x00ff00, IOMMU group 4, no PASID
 *   0000:00:05.0  generic DMA test function 1b36:0005 class 0x00ff00, IOMMU group 5, 20-bit PASID
 *   0000:00:05.1  the same, second function of that multi-function device, also group 5
 * 1b36:0005 is the ID of QEMU's `pci-testdev` (Red Hat, Inc. vendor ID); here it is a generic PCIe
 * DMA master with a PASID capability, driven through the backend's dmaRead/dmaWrite controls.
 * IOMMU: 39-bit address width (3-level tables), page sizes 4 KiB / 2 MiB / 1 GiB, reserved region
 * = the x86 MSI window 0xfee00000–0xfeefffff. RAM: 64 GiB of physical address space with the PCI
 * hole at 3–4 GiB ([0, 3 GiB) and [4 GiB, 64 GiB)).
 * arm64 (`arch: 'arm64'`): 48-bit address width (4 levels), reserved region = Linux's software
 * MSI window 0x8000000–0x80fffff, RAM from 1 GiB (QEMU virt), stream ID = requester ID.
 */
import type { BackendCapabilities, FaultRecordDetails, IovaRange, PciDeviceInfo } from '../contract.js';
import { FAULT_DETAILS, WRITE_ONLY_MAPPINGS } from '../iommu-facts.js';
import type { SimDomain } from './domain.js';
import { machineName } from './device-lock.js';
import { type DeviceModel, EduModel, type EduHost, GenericModel } from './edu-model.js';
import { GIB, type RamRange } from './physical-memory.js';
import { describe, normalizeBdf, parseBdf, TWO_POW_52, U64_MAX } from './util.js';

export interface SimDeviceSpec {
  /** PCI address 'dddd:bb:dd.f' (the domain part may be omitted). */
  readonly bdf: string;
  /** 'edu' (QEMU edu registers and DMA engine) or 'generic' (config space only). Default 'generic'. */
  readonly model?: 'edu' | 'generic';
  readonly vendorId?: number;
  readonly deviceId?: number;
  readonly classCode?: number;
  readonly revision?: number;
  /** IOMMU group; null = not behind an IOMMU (not usable; DMA is untranslated). Default: a fresh group. */
  readonly iommuGroup?: number | null;
  /** log2 of the number of PASIDs; 0 = no PASID capability (default). */
  readonly maxPasidLog2?: number;
  /** Extra reserved IOVA regions of this device (RMRR-like), on top of the machine's. */
  readonly reservedRegions?: readonly IovaRange[];
  /** arm64: stream IDs (default [requesterId]). */
  readonly streamIds?: readonly number[];
  /** Initial available-domain-type mask (default: every type the backend supports). */
  readonly availableDomainTypes?: number;
  /** edu: DMA mask (default 2^28-1, QEMU's default). */
  readonly dmaMask?: bigint;
  /** Default true (when behind an IOMMU). */
  readonly usable?: boolean;
  readonly whyNotUsable?: string;
  /** Default 'sim'. */
  readonly driver?: string | null;
}

/** Options of a {@link SimulatedBackend}: the simulated machine (`simulator` in {@link SelectOptions}). */
export interface SimulatedBackendOptions {
  /** Why this backend was chosen (default 'simulated backend requested'). */
  readonly reason?: string;
  /**
   * The IOMMU model the machine imitates, with the facts the kernel-facts suite measured on it
   * under QEMU 7.2 + Linux 6.12 (SIM_IOMMU_PROFILES): 'vtd' (default; Intel VT-d), 'virtio'
   * (virtio-iommu), 'amd' (AMD-Vi as QEMU emulates it: blocked DMA reports no fault) or 'smmuv3'
   * (Arm SMMUv3: arch 'arm64'). Default: the `DMA_IOMMU_SIM_IOMMU` environment variable when set,
   * else 'vtd' ('smmuv3' when `arch` is 'arm64'). `arch`, `addressWidth`, `reservedRegions` and
   * `pageSizes` given explicitly override the profile's.
   */
  readonly iommu?: SimIommuModel;
  /** Default: the `iommu` profile's ('x86_64' except for 'smmuv3'). */
  readonly arch?: 'x86_64' | 'arm64';
  /** Top of the physical address space in bytes (default 64 GiB); the default holes apply. */
  readonly ramSize?: bigint | number;
  /** Explicit RAM ranges (override ramSize): page-aligned byte ranges below 2^52. */
  readonly ramRanges?: ReadonlyArray<{
    /** First byte of the range (page-aligned physical address). */
    readonly start: bigint | number;
    /** Length in bytes (a multiple of 4 KiB). */
    readonly length: bigint | number;
  }>;
  /** IOMMU input address width, 32..57 (default 39 on x86_64, 48 on arm64). */
  readonly addressWidth?: number;
  /** Reserved IOVA regions every device brings (default: the arch's MSI window). */
  readonly reservedRegions?: readonly IovaRange[];
  /** Supported page sizes as a bitmap; must include 4 KiB; 2 MiB and 1 GiB optional. */
  readonly pageSizes?: bigint;
  /** The devices (default: the machine described above). */
  readonly devices?: readonly SimDeviceSpec[];
  /** Fault log depth (default 4096; older records are dropped and counted). */
  readonly faultLogCapacity?: number;
  /** Delay of edu DMA and factorial completion in ms (default 0 = next microtask). */
  readonly eduDmaDelayMs?: number;
  /**
   * The simulated machine's identity, for device ownership across processes (the kernel's rule:
   * a device open in one process is busy in every other, `STATUS_DEVICE_BUSY`). Backends (in any
   * process of the same user) that name the same machine share it: a device one of them has open
   * is busy (EBUSY) for the others until it is closed, the backend closed, or its process exits
   * or is killed. `null`: a private machine, which nothing else can see. Default: the
   * `DMA_IOMMU_SIM_MACHINE` environment variable when set, else private, so that independent
   * simulated machines (parallel test files, parallel CI workers) never collide. Names: 1-64
   * characters of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
   */
  readonly machine?: string | null;
  /**
   * Devices added to `devices` (default 'flat': none). 'bridge' mirrors `dma-iommu vm --topology
   * bridge`: a conventional PCI bridge at 00:1c.0 with edu devices 01:01.0 and 01:02.0 and a virtio
   * function 01:03.0 on its host driver (virtio-pci), all in IOMMU group 7, so the group is not viable.
   */
  readonly topology?: 'flat' | 'bridge';
  /**
   * Model RLIMIT_MEMLOCK without CAP_IPC_LOCK: bytes mapped in all domains together may not exceed
   * it; the map beyond is ENOMEM naming the limit (as the native backends' pin). Default: unlimited.
   */
  readonly memlockLimit?: bigint | number;
  /** Model VFIO type1's dma_entry_limit: mappings per domain; the map beyond is ENOSPC naming it. Default: unlimited. */
  readonly dmaEntryLimit?: number;
}

export const X86_MSI_WINDOW: IovaRange = { start: 0xfee00000n, last: 0xfeefffffn };
export const ARM64_SW_MSI_WINDOW: IovaRange = { start: 0x8000000n, last: 0x80fffffn };
/** AMD-Vi's reserved window above the 1 TiB line (HyperTransport: /sys/kernel/iommu_groups/N/reserved_regions 'reserved'). */
export const AMD_HT_WINDOW: IovaRange = { start: 0xfd00000000n, last: 0xffffffffffn };
export const DEFAULT_PAGE_SIZES = (1n << 12n) | (1n << 21n) | (1n << 30n);

export const SIM_IOMMU_MODELS = ['vtd', 'virtio', 'amd', 'smmuv3'] as const;
export type SimIommuModel = (typeof SIM_IOMMU_MODELS)[number];

/** What the simulator imitates of an IOMMU model (SimulatedBackendOptions.iommu). */
export interface SimIommuProfile {
  readonly arch: 'x86_64' | 'arm64';
  /** IOMMU input address width. */
  readonly addressWidth: number;
  readonly reservedRegions: readonly IovaRange[];
  /** What its fault records tell (BackendCapabilities.faultDetails); null: no record is reported. */
  readonly faultDetails: FaultRecordDetails | null;
  /** BackendCapabilities.writeOnlyMappings. */
  readonly writeOnlyMappings: 'readable' | 'enforced';
}

/**
 * The four models as `dma-iommu vm --iommu MODEL` measured them (QEMU 7.2, Linux 6.12; the guest
 * suite test/vm/guest/iommu-model-native.test.ts holds each profile against the real kernel):
 *  - vtd: aw-bits 39 (ranges to 0x7fffffffff), the x86 MSI window reserved; records carry the
 *    direction, the VT-d reason code and the faulting page's address.
 *  - virtio: 64-bit input range ("input address: 64 bits"), the MSI window reserved (the VIOT
 *    probe reports it as 'msi'); a no-mapping fault says neither read nor write ("page fault from
 *    EP 24 at 0x200000 []"), records hold the exact address; reason codes are virtio-iommu's
 *    (2 = mapping, 1 = domain). A write-only mapping is not device-readable (a read fault [R]).
 *  - amd: 64-bit ranges, the MSI window and 0xfd00000000-0xffffffffff reserved; QEMU 7.2's
 *    amd-iommu blocks an unmapped DMA without an event, so no fault is reported (faultSource 'none');
 *    a write-only mapping is not device-readable (Linux sets IW without IR).
 *  - smmuv3: the arm64 model: 48-bit, Linux's software MSI window 0x8000000-0x80fffff; records
 *    carry the direction, the SMMU event id and the exact address.
 * Page sizes stay 4 KiB / 2 MiB / 1 GiB on every profile (virtio-iommu's page mask allows every
 * power of two from 4 KiB; the simulator's tables model these three).
 */
export const SIM_IOMMU_PROFILES: Readonly<Record<SimIommuModel, SimIommuProfile>> = {
  vtd: { arch: 'x86_64', addressWidth: 39, reservedRegions: [X86_MSI_WINDOW], faultDetails: FAULT_DETAILS.vtd, writeOnlyMappings: WRITE_ONLY_MAPPINGS.vtd },
  virtio: { arch: 'x86_64', addressWidth: 64, reservedRegions: [X86_MSI_WINDOW], faultDetails: FAULT_DETAILS.virtio, writeOnlyMappings: WRITE_ONLY_MAPPINGS.virtio },
  amd: { arch: 'x86_64', addressWidth: 64, reservedRegions: [X86_MSI_WINDOW, AMD_HT_WINDOW], faultDetails: null /* QEMU's amd-iommu reports none */, writeOnlyMappings: WRITE_ONLY_MAPPINGS.amd },
  smmuv3: { arch: 'arm64', addressWidth: 48, reservedRegions: [ARM64_SW_MSI_WINDOW], faultDetails: FAULT_DETAILS.smmuv3, writeOnlyMappings: WRITE_ONLY_MAPPINGS.smmuv3 },
};

/** Vendor/device of the generic PASID-capable DMA test device (QEMU pci-testdev's ID). */
export const GENERIC_VENDOR = 0x1b36;
export const GENERIC_DEVICE = 0x0005;

export const DEFAULT_DEVICES: readonly SimDeviceSpec[] = [
  { bdf: '0000:00:03.0', model: 'edu', iommuGroup: 3 },
  { bdf: '0000:00:04.0', model: 'edu', iommuGroup: 4 },
  { bdf: '0000:00:05.0', model: 'generic', vendorId: GENERIC_VENDOR, deviceId: GENERIC_DEVICE, classCode: 0x00ff00, iommuGroup: 5, maxPasidLog2: 20 },
  { bdf: '0000:00:05.1', model: 'generic', vendorId: GENERIC_VENDOR, deviceId: GENERIC_DEVICE, classCode: 0x00ff00, iommuGroup: 5, maxPasidLog2: 20 },
];

/** IOMMU group of the bridged functions of the 'bridge' topology (the number the VM's guest kernel gives it). */
export const BRIDGE_GROUP = 7;

/**
 * The 'bridge' topology, as `dma-iommu vm --topology bridge` builds it in QEMU: a conventional
 * PCI-PCI bridge (1b36:0001) at 00:1c.0 with two edu devices and a virtio-rng function behind it, all
 * in one IOMMU group (requests behind a conventional bridge carry the bridge's requester ID). The
 * edu devices are bound to vfio-pci ('sim'); the virtio function stays on its host driver
 * (virtio-pci), so the group is not viable: pass a copy with its `driver: null` for the released state.
 */
export const BRIDGE_TOPOLOGY_DEVICES: readonly SimDeviceSpec[] = [
  { bdf: '0000:00:1c.0', model: 'generic', vendorId: 0x1b36, deviceId: 0x0001, classCode: 0x060400, iommuGroup: BRIDGE_GROUP, driver: null, usable: false, whyNotUsable: 'a PCI bridge, not bound to vfio-pci' },
  { bdf: '0000:01:01.0', model: 'edu', iommuGroup: BRIDGE_GROUP },
  { bdf: '0000:01:02.0', model: 'edu', iommuGroup: BRIDGE_GROUP },
  { bdf: '0000:01:03.0', model: 'generic', vendorId: 0x1af4, deviceId: 0x1005, classCode: 0x00ff00, iommuGroup: BRIDGE_GROUP, driver: 'virtio-pci', usable: false, whyNotUsable: 'bound to virtio-pci, not vfio-pci' },
];

export function defaultRamRanges(arch: 'x86_64' | 'arm64', top: number): Array<{ start: number; end: number }> {
  if (arch === 'arm64') {
    return top > GIB ? [{ start: GIB, end: top }] : [{ start: 0, end: top }];
  }
  const holeStart = 3 * GIB;
  const holeEnd = 4 * GIB;
  if (top <= holeStart) return [{ start: 0, end: top }];
  if (top <= holeEnd) return [{ start: 0, end: holeStart }];
  return [
    { start: 0, end: holeStart },
    { start: holeEnd, end: top },
  ];
}

const DT_TRANSLATE = 1 << 0;
const DT_PASSTHROUGH = 1 << 1;
const DT_UNMANAGED = 1 << 2;

/** What the simulated platform forces (BackendCapabilities), by architecture and IOMMU model. */
export function capabilitiesOf(arch: 'x86_64' | 'arm64', maxAreasPerDomain: number | null = null, iommu: SimIommuModel = arch === 'arm64' ? 'smmuv3' : 'vtd'): BackendCapabilities {
  const faultDetails = SIM_IOMMU_PROFILES[iommu].faultDetails;
  return Object.freeze({
    domainTypes: DT_TRANSLATE | DT_PASSTHROUGH | (arch === 'arm64' ? DT_UNMANAGED : 0),
    passThrough: 'native',
    iommu,
    faultSource: faultDetails ? 'engine' : 'none',
    faultDetails,
    writeOnlyMappings: SIM_IOMMU_PROFILES[iommu].writeOnlyMappings,
    mapBeforeAttach: 'direct',
    maxAreasPerDomain,
    pasid: true,
    unmanagedDomains: arch === 'arm64',
    arch,
    unattachedGeometry: 'modelled',
  } satisfies BackendCapabilities);
}

/** SimulatedBackendOptions, checked and with the defaults applied. */
export interface MachineConfig {
  readonly iommu: SimIommuModel;
  readonly arch: 'x86_64' | 'arm64';
  readonly reason: string;
  readonly addressWidth: number;
  readonly pageTableLevels: number;
  readonly pageSizes: bigint;
  readonly reservedRegions: readonly IovaRange[];
  readonly ram: RamRange[];
  readonly faultLogCapacity: number;
  readonly eduDmaDelayMs: number;
  readonly devices: readonly SimDeviceSpec[];
  /** The machine's name (device ownership shared across processes), or null (private). */
  readonly machine: string | null;
  readonly memlockLimit: bigint | null;
  readonly dmaEntryLimit: number | null;
}

/** Check the options (TypeError / RangeError naming the option) and apply the defaults. */
export function parseOptions(options: SimulatedBackendOptions): MachineConfig {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const fromEnv = process.env.DMA_IOMMU_SIM_IOMMU || undefined;
  const iommu = options.iommu ?? (fromEnv !== undefined && options.arch === undefined ? fromEnv : options.arch === 'arm64' ? 'smmuv3' : 'vtd');
  if (!(SIM_IOMMU_MODELS as readonly unknown[]).includes(iommu)) {
    throw new RangeError(`${options.iommu === undefined ? 'DMA_IOMMU_SIM_IOMMU' : 'iommu'} must be ${SIM_IOMMU_MODELS.map((m) => `'${m}'`).join(', ')}, got ${describe(iommu)}`);
  }
  const profile = SIM_IOMMU_PROFILES[iommu as SimIommuModel];
  const arch = options.arch ?? profile.arch;
  if (arch !== 'x86_64' && arch !== 'arm64') throw new RangeError(`arch must be 'x86_64' or 'arm64', got ${describe(arch)}`);
  if (arch !== profile.arch) throw new RangeError(`iommu '${String(iommu)}' is an ${profile.arch} IOMMU: arch must be '${profile.arch}' (got '${arch}')`);
  const reason = options.reason ?? 'simulated backend requested';
  if (typeof reason !== 'string') throw new TypeError('reason must be a string');
  const width = options.addressWidth ?? profile.addressWidth;
  if (!Number.isInteger(width) || width < 32 || width > 64) throw new RangeError(`addressWidth must be an integer in 32..64, got ${describe(width)}`);
  const pageSizes = options.pageSizes ?? DEFAULT_PAGE_SIZES;
  if (typeof pageSizes !== 'bigint' || (pageSizes & (1n << 12n)) === 0n || (pageSizes & ~DEFAULT_PAGE_SIZES) !== 0n) {
    throw new RangeError('pageSizes must be a bitmap of 4 KiB (required), 2 MiB and 1 GiB');
  }
  const reserved = options.reservedRegions ?? profile.reservedRegions;
  if (!Array.isArray(reserved)) throw new TypeError('reservedRegions must be an array');
  const reservedRegions = reserved.map((r: IovaRange) => {
    if (r === null || typeof r !== 'object' || typeof r.start !== 'bigint' || typeof r.last !== 'bigint' || r.start < 0n || r.last < r.start || r.last > U64_MAX) {
      throw new RangeError('reservedRegions: expected { start: bigint, last: bigint } with start ≤ last');
    }
    return { start: r.start, last: r.last };
  });
  const ram = ramRanges(options, arch);
  const cap = options.faultLogCapacity ?? 4096;
  if (!Number.isInteger(cap) || cap < 1) throw new RangeError('faultLogCapacity must be a positive integer');
  const delay = options.eduDmaDelayMs ?? 0;
  if (typeof delay !== 'number' || !(delay >= 0)) throw new RangeError('eduDmaDelayMs must be ≥ 0');
  const base = options.devices ?? DEFAULT_DEVICES;
  if (!Array.isArray(base)) throw new TypeError('devices must be an array');
  const topology = options.topology ?? 'flat';
  if (topology !== 'flat' && topology !== 'bridge') throw new RangeError(`topology must be 'flat' or 'bridge', got ${describe(topology)}`);
  const devices = topology === 'bridge' ? [...base, ...BRIDGE_TOPOLOGY_DEVICES] : base;
  const memlock = options.memlockLimit ?? null;
  if (memlock !== null && !((typeof memlock === 'bigint' && memlock >= 0n) || (typeof memlock === 'number' && Number.isSafeInteger(memlock) && memlock >= 0))) {
    throw new RangeError(`memlockLimit must be a non-negative integer number of bytes, got ${describe(memlock)}`);
  }
  const entries = options.dmaEntryLimit ?? null;
  if (entries !== null && (typeof entries !== 'number' || !Number.isInteger(entries) || entries < 1 || entries > 0xffffffff)) {
    throw new RangeError(`dmaEntryLimit must be an integer in 1..4294967295, got ${describe(entries)}`);
  }
  const machine = machineName(options.machine);
  return {
    iommu: iommu as SimIommuModel,
    arch,
    reason,
    addressWidth: width,
    pageTableLevels: Math.ceil((width - 12) / 9),
    pageSizes,
    reservedRegions,
    ram,
    faultLogCapacity: cap,
    eduDmaDelayMs: delay,
    devices,
    machine,
    memlockLimit: memlock === null ? null : BigInt(memlock),
    dmaEntryLimit: entries,
  };
}

function ramRanges(options: SimulatedBackendOptions, arch: 'x86_64' | 'arm64'): RamRange[] {
  if (options.ramRanges !== undefined) {
    if (!Array.isArray(options.ramRanges)) throw new TypeError('ramRanges must be an array');
    return options.ramRanges.map((r) => {
      const start = toNumber(r.start, 'ramRanges.start');
      return { start, end: start + toNumber(r.length, 'ramRanges.length') };
    });
  }
  const top = toNumber(options.ramSize ?? 64n * BigInt(GIB), 'ramSize');
  if (top % 4096 !== 0 || top < 16 * 1024 * 1024) throw new RangeError('ramSize must be page aligned and at least 16 MiB');
  return defaultRamRanges(arch, top);
}

function toNumber(v: bigint | number, what: string): number {
  if (typeof v === 'bigint') {
    if (v < 0n || v > BigInt(TWO_POW_52)) throw new RangeError(`${what} out of range`);
    return Number(v);
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new TypeError(`${what} must be a non-negative integer`);
  return v;
}

function checkRange(r: IovaRange, what: string): IovaRange {
  if (r === null || typeof r !== 'object' || typeof r.start !== 'bigint' || typeof r.last !== 'bigint') {
    throw new TypeError(`${what}: expected { start: bigint, last: bigint }`);
  }
  if (r.start < 0n || r.last < r.start || r.last >= 1n << 64n) throw new RangeError(`${what}: bad range`);
  return { start: r.start, last: r.last };
}

function int(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`${what} must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
  return v;
}

/** A PCI function of the simulated machine. */
export class SimDevice {
  readonly bdf: string;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly classCode: number;
  readonly revision: number;
  readonly iommuGroup: number | null;
  readonly requesterId: number;
  readonly maxPasidLog2: number;
  readonly streamIds: readonly number[];
  /** Machine-wide plus device-specific reserved regions. */
  readonly reservedRegions: readonly IovaRange[];
  readonly driver: string | null;
  readonly usable: boolean;
  readonly whyNotUsable: string | undefined;
  readonly model: DeviceModel;
  availableDomainTypes: number;
  removed = false;
  /** Handle of the open device, 0 when closed. */
  handle = 0;
  /** Domain the RID is attached to. */
  domain: SimDomain | null = null;
  readonly pasids = new Map<number, SimDomain>();

  constructor(
    spec: SimDeviceSpec,
    ctx: {
      machineReserved: readonly IovaRange[];
      defaultDomainTypes: number;
      group: number;
      bar0Address: number;
      /** Another function shares this bus:device (header type bit 7 on function 0). */
      multifunction: boolean;
      eduHost: (dev: SimDevice) => EduHost;
    },
  ) {
    if (spec === null || typeof spec !== 'object') throw new TypeError('device spec must be an object');
    if (typeof spec.bdf !== 'string') throw new TypeError('device spec: bdf must be a string');
    const bdf = normalizeBdf(spec.bdf);
    if (bdf === null) throw new RangeError(`device spec: malformed BDF '${spec.bdf}'`);
    const p = parseBdf(bdf)!;
    const kind = spec.model ?? 'generic';
    if (kind !== 'edu' && kind !== 'generic') throw new RangeError(`device spec: unknown model '${String(kind)}'`);
    this.bdf = bdf;
    this.vendorId = int(spec.vendorId ?? (kind === 'edu' ? 0x1234 : GENERIC_VENDOR), 'vendorId', 0, 0xffff);
    this.deviceId = int(spec.deviceId ?? (kind === 'edu' ? 0x11e8 : GENERIC_DEVICE), 'deviceId', 0, 0xffff);
    this.classCode = int(spec.classCode ?? 0x00ff00, 'classCode', 0, 0xffffff);
    this.revision = int(spec.revision ?? 0x10, 'revision', 0, 0xff);
    this.iommuGroup = spec.iommuGroup === null ? null : int(spec.iommuGroup ?? ctx.group, 'iommuGroup', 0, 0x7fffffff);
    this.requesterId = (p.bus << 8) | (p.dev << 3) | p.fn;
    this.maxPasidLog2 = int(spec.maxPasidLog2 ?? 0, 'maxPasidLog2', 0, 20);
    this.streamIds = (spec.streamIds ?? [this.requesterId]).map((s) => int(s, 'streamId', 0, 0xffffffff));
    this.reservedRegions = [...ctx.machineReserved, ...(spec.reservedRegions ?? []).map((r) => checkRange(r, 'device reservedRegions'))];
    this.availableDomainTypes = int(spec.availableDomainTypes ?? ctx.defaultDomainTypes, 'availableDomainTypes', 0, 0xffff);
    this.driver = spec.driver === undefined ? 'sim' : spec.driver;
    const behind = this.iommuGroup !== null;
    this.usable = behind && spec.usable !== false;
    this.whyNotUsable = this.usable ? undefined : spec.whyNotUsable ?? (behind ? 'not bound to vfio-pci' : 'not behind an IOMMU');
    if (kind === 'edu') {
      const mask = spec.dmaMask ?? (1n << 28n) - 1n;
      if (typeof mask !== 'bigint' || mask < 0n || mask >= 1n << 64n) throw new RangeError('device spec: dmaMask must be a u64 bigint');
      this.model = new EduModel(ctx.eduHost(this), { bar0Address: ctx.bar0Address, dmaMask: mask, revision: this.revision });
    } else {
      this.model = new GenericModel({
        vendorId: this.vendorId,
        deviceId: this.deviceId,
        classCode: this.classCode,
        revision: this.revision,
        multifunction: ctx.multifunction,
        maxPasidLog2: this.maxPasidLog2,
      });
    }
    if (kind === 'edu' && (spec.vendorId !== undefined || spec.deviceId !== undefined)) {
      // the edu config space keeps QEMU's IDs unless told otherwise
      this.model.config.set(0x00, 2, this.vendorId);
      this.model.config.set(0x02, 2, this.deviceId);
    }
    if (kind === 'edu' && spec.classCode !== undefined) {
      this.model.config.set(0x09, 1, this.classCode & 0xff);
      this.model.config.set(0x0a, 1, (this.classCode >> 8) & 0xff);
      this.model.config.set(0x0b, 1, (this.classCode >> 16) & 0xff);
    }
  }

  info(): PciDeviceInfo {
    return {
      bdf: this.bdf,
      vendorId: this.vendorId,
      deviceId: this.deviceId,
      classCode: this.classCode,
      iommuGroup: this.iommuGroup,
      requesterId: this.requesterId,
      driver: this.driver,
      usable: this.usable,
      ...(this.whyNotUsable !== undefined ? { whyNotUsable: this.whyNotUsable } : {}),
      maxPasidLog2: this.maxPasidLog2,
    };
  }
}
