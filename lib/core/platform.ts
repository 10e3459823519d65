/**
 * IommuPlatform: the WDK semantics over one backend. Every member of DMA_IOMMU_INTERFACE_V1/V2/V3
 * is a method here with the WDK's parameter order (out-parameters returned), enforcing the rules
 * of ../shared/reference/windows-iommu-ddi.md §2 and §4.3 with their status codes, for every
 * backend alike. The WDK-shaped tables (lib/wdk/interface.ts) only bind these methods.
 */
import type { AllocateOptions, BackendFault, DeviceEvent, DeviceRegions, DomainGeometry, IommuBackend, PciDeviceInfo } from '../backend/contract.js';
import { IommuError } from '../errors.js';
import type { StatusName } from '../status.js';
import {
  DomainConfigurationArm64,
  DomainConfigurationX64,
  DomainTypeMax,
  DomainTypePassThrough,
  DomainTypeTranslate,
  DomainTypeTranslateS1,
  DomainTypeUnmanaged,
  FaultInformationArm64,
  FaultInformationX64,
  IommuDeviceCreationConfigTypeAcpi,
  IommuDeviceCreationConfigTypeDeviceId,
  IommuDeviceCreationConfigTypeNone,
  IommuDeviceCreationConfigTypePasid,
  IommuDmaLogicalAllocatorBuddy,
  IommuDmaLogicalAllocatorNone,
  MapPhysicalAddressTypeContiguousRange,
  PasidConfigTypeDefaultPasidOnly,
  PasidConfigTypePasidTaggedDma,
  PermissionFault,
  TranslationFault,
} from '../wdk/constants.js';
import type {
  DEVICE_FAULT_CONFIGURATION,
  DOMAIN_CONFIGURATION,
  FAULT_INFORMATION,
  INPUT_MAPPING_ELEMENT,
  IOMMU_DEVICE_CREATION_CONFIGURATION,
  IOMMU_DMA_DEVICE_INFORMATION,
  IOMMU_DMA_DOMAIN_CREATION_FLAGS,
  IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT,
  IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG,
  IOMMU_DMA_RESERVED_REGION,
  IOMMU_INTERFACE_STATE_CHANGE_CALLBACK,
  IOMMU_INTERFACE_STATE_CHANGE_FIELDS,
  IOMMU_MAP_PHYSICAL_ADDRESS,
  MDL,
} from '../wdk/types.js';
import { Claim, ClaimKind, type PageRange } from './iova-space.js';
import { PAGE, backendMap, backendUnmap, installClaim, pageBytes, removeClaim, unmapPages, type MapStatuses } from './mapping.js';
import {
  IommuDmaDevice,
  IommuDmaDomain,
  IommuDmaPasidDevice,
  LogicalAddressToken,
  PhysicalDeviceObject,
} from './objects.js';
import { DmaMemory, resolvePhysical } from './physical.js';
import {
  type AllocatorState,
  DeviceState,
  DomainState,
  PasidState,
  Registry,
  TokenState,
  fail,
  invalid,
  kernel,
  translate,
} from './state.js';
import { OrderedIndex } from './ordered-index.js';
import { alignedPage, exactNumber } from './u64.js';

const U64_MAX = (1n << 64n) - 1n;
const PAGE_MASK = PAGE - 1n;
const FAULT_LOG_LIMIT = 1000;

/** A fault as the platform recorded it (whether or not a handler was registered). */
export interface FaultRecord {
  readonly information: FAULT_INFORMATION;
  readonly delivered: boolean;
}

function optionalAddress(v: unknown, op: string, n: number, arg: string): bigint | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'bigint') throw invalid(op, n, arg, `must be a bigint or null (got ${typeof v})`);
  if (v < 0n || v > U64_MAX) throw invalid(op, n, arg, 'must be within 0..2^64-1');
  return v;
}

function checkPermissions(perms: unknown, op: string, n: number): number {
  if (typeof perms !== 'number' || !Number.isInteger(perms) || perms < 0 || perms > 0xffffffff) {
    throw invalid(op, n, 'Permissions', 'must be a ULONG (IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE)');
  }
  if ((perms & ~3) !== 0) {
    throw invalid(op, n, 'Permissions', `has reserved bits set (0x${perms.toString(16)}): only bit 0 (read) and bit 1 (write) are defined`);
  }
  return perms;
}

function hex(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}

export interface PlatformOptions {
  /** Called when a fault or state-change handler throws (default: process.emitWarning). */
  readonly onHandlerError?: (error: unknown, where: string) => void;
}

export class IommuPlatform {
  readonly backend: IommuBackend;
  readonly #reg = new Registry();
  readonly #pdos = new Map<string, PhysicalDeviceObject>();
  readonly #byPdo = new Map<PhysicalDeviceObject, DeviceState>();
  readonly #memory = new Set<DmaMemory>();
  readonly #faults: FaultRecord[] = [];
  readonly #faultWaiters = new Set<(r: FaultRecord) => void>();
  #unsubFault: (() => void) | null = null;
  #unsubDevice: (() => void) | null = null;
  #closed = false;
  readonly #onHandlerError: (error: unknown, where: string) => void;

  constructor(backend: IommuBackend, options: PlatformOptions = {}) {
    this.backend = backend;
    this.#onHandlerError =
      options.onHandlerError ??
      ((error, where) => process.emitWarning(`dma-iommu: ${where} threw: ${(error as Error)?.stack ?? String(error)}`));
    this.#unsubFault = backend.onFault((f) => this.#onFault(f));
    this.#unsubDevice = backend.onDeviceEvent((e) => this.#onDeviceEvent(e));
  }

  get closed(): boolean {
    return this.#closed;
  }

  #live(op: string): void {
    if (this.#closed) throw fail('STATUS_INVALID_DEVICE_REQUEST', op, 'the platform was closed');
  }

  // ==== platform services (not WDK members) ====================================================

  /** The PCI functions of the platform, as PDOs usable wherever the WDK takes one. */
  enumerateDevices(): PhysicalDeviceObject[] {
    this.#live('enumerateDevices');
    return this.backend.enumerateDevices().map((info) => this.#pdoFor(info));
  }

  #pdoFor(info: PciDeviceInfo): PhysicalDeviceObject {
    const prev = this.#pdos.get(info.bdf);
    if (prev && prev.usable === info.usable && prev.iommuGroup === info.iommuGroup && prev.driver === info.driver) return prev;
    const pdo = new PhysicalDeviceObject(info);
    // keep the identity of a PDO that has live state
    if (prev && this.#byPdo.has(prev)) return prev;
    this.#pdos.set(info.bdf, pdo);
    return pdo;
  }

  /** The PDO for a BDF ('0000:00:03.0' or '00:03.0'), or undefined. */
  findDevice(bdf: string): PhysicalDeviceObject | undefined {
    const full = /^[0-9a-f]{4}:/i.test(bdf) ? bdf.toLowerCase() : `0000:${bdf.toLowerCase()}`;
    return this.enumerateDevices().find((d) => d.bdf === full);
  }

  /** Allocate DMA-able memory (page-aligned, whole pages). */
  allocateDmaMemory(size: bigint | number, options: AllocateOptions = {}): DmaMemory {
    this.#live('allocateDmaMemory');
    const bytes = typeof size === 'number' && Number.isSafeInteger(size) ? BigInt(size) : size;
    if (typeof bytes !== 'bigint' || bytes <= 0n) throw new IommuError('STATUS_INVALID_PARAMETER_1', 'size must be a positive bigint or safe integer', { operation: 'allocateDmaMemory', argument: 'size' });
    const rounded = (bytes + PAGE_MASK) & ~PAGE_MASK;
    const mem = kernel('allocateDmaMemory', () => this.backend.allocateMemory(rounded, options));
    const dm = new DmaMemory(mem);
    this.#memory.add(dm);
    return dm;
  }

  /** PCI config space and BAR access of a created device, for drivers written in JS. */
  deviceRegions(device: IommuDmaDevice): DeviceRegions {
    const d = this.#reg.device(device, 'deviceRegions', 1);
    return kernel('deviceRegions', () => this.backend.deviceRegions(d.id));
  }

  /**
   * The domain's usable IOVA ranges, alignment and page sizes as of now (they narrow once a device
   * is attached: aperture minus reserved regions such as the x86 MSI window).
   */
  geometry(domain: IommuDmaDomain): DomainGeometry {
    const dom = this.#reg.domain(domain, 'geometry', 1);
    return kernel('geometry', () => dom.geometry().geometry);
  }

  /** Every fault seen (most recent last; bounded). */
  faults(): readonly FaultRecord[] {
    return this.#faults.slice();
  }

  /** Resolve with the next fault for `bdf` (or any), or reject after `timeoutMs`. */
  waitForFault(filter: { bdf?: string; iova?: bigint } = {}, timeoutMs = 5000): Promise<FaultRecord> {
    return new Promise((resolve, reject) => {
      const waiter = (r: FaultRecord): void => {
        const d = r.information.Details;
        if (filter.bdf && d.bdf !== filter.bdf) return;
        if (filter.iova !== undefined && faultAddress(r.information) !== filter.iova) return;
        clearTimeout(timer);
        this.#faultWaiters.delete(waiter);
        resolve(r);
      };
      const timer = setTimeout(() => {
        this.#faultWaiters.delete(waiter);
        reject(new IommuError('STATUS_TIMEOUT', `no DMA fault${filter.bdf ? ` from ${filter.bdf}` : ''} within ${timeoutMs} ms`, { operation: 'waitForFault' }));
      }, timeoutMs);
      this.#faultWaiters.add(waiter);
    });
  }

  // ==== devices ================================================================================

  #pdo(pdo: unknown, op: string, n: number): PhysicalDeviceObject {
    if (!(pdo instanceof PhysicalDeviceObject)) throw invalid(op, n, 'PhysicalDeviceObject', 'is not a device object from enumerateDevices()');
    if (this.#pdos.get(pdo.bdf) !== pdo && !this.#byPdo.has(pdo)) {
      throw invalid(op, n, 'PhysicalDeviceObject', 'belongs to another platform (or is stale: enumerate again)');
    }
    return pdo;
  }

  #openDevice(pdo: PhysicalDeviceObject, op: string, tagged: boolean, suppress: boolean): DeviceState {
    if (pdo.iommuGroup === null) {
      throw fail('STATUS_NOT_FOUND', op, `${pdo.bdf} is not behind an IOMMU (no IOMMU group)`, 'PhysicalDeviceObject');
    }
    if (this.#byPdo.has(pdo)) {
      throw fail('STATUS_DEVICE_BUSY', op, `${pdo.bdf} already has an IOMMU_DMA_DEVICE on this platform: DeleteDevice it first`, 'PhysicalDeviceObject');
    }
    const id = kernel(op, () => this.backend.openDevice(pdo.bdf), {
      ENOENT: 'STATUS_NOT_FOUND',
      ENODEV: 'STATUS_NOT_FOUND',
      EBUSY: 'STATUS_DEVICE_BUSY',
      EPERM: 'STATUS_ACCESS_DENIED',
      EACCES: 'STATUS_ACCESS_DENIED',
    }, pdo.whyNotUsable ? { message: `cannot open ${pdo.bdf}: ${pdo.whyNotUsable}` } : {});
    const handle = new IommuDmaDevice(pdo);
    const state = new DeviceState(handle, pdo, id, tagged, suppress);
    this.#reg.devices.set(handle, state);
    this.#reg.liveDevices.add(state);
    this.#byPdo.set(pdo, state);
    return state;
  }

  /** IOMMU_DEVICE_CREATE. */
  CreateDevice(DeviceObject: PhysicalDeviceObject, DeviceConfig?: IOMMU_DEVICE_CREATION_CONFIGURATION | readonly IOMMU_DEVICE_CREATION_CONFIGURATION[] | null): IommuDmaDevice {
    const op = 'CreateDevice';
    this.#live(op);
    const pdo = this.#pdo(DeviceObject, op, 1);
    let tagged = false;
    let suppress = false;
    const configs: IOMMU_DEVICE_CREATION_CONFIGURATION[] = [];
    if (Array.isArray(DeviceConfig)) configs.push(...DeviceConfig);
    else if (DeviceConfig) {
      const seen = new Set<unknown>();
      for (let c: IOMMU_DEVICE_CREATION_CONFIGURATION | null | undefined = DeviceConfig as IOMMU_DEVICE_CREATION_CONFIGURATION; c; c = c.NextConfiguration) {
        if (seen.has(c)) throw invalid(op, 2, 'DeviceConfig', 'configuration list is circular');
        seen.add(c);
        configs.push(c);
      }
    }
    const arch = this.backend.capabilities.arch;
    for (const c of configs) {
      if (!c || typeof c !== 'object') throw invalid(op, 2, 'DeviceConfig', 'entries must be IOMMU_DEVICE_CREATION_CONFIGURATION objects');
      switch (c.ConfigType) {
        case IommuDeviceCreationConfigTypeNone:
          break;
        case IommuDeviceCreationConfigTypeAcpi:
          if (arch !== 'arm64') throw invalid(op, 2, 'DeviceConfig', 'ACPI configurations are for ACPI-enumerated Arm64 devices only; this platform is x86_64 PCI');
          throw invalid(op, 2, 'DeviceConfig', 'ACPI configurations are for ACPI-enumerated devices; this device is PCI');
        case IommuDeviceCreationConfigTypeDeviceId:
          throw invalid(op, 2, 'DeviceConfig', 'IommuDeviceCreationConfigTypeDeviceId is undocumented and not supported');
        case IommuDeviceCreationConfigTypePasid: {
          const p = c.Pasid;
          if (!p || (p.ConfigType !== PasidConfigTypeDefaultPasidOnly && p.ConfigType !== PasidConfigTypePasidTaggedDma)) {
            throw invalid(op, 2, 'DeviceConfig', 'Pasid.ConfigType must be PasidConfigTypeDefaultPasidOnly or PasidConfigTypePasidTaggedDma');
          }
          if (p.ConfigType === PasidConfigTypePasidTaggedDma) {
            if (pdo.maxPasidLog2 === 0 || !this.backend.capabilities.pasid) {
              throw invalid(op, 2, 'DeviceConfig', `${pdo.bdf} has no PASID capability: PASID-tagged DMA cannot be enabled`);
            }
            tagged = true;
          }
          suppress = !!p.SuppressPasidFaults;
          break;
        }
        default:
          throw invalid(op, 2, 'DeviceConfig', `has an invalid ConfigType ${String(c.ConfigType)}`);
      }
    }
    const implicit = this.#byPdo.get(pdo);
    if (implicit?.implicit && !tagged) {
      // a V1 member opened it first: the V2 device object is that same device
      implicit.implicit = false;
      return implicit.handle;
    }
    return this.#openDevice(pdo, op, tagged, suppress).handle;
  }

  /** IOMMU_DEVICE_DELETE. */
  DeleteDevice(DmaDevice: IommuDmaDevice): void {
    const op = 'DeleteDevice';
    this.#live(op);
    const d = this.#reg.device(DmaDevice, op, 1);
    if (d.domain) throw fail('STATUS_RESOURCE_IN_USE', op, `${d.pdo.bdf} is still attached to a domain: DetachDeviceEx first`);
    if (d.pasids.size > 0) throw fail('STATUS_RESOURCE_IN_USE', op, `${d.pdo.bdf} still has ${d.pasids.size} PASID device(s): DeletePasidDevice first`);
    if (d.callback) throw fail('STATUS_RESOURCE_IN_USE', op, `${d.pdo.bdf} still has an interface state-change callback: UnregisterInterfaceStateChangeCallback first`);
    this.#closeDevice(d);
  }

  #closeDevice(d: DeviceState): void {
    try {
      this.backend.closeDevice(d.id);
    } finally {
      d.deleted = true;
      d.fault = null;
      this.#reg.liveDevices.delete(d);
      this.#byPdo.delete(d.pdo);
    }
  }

  /** IOMMU_DEVICE_QUERY_DOMAIN_TYPES: the mask of 1 << IOMMU_DMA_DOMAIN_TYPE (VOID in the WDK; returned here). */
  QueryAvailableDomainTypes(DmaDevice: IommuDmaDevice): number {
    const op = 'QueryAvailableDomainTypes';
    this.#live(op);
    const d = this.#reg.device(DmaDevice, op, 1);
    if (d.removed) return 0;
    const mask = kernel(op, () => this.backend.availableDomainTypes(d.id), { ENODEV: 'STATUS_DEVICE_REMOVED' });
    return mask & this.backend.capabilities.domainTypes;
  }

  /** IOMMU_DEVICE_QUERY_INFORMATION. `Size` is the caller's buffer size (≥ 3 bytes). */
  QueryDeviceInfo(DmaDevice: IommuDmaDevice, Size = 3): IOMMU_DMA_DEVICE_INFORMATION {
    const op = 'QueryDeviceInfo';
    this.#live(op);
    const d = this.#reg.device(DmaDevice, op, 1);
    if (typeof Size !== 'number' || !Number.isInteger(Size) || Size < 0) throw invalid(op, 2, 'Size', 'must be a non-negative integer');
    if (Size < 3) throw fail('STATUS_BUFFER_TOO_SMALL', op, `Size ${Size} is below sizeof(IOMMU_DMA_DEVICE_INFORMATION) = 3`, 'Size');
    return {
      DefaultPasidEnabled: true,
      PasidTaggedDmaEnabled: d.pasidTagged,
      PasidFaultsSuppressed: d.pasidTagged && d.suppressPasidFaults,
    };
  }

  // ==== domains ================================================================================

  /** IOMMU_DOMAIN_CREATE_EX. */
  CreateDomainEx(
    DomainType: number,
    Flags: IOMMU_DMA_DOMAIN_CREATION_FLAGS = 0n,
    LogicalAllocatorConfig?: IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG | null,
    ReservedRegions?: IOMMU_DMA_RESERVED_REGION | readonly IOMMU_DMA_RESERVED_REGION[] | null,
  ): IommuDmaDomain {
    const op = 'CreateDomainEx';
    this.#live(op);
    if (typeof DomainType !== 'number' || !Number.isInteger(DomainType) || DomainType < 0 || DomainType >= DomainTypeMax) {
      throw invalid(op, 1, 'DomainType', `must be an IOMMU_DMA_DOMAIN_TYPE 0..${DomainTypeMax - 1} (got ${String(DomainType)})`);
    }
    const flags = typeof Flags === 'object' && Flags !== null ? Flags.AsUlonglong : Flags;
    if ((typeof flags !== 'bigint' && typeof flags !== 'number') || BigInt(flags) !== 0n) {
      throw invalid(op, 2, 'Flags', 'IOMMU_DMA_DOMAIN_CREATION_FLAGS are all reserved and must be 0');
    }
    const kind = this.#domainKind(DomainType, op);
    let allocator: AllocatorState | null = null;
    if (LogicalAllocatorConfig) {
      const t = LogicalAllocatorConfig.LogicalAllocatorType;
      if (t === IommuDmaLogicalAllocatorBuddy) {
        const w = LogicalAllocatorConfig.BuddyAllocatorConfig?.AddressWidth;
        if (typeof w !== 'number' || !Number.isInteger(w) || w < 13 || w > 63) {
          throw invalid(op, 3, 'LogicalAllocatorConfig', 'BuddyAllocatorConfig.AddressWidth must be 13..63 bits');
        }
        if (DomainType !== DomainTypeTranslate) throw invalid(op, 3, 'LogicalAllocatorConfig', 'a logical allocator applies to DomainTypeTranslate domains only');
        allocator = { addressWidth: w, maxPage: Number(((1n << BigInt(w)) >> 12n) - 1n) };
      } else if (t !== IommuDmaLogicalAllocatorNone) {
        throw invalid(op, 3, 'LogicalAllocatorConfig', `LogicalAllocatorType ${String(t)} is not IommuDmaLogicalAllocatorNone (0) or IommuDmaLogicalAllocatorBuddy (1)`);
      }
    }
    const regions = this.#reservedRegions(ReservedRegions, op);
    const id = kernel(op, () => this.backend.allocDomain(kind), { EOPNOTSUPP: 'STATUS_NOT_SUPPORTED', ENOMEM: 'STATUS_INSUFFICIENT_RESOURCES' });
    const handle = new IommuDmaDomain();
    const dom = new DomainState(handle, id, DomainType, kind, allocator, this.backend);
    try {
      for (const r of regions) {
        const start = Number(r.base >> 12n);
        if (dom.space.conflict(start, r.pages)) throw invalid(op, 4, 'ReservedRegions', `regions overlap at ${hex(r.base)}`);
        if (r.map) {
          installClaim(dom, op, start, r.pages, [{ pa: r.base, length: BigInt(r.pages) * PAGE }], 3, ClaimKind.Reserved, {
            address: 'STATUS_INVALID_PARAMETER_4',
            physical: 'STATUS_INVALID_PARAMETER_4',
            overlap: 'STATUS_INVALID_PARAMETER_4',
          });
        } else dom.space.insert(new Claim(start, r.pages, ClaimKind.Reserved, 0, -1, null, false));
      }
    } catch (e) {
      try {
        this.backend.freeDomain(id);
      } catch {
        /* the domain was never handed out */
      }
      throw e;
    }
    this.#reg.domains.set(handle, dom);
    this.#reg.liveDomains.add(dom);
    return handle;
  }

  #domainKind(type: number, op: string): 'translate' | 'passthrough' | 'unmanaged' {
    const caps = this.backend.capabilities;
    const need = (bit: number, what: string): void => {
      if ((caps.domainTypes & (1 << bit)) === 0) throw fail('STATUS_NOT_SUPPORTED', op, `${what} domains are not available on the ${this.backend.kind} backend`, 'DomainType');
    };
    switch (type) {
      case DomainTypeTranslate:
        need(type, 'DomainTypeTranslate');
        return 'translate';
      case DomainTypePassThrough:
        need(type, 'DomainTypePassThrough');
        return 'passthrough';
      case DomainTypeUnmanaged:
        need(type, 'DomainTypeUnmanaged (caller-owned page tables)');
        return 'unmanaged';
      case DomainTypeTranslateS1:
      default:
        throw fail('STATUS_NOT_SUPPORTED', op, 'DomainTypeTranslateS1 has no documented semantics and is not supported', 'DomainType');
    }
  }

  #reservedRegions(list: IOMMU_DMA_RESERVED_REGION | readonly IOMMU_DMA_RESERVED_REGION[] | null | undefined, op: string): Array<{ base: bigint; pages: number; map: boolean }> {
    const out: Array<{ base: bigint; pages: number; map: boolean }> = [];
    if (!list) return out;
    const items: IOMMU_DMA_RESERVED_REGION[] = [];
    if (Array.isArray(list)) items.push(...list);
    else {
      const seen = new Set<unknown>();
      for (let r: IOMMU_DMA_RESERVED_REGION | null | undefined = list as IOMMU_DMA_RESERVED_REGION; r; r = r.RegionNext) {
        if (seen.has(r)) throw invalid(op, 4, 'ReservedRegions', 'list is circular');
        seen.add(r);
        items.push(r);
      }
    }
    for (const r of items) {
      if (!r || typeof r.Base !== 'bigint') throw invalid(op, 4, 'ReservedRegions', 'each region needs a bigint Base');
      if ((r.Base & PAGE_MASK) !== 0n) throw invalid(op, 4, 'ReservedRegions', `Base ${hex(r.Base)} is not page-aligned`);
      const n = typeof r.NumberOfPages === 'bigint' ? r.NumberOfPages : BigInt(Number.isSafeInteger(r.NumberOfPages) ? r.NumberOfPages : -1);
      if (n <= 0n) throw invalid(op, 4, 'ReservedRegions', 'NumberOfPages must be a positive integer');
      if (r.Base + n * PAGE - 1n > U64_MAX) throw invalid(op, 4, 'ReservedRegions', `region at ${hex(r.Base)} wraps past 2^64`);
      out.push({ base: r.Base, pages: Number(n), map: !!r.ShouldMap });
    }
    return out;
  }

  /** IOMMU_DOMAIN_CREATE (V1): OsManagedPageTable TRUE → Translate; FALSE → caller-owned (Unmanaged). */
  CreateDomain(OsManagedPageTable: boolean): IommuDmaDomain {
    if (typeof OsManagedPageTable !== 'boolean') throw invalid('CreateDomain', 1, 'OsManagedPageTable', 'must be a boolean');
    return this.CreateDomainEx(OsManagedPageTable ? DomainTypeTranslate : DomainTypeUnmanaged, 0n, null, null);
  }

  /** IOMMU_DOMAIN_DELETE. */
  DeleteDomain(Domain: IommuDmaDomain): void {
    const op = 'DeleteDomain';
    this.#live(op);
    const dom = this.#reg.domain(Domain, op, 1);
    if (dom.devices.size > 0 || dom.pasids.size > 0) {
      throw fail('STATUS_RESOURCE_IN_USE', op, `the domain still has ${dom.devices.size + dom.pasids.size} device(s) attached: detach them first`);
    }
    if (dom.tokens.size > 0) {
      throw fail('STATUS_RESOURCE_IN_USE', op, `the domain still has ${dom.tokens.size} logical address token(s): FreeReservedLogicalAddressRange first`);
    }
    kernel(op, () => this.backend.freeDomain(dom.id), { EBUSY: 'STATUS_RESOURCE_IN_USE' });
    dom.deleted = true;
    if (this.#lastDomainState === dom) {
      this.#lastDomain = null;
      this.#lastDomainState = null;
    }
    this.#reg.liveDomains.delete(dom);
  }

  /** IOMMU_DOMAIN_ATTACH_DEVICE_EX. */
  AttachDeviceEx(Domain: IommuDmaDomain, DmaDevice: IommuDmaDevice): void {
    const op = 'AttachDeviceEx';
    this.#live(op);
    const dom = this.#reg.domain(Domain, op, 1);
    const d = this.#reg.device(DmaDevice, op, 2);
    this.#attach(dom, d, op);
  }

  #attach(dom: DomainState, d: DeviceState, op: string): void {
    if (d.domain) {
      throw fail('STATUS_INVALID_PARAMETER', op, `${d.pdo.bdf} is already attached to a domain (${d.domain === dom ? 'this one' : 'another one'}): DetachDeviceEx first`, 'DmaDevice');
    }
    if (d.removed) throw fail('STATUS_DEVICE_REMOVED', op, `${d.pdo.bdf} was removed`, 'DmaDevice');
    const avail = this.QueryAvailableDomainTypes(d.handle);
    if ((avail & (1 << dom.wdkType)) === 0) {
      throw fail('STATUS_ACCESS_DENIED', op, `${d.pdo.bdf} may not attach to this domain type now (available mask 0x${avail.toString(16)}); see QueryAvailableDomainTypes`, 'DmaDevice');
    }
    kernel(op, () => this.backend.attach(dom.id, d.id), {
      EINVAL: 'STATUS_ACCESS_DENIED',
      EADDRINUSE: 'STATUS_IN_USE',
      ENODEV: 'STATUS_DEVICE_REMOVED',
      ENOSPC: 'STATUS_INSUFFICIENT_RESOURCES',
    });
    d.domain = dom;
    dom.devices.add(d);
    dom.invalidateGeometry();
  }

  /** IOMMU_DOMAIN_DETACH_DEVICE_EX. */
  DetachDeviceEx(DmaDevice: IommuDmaDevice): void {
    const op = 'DetachDeviceEx';
    this.#live(op);
    const d = this.#reg.device(DmaDevice, op, 1);
    this.#detach(d, op, 1);
  }

  #detach(d: DeviceState, op: string, n: number): void {
    const dom = d.domain;
    if (!dom) throw invalid(op, n, 'DmaDevice', `${d.pdo.bdf} is not attached to any domain`);
    kernel(op, () => this.backend.detach(d.id), { ENODEV: 'STATUS_DEVICE_REMOVED' });
    d.domain = null;
    d.fault = null;
    dom.devices.delete(d);
    dom.invalidateGeometry();
  }

  /** The device state for a PDO in the V1 members: created on first use. */
  #v1Device(pdo: PhysicalDeviceObject, op: string): DeviceState {
    const existing = this.#byPdo.get(pdo);
    if (existing) return existing;
    const d = this.#openDevice(pdo, op, false, false);
    d.implicit = true;
    return d;
  }

  #checkInputMapping(v: unknown, expect: number, op: string, n: number, arg: string): void {
    if (v !== expect) {
      throw invalid(op, n, arg, `must be ${expect} for ${this.backend.capabilities.arch === 'arm64' ? 'PCI devices' : 'x86 devices'} (input-mapping IDs are for ACPI-enumerated Arm64 devices)`);
    }
  }

  /** IOMMU_DOMAIN_ATTACH_DEVICE (V1). */
  AttachDevice(Domain: IommuDmaDomain, PhysicalDeviceObject: PhysicalDeviceObject, InputMappingIdBase = 0, MappingCount = 1): void {
    const op = 'AttachDevice';
    this.#live(op);
    const dom = this.#reg.domain(Domain, op, 1);
    const pdo = this.#pdo(PhysicalDeviceObject, op, 2);
    this.#checkInputMapping(InputMappingIdBase, 0, op, 3, 'InputMappingIdBase');
    this.#checkInputMapping(MappingCount, 1, op, 4, 'MappingCount');
    this.#attach(dom, this.#v1Device(pdo, op), op);
  }

  /** IOMMU_DOMAIN_DETACH_DEVICE (V1). */
  DetachDevice(Domain: IommuDmaDomain, PhysicalDeviceObject: PhysicalDeviceObject, InputMappingId = 0): void {
    const op = 'DetachDevice';
    this.#live(op);
    const dom = this.#reg.domain(Domain, op, 1);
    const pdo = this.#pdo(PhysicalDeviceObject, op, 2);
    this.#checkInputMapping(InputMappingId, 0, op, 3, 'InputMappingId');
    const d = this.#byPdo.get(pdo);
    if (!d || d.domain !== dom) throw invalid(op, 2, 'PhysicalDeviceObject', `${pdo.bdf} is not attached to this domain`);
    this.#detach(d, op, 2);
  }

  // ==== caller-owned page tables ===============================================================

  #unmanaged(Domain: IommuDmaDomain, op: string): DomainState {
    const dom = this.#reg.domain(Domain, op, 1);
    if (dom.kind !== 'unmanaged') throw invalid(op, 1, 'Domain', 'is not a caller-owned (DomainTypeUnmanaged / OsManagedPageTable = FALSE) domain');
    return dom;
  }

  /** IOMMU_DOMAIN_CONFIGURE. */
  ConfigureDomain(Domain: IommuDmaDomain, Configuration: DOMAIN_CONFIGURATION): void {
    const op = 'ConfigureDomain';
    this.#live(op);
    const dom = this.#unmanaged(Domain, op);
    if (!Configuration || typeof Configuration !== 'object') throw invalid(op, 2, 'Configuration', 'must be a DOMAIN_CONFIGURATION');
    if (Configuration.Type === DomainConfigurationX64) throw fail('STATUS_NOT_SUPPORTED', op, 'DomainConfigurationX64 is reserved for the system', 'Configuration');
    if (Configuration.Type !== DomainConfigurationArm64) throw invalid(op, 2, 'Configuration', `Type ${String(Configuration.Type)} is not DomainConfigurationArm64`);
    const a = Configuration.Arm64;
    if (!a || typeof a.Ttbr0 !== 'bigint' || typeof a.Ttbr1 !== 'bigint') throw invalid(op, 2, 'Configuration', 'Arm64 needs bigint Ttbr0 and Ttbr1');
    if ((a.Ttbr0 & PAGE_MASK) !== 0n || (a.Ttbr1 & PAGE_MASK) !== 0n) throw invalid(op, 2, 'Configuration', 'Ttbr0/Ttbr1 must be page-aligned table addresses');
    for (const k of ['InputSize0', 'InputSize1'] as const) {
      const v = a[k];
      if (!Number.isInteger(v) || v < 0 || v > 48) throw invalid(op, 2, 'Configuration', `Arm64.${k} must be 0..48 bits`);
    }
    kernel(op, () =>
      this.backend.configureDomain(dom.id, {
        ttbr0: a.Ttbr0,
        ttbr1: a.Ttbr1,
        mair0: a.Mair0 >>> 0,
        mair1: a.Mair1 >>> 0,
        inputSize0: a.InputSize0,
        inputSize1: a.InputSize1,
        coherentTableWalks: !!a.CoherentTableWalks,
        translationEnabled: !!a.TranslationEnabled,
      }),
    );
    dom.configured = true;
  }

  /** IOMMU_FLUSH_DOMAIN. */
  FlushDomain(Domain: IommuDmaDomain): void {
    const op = 'FlushDomain';
    this.#live(op);
    const dom = this.#unmanaged(Domain, op);
    kernel(op, () => this.backend.flushDomain(dom.id));
  }

  /** IOMMU_FLUSH_DOMAIN_VA_LIST. `VaList`: the addresses (bigint) to invalidate. */
  FlushDomainByVaList(Domain: IommuDmaDomain, LastLevel: boolean, Number_: number, VaList: readonly bigint[] | BigUint64Array): void {
    const op = 'FlushDomainByVaList';
    this.#live(op);
    const dom = this.#unmanaged(Domain, op);
    if (typeof LastLevel !== 'boolean') throw invalid(op, 2, 'LastLevel', 'must be a boolean');
    if (!Number.isInteger(Number_) || Number_ < 0) throw invalid(op, 3, 'Number', 'must be a non-negative integer');
    if (!(VaList instanceof BigUint64Array) && !Array.isArray(VaList)) throw invalid(op, 4, 'VaList', 'must be an array of bigint addresses');
    if (VaList.length < Number_) throw invalid(op, 4, 'VaList', `holds ${VaList.length} entries, fewer than Number (${Number_})`);
    const list: bigint[] = [];
    for (let i = 0; i < Number_; i++) {
      const v = VaList[i];
      if (typeof v !== 'bigint') throw invalid(op, 4, 'VaList', `entry ${i} is not a bigint`);
      list.push(v);
    }
    kernel(op, () => this.backend.flushDomain(dom.id, list, LastLevel));
  }

  /** IOMMU_QUERY_INPUT_MAPPINGS: returns { Buffer, ReturnLength }; BufferLength counts elements. */
  QueryInputMappings(PhysicalDeviceObject: PhysicalDeviceObject, BufferLength?: number): { Buffer: INPUT_MAPPING_ELEMENT[]; ReturnLength: number } {
    const op = 'QueryInputMappings';
    this.#live(op);
    const pdo = this.#pdo(PhysicalDeviceObject, op, 1);
    if (this.backend.capabilities.arch !== 'arm64') {
      throw fail('STATUS_NOT_SUPPORTED', op, 'input-mapping (stream) IDs exist on Arm64 only; this platform is x86_64');
    }
    const existing = this.#byPdo.get(pdo);
    const d = existing ?? this.#openDevice(pdo, op, false, false);
    let ids: number[];
    try {
      ids = kernel(op, () => this.backend.inputMappingIds(d.id));
    } finally {
      if (!existing) this.#closeDevice(d);
    }
    if (BufferLength !== undefined) {
      if (!Number.isInteger(BufferLength) || BufferLength < 0) throw invalid(op, 3, 'BufferLength', 'must be a non-negative integer (elements)');
      if (BufferLength < ids.length) {
        const e = fail('STATUS_BUFFER_TOO_SMALL', op, `BufferLength ${BufferLength} < ${ids.length} input mappings`, 'BufferLength');
        Object.defineProperty(e, 'ReturnLength', { value: ids.length, enumerable: true });
        throw e;
      }
    }
    return { Buffer: ids.map((InputMappingId) => ({ InputMappingId })), ReturnLength: ids.length };
  }

  // ==== logical mappings =======================================================================

  /** The last domain looked up by the map/unmap members (handles are never reused). */
  #lastDomain: IommuDmaDomain | null = null;
  #lastDomainState: DomainState | null = null;

  /** `#reg.domain(Domain, op, 1)`, with a one-entry cache for the map/unmap hot paths. */
  #domain(Domain: IommuDmaDomain, op: string): DomainState {
    const cached = this.#lastDomainState;
    if (Domain === this.#lastDomain && cached !== null && !cached.deleted) return cached;
    const dom = this.#reg.domain(Domain, op, 1);
    this.#lastDomain = Domain;
    this.#lastDomainState = dom;
    return dom;
  }

  #translate(Domain: IommuDmaDomain, op: string): DomainState {
    const dom = this.#domain(Domain, op);
    if (dom.kind !== 'translate') throw invalid(op, 1, 'Domain', 'is not a DomainTypeTranslate domain');
    return dom;
  }

  /**
   * Choose or check the logical address of a new claim of `pages` pages.
   * `nAddr` is the position of the explicit address (its misalignment status).
   */
  #placeLogical(
    dom: DomainState,
    op: string,
    pages: number,
    explicit: bigint | undefined,
    min: bigint | undefined,
    max: bigint | undefined,
    nAddr: number,
    overlap: 'STATUS_IN_USE' | 'STATUS_RESOURCE_IN_USE',
  ): number {
    const length = BigInt(pages) * PAGE;
    if (dom.allocator) {
      if (explicit !== undefined) {
        throw fail('STATUS_NOT_SUPPORTED', op, 'this domain has a Buddy logical allocator, which does not accept an ExplicitLogicalAddress', 'ExplicitLogicalAddress');
      }
      const lo = min === undefined ? 1 : Math.max(1, Number((min + PAGE_MASK) >> 12n));
      const hi = Math.min(dom.allocator.maxPage, max === undefined ? Number.MAX_SAFE_INTEGER : Number(((max + 1n) >> 12n) - 1n));
      if (min !== undefined && max !== undefined && min > max) {
        throw fail('STATUS_INVALID_PARAMETER_MIX', op, `MinLogicalAddress ${hex(min)} > MaxLogicalAddress ${hex(max)}`);
      }
      let align = 1;
      while (align < pages) align *= 2;
      const p = dom.space.allocate(pages, align, lo, hi, dom.geometry().pages);
      if (p < 0) {
        if (min !== undefined || max !== undefined) {
          throw fail('STATUS_INVALID_PARAMETER_MIX', op, `no free ${hex(length)}-byte range aligned to ${hex(BigInt(align) * PAGE)} between ${hex(BigInt(lo) * PAGE)} and ${hex(BigInt(hi + 1) * PAGE - 1n)}`);
        }
        throw fail('STATUS_INSUFFICIENT_RESOURCES', op, `logical address space exhausted: no free ${hex(length)}-byte range within ${dom.allocator.addressWidth} bits`);
      }
      return p;
    }
    if (explicit === undefined) {
      throw fail('STATUS_NOT_SUPPORTED', op, 'this domain has no logical allocator: an ExplicitLogicalAddress is required', 'ExplicitLogicalAddress');
    }
    if ((explicit & PAGE_MASK) !== 0n) throw invalid(op, nAddr, 'ExplicitLogicalAddress', `${hex(explicit)} is not page-aligned`);
    if (explicit + length - 1n > U64_MAX) throw invalid(op, nAddr, 'ExplicitLogicalAddress', `${hex(explicit)} + ${hex(length)} wraps past 2^64`);
    const start = Number(explicit >> 12n);
    this.#checkUsable(dom, op, start, pages, nAddr, 'ExplicitLogicalAddress');
    const c = dom.space.conflict(start, pages);
    if (c) throw fail(overlap, op, `${hex(explicit)}+${hex(length)} overlaps ${claimName(c)} at ${hex(BigInt(c.start) * PAGE)}+${hex(BigInt(c.pages) * PAGE)}`, 'ExplicitLogicalAddress');
    return start;
  }

  #checkUsable(dom: DomainState, op: string, start: number, pages: number, n: number, arg: string): void {
    const last = start + pages - 1;
    const ranges = dom.geometry().pages;
    if (!ranges.some((r) => r.start <= start && r.last >= last)) {
      const g = dom.geometry().geometry.ranges.map((r) => `${hex(r.start)}-${hex(r.last)}`).join(', ');
      throw invalid(op, n, arg, `range ${hex(BigInt(start) * PAGE)}+${hex(BigInt(pages) * PAGE)} is outside the domain's usable IOVA ranges (${g})`);
    }
  }

  /** IOMMU_MAP_LOGICAL_RANGE_EX: returns LogicalAddressOut. */
  MapLogicalRangeEx(
    Domain: IommuDmaDomain,
    Permissions: number,
    PhysicalAddressToMap: IOMMU_MAP_PHYSICAL_ADDRESS,
    ExplicitLogicalAddress?: bigint | null,
    MinLogicalAddress?: bigint | null,
    MaxLogicalAddress?: bigint | null,
  ): bigint {
    const op = 'MapLogicalRangeEx';
    this.#live(op);
    const dom = this.#translate(Domain, op);
    // Fast path: a valid explicit-address map of one contiguous range, all in exact numbers. Any
    // doubt falls through to the general path below, which checks (and fails) in the WDK's order.
    if (
      dom.allocator === null &&
      (Permissions === 3 || Permissions === 1 || Permissions === 2) &&
      typeof ExplicitLogicalAddress === 'bigint' &&
      (MinLogicalAddress === undefined || MinLogicalAddress === null) &&
      (MaxLogicalAddress === undefined || MaxLogicalAddress === null) &&
      PhysicalAddressToMap !== null &&
      typeof PhysicalAddressToMap === 'object' &&
      PhysicalAddressToMap.MapType === MapPhysicalAddressTypeContiguousRange
    ) {
      const r = (PhysicalAddressToMap as { ContiguousRange?: { Base: unknown; Size: unknown } }).ContiguousRange;
      const Base = r?.Base;
      const Size = r?.Size;
      if (typeof Base === 'bigint' && typeof Size === 'bigint') {
        // page numbers (int32: addresses below 8 TiB, page-aligned), or -1
        const pfn = alignedPage(Base);
        const pages = alignedPage(Size);
        const start = alignedPage(ExplicitLogicalAddress);
        if (pfn >= 0 && pages > 0 && start >= 0 && usable(dom.geometry().pages, start, pages) && dom.space.conflict(start, pages) === undefined) {
          backendMap(dom, op, ExplicitLogicalAddress, [{ pa: Base, length: Size }], Permissions, pages, MAP_EX);
          dom.space.insert(new Claim(start, pages, ClaimKind.Logical, Permissions, pfn, null, true));
          return ExplicitLogicalAddress;
        }
      }
    }
    const perms = checkPermissions(Permissions, op, 2);
    const phys = resolvePhysical(PhysicalAddressToMap, 'STATUS_INVALID_PARAMETER_3', op, 'PhysicalAddressToMap');
    const explicit = optionalAddress(ExplicitLogicalAddress, op, 4, 'ExplicitLogicalAddress');
    const min = optionalAddress(MinLogicalAddress, op, 5, 'MinLogicalAddress');
    const max = optionalAddress(MaxLogicalAddress, op, 6, 'MaxLogicalAddress');
    const pages = Number(phys.length >> 12n);
    const start = this.#placeLogical(dom, op, pages, explicit, min, max, 4, 'STATUS_IN_USE');
    installClaim(dom, op, start, pages, phys.runs, perms, ClaimKind.Logical, MAP_EX);
    return BigInt(start) * PAGE;
  }

  /** IOMMU_MAP_LOGICAL_RANGE (V1): map an MDL at LogicalAddress. */
  MapLogicalRange(Domain: IommuDmaDomain, Permissions: number, Mdl: MDL, LogicalAddress: bigint): void {
    const op = 'MapLogicalRange';
    this.#live(op);
    const dom = this.#translate(Domain, op);
    const perms = checkPermissions(Permissions, op, 2);
    const phys = resolvePhysical(Mdl, 'STATUS_INVALID_PARAMETER_3', op, 'Mdl');
    if (typeof LogicalAddress !== 'bigint') throw invalid(op, 4, 'LogicalAddress', 'must be a bigint');
    if (LogicalAddress < 0n || LogicalAddress > U64_MAX) throw invalid(op, 4, 'LogicalAddress', 'must be within 0..2^64-1');
    if (dom.allocator) throw fail('STATUS_NOT_SUPPORTED', op, 'this domain has a Buddy logical allocator, which does not accept explicit addresses', 'LogicalAddress');
    const pages = Number(phys.length >> 12n);
    const start = this.#placeLogical(dom, op, pages, LogicalAddress, undefined, undefined, 4, 'STATUS_IN_USE');
    installClaim(dom, op, start, pages, phys.runs, perms, ClaimKind.Logical, MAP_EX);
  }

  /** IOMMU_UNMAP_LOGICAL_RANGE: any page sub-range of logical mappings (Ex or V1). */
  UnmapLogicalRange(Domain: IommuDmaDomain, LogicalAddress: bigint, NumberOfPages: bigint | number): void {
    const op = 'UnmapLogicalRange';
    this.#live(op);
    const dom = this.#domain(Domain, op);
    if (dom.kind !== 'translate') throw invalid(op, 1, 'Domain', 'is not a DomainTypeTranslate domain');
    // Fast path: exactly one whole logical claim, addressed in exact numbers.
    if (typeof LogicalAddress === 'bigint') {
      const start = alignedPage(LogicalAddress); // int32 page number, or -1
      const np = typeof NumberOfPages === 'number' ? NumberOfPages : typeof NumberOfPages === 'bigint' ? exactNumber(NumberOfPages) : 0;
      if (start >= 0 && np > 0) {
        const c = dom.space.at(start);
        if (c !== undefined && c.start === start && c.pages === np && c.kind === ClaimKind.Logical) {
          if (c.backed) backendUnmap(dom, op, LogicalAddress, pageBytes(np));
          dom.space.remove(c);
          return;
        }
      }
    }
    if (typeof LogicalAddress !== 'bigint' || LogicalAddress < 0n || LogicalAddress > U64_MAX) throw invalid(op, 2, 'LogicalAddress', 'must be a bigint within 0..2^64-1');
    if ((LogicalAddress & PAGE_MASK) !== 0n) throw invalid(op, 2, 'LogicalAddress', `${hex(LogicalAddress)} is not page-aligned`);
    const n = typeof NumberOfPages === 'bigint' ? NumberOfPages : Number.isSafeInteger(NumberOfPages) ? BigInt(NumberOfPages) : -1n;
    if (n <= 0n) throw invalid(op, 3, 'NumberOfPages', 'must be a positive integer');
    if (LogicalAddress + n * PAGE - 1n > U64_MAX) throw invalid(op, 3, 'NumberOfPages', `${hex(LogicalAddress)} + ${n} pages wraps past 2^64`);
    const start = Number(LogicalAddress >> 12n);
    const pages = Number(n);
    // exactly one whole claim
    const c = dom.space.at(start);
    if (c && c.start === start && c.pages === pages && c.kind === ClaimKind.Logical) {
      removeClaim(dom, op, c);
      return;
    }
    unmapPages(dom, op, start, pages, ClaimKind.Logical);
  }

  // ==== identity mappings ======================================================================

  #identityDomain(Domain: IommuDmaDomain, op: string): DomainState {
    const dom = this.#reg.domain(Domain, op, 1);
    if (dom.kind !== 'translate' && dom.kind !== 'passthrough') {
      throw invalid(op, 1, 'Domain', 'is not a DomainTypeTranslate or DomainTypePassThrough domain');
    }
    if (dom.allocator) {
      throw fail('STATUS_NOT_SUPPORTED', op, 'identity maps need explicit addresses, which this domain\'s Buddy logical allocator does not allow');
    }
    return dom;
  }

  #mapIdentity(dom: DomainState, op: string, perms: number, desc: IOMMU_MAP_PHYSICAL_ADDRESS | MDL, nPhys: number): void {
    const phys = resolvePhysical(desc, `STATUS_INVALID_PARAMETER_${nPhys}` as 'STATUS_INVALID_PARAMETER_3', op, nPhys === 3 ? 'PhysicalAddressToMap' : 'Mdl');
    const pieces = phys.runs.map((r) => ({ start: Number(r.pa >> 12n), pages: Number(r.length >> 12n), run: r }));
    // validate every piece (usable, no overlap with others or each other) before mapping any
    const sorted = pieces.slice().sort((a, b) => a.start - b.start);
    for (let i = 0; i < sorted.length; i++) {
      const p = sorted[i];
      if (i > 0 && sorted[i - 1].start + sorted[i - 1].pages > p.start) {
        throw fail('STATUS_IN_USE', op, `the physical description names page ${hex(BigInt(p.start) * PAGE)} twice`);
      }
      this.#checkUsable(dom, op, p.start, p.pages, nPhys, 'PhysicalAddressToMap');
      const c = dom.space.conflict(p.start, p.pages);
      if (c) throw fail('STATUS_IN_USE', op, `identity range ${hex(p.run.pa)}+${hex(p.run.length)} overlaps ${claimName(c)} at ${hex(BigInt(c.start) * PAGE)}`);
    }
    const done: Claim[] = [];
    try {
      for (const p of pieces) {
        done.push(installClaim(dom, op, p.start, p.pages, [p.run], perms, ClaimKind.Identity, {
          address: `STATUS_INVALID_PARAMETER_${nPhys}` as 'STATUS_INVALID_PARAMETER_3',
          physical: `STATUS_INVALID_PARAMETER_${nPhys}` as 'STATUS_INVALID_PARAMETER_3',
          overlap: 'STATUS_IN_USE',
        }));
      }
    } catch (e) {
      for (const c of done.reverse()) {
        try {
          removeClaim(dom, op, c);
        } catch {
          /* best effort: the original error is what the caller needs */
        }
      }
      throw e;
    }
  }

  #unmapIdentity(dom: DomainState, op: string, desc: IOMMU_MAP_PHYSICAL_ADDRESS | MDL, nPhys: number): void {
    const phys = resolvePhysical(desc, `STATUS_INVALID_PARAMETER_${nPhys}` as 'STATUS_INVALID_PARAMETER_2', op, nPhys === 2 ? 'MappedPhysicalAddress' : 'Mdl');
    // validate all pieces first
    for (const r of phys.runs) {
      const start = Number(r.pa >> 12n);
      const pages = Number(r.length >> 12n);
      let cursor = start;
      for (const c of dom.space.overlapping(start, pages)) {
        if (c.kind !== ClaimKind.Identity || c.start > cursor) break;
        cursor = c.end;
      }
      if (cursor < start + pages) {
        throw fail('STATUS_INVALID_PARAMETER', op, `physical range ${hex(r.pa)}+${hex(r.length)} is not identity-mapped in this domain`);
      }
    }
    for (const r of phys.runs) unmapPages(dom, op, Number(r.pa >> 12n), Number(r.length >> 12n), ClaimKind.Identity);
  }

  /** IOMMU_MAP_IDENTITY_RANGE_EX. */
  MapIdentityRangeEx(Domain: IommuDmaDomain, Permissions: number, PhysicalAddressToMap: IOMMU_MAP_PHYSICAL_ADDRESS): void {
    const op = 'MapIdentityRangeEx';
    this.#live(op);
    const dom = this.#identityDomain(Domain, op);
    const perms = checkPermissions(Permissions, op, 2);
    this.#mapIdentity(dom, op, perms, PhysicalAddressToMap, 3);
  }

  /** IOMMU_UNMAP_IDENTITY_RANGE_EX. */
  UnmapIdentityRangeEx(Domain: IommuDmaDomain, MappedPhysicalAddress: IOMMU_MAP_PHYSICAL_ADDRESS): void {
    const op = 'UnmapIdentityRangeEx';
    this.#live(op);
    const dom = this.#identityDomain(Domain, op);
    this.#unmapIdentity(dom, op, MappedPhysicalAddress, 2);
  }

  /** IOMMU_MAP_IDENTITY_RANGE (V1). */
  MapIdentityRange(Domain: IommuDmaDomain, Permissions: number, Mdl: MDL): void {
    const op = 'MapIdentityRange';
    this.#live(op);
    const dom = this.#identityDomain(Domain, op);
    const perms = checkPermissions(Permissions, op, 2);
    this.#mapIdentity(dom, op, perms, Mdl, 3);
  }

  /** IOMMU_UNMAP_IDENTITY_RANGE (V1). */
  UnmapIdentityRange(Domain: IommuDmaDomain, Mdl: MDL): void {
    const op = 'UnmapIdentityRange';
    this.#live(op);
    const dom = this.#identityDomain(Domain, op);
    this.#unmapIdentity(dom, op, Mdl, 2);
  }

  // ==== reserved logical ranges ================================================================

  /** IOMMU_RESERVE_LOGICAL_ADDRESS_RANGE: returns the token. */
  ReserveLogicalAddressRange(
    Domain: IommuDmaDomain,
    Size: bigint | number,
    ExplicitLogicalAddress?: bigint | null,
    MinLogicalAddress?: bigint | null,
    MaxLogicalAddress?: bigint | null,
  ): LogicalAddressToken {
    const op = 'ReserveLogicalAddressRange';
    this.#live(op);
    const dom = this.#translate(Domain, op);
    const size = typeof Size === 'bigint' ? Size : Number.isSafeInteger(Size) ? BigInt(Size) : -1n;
    if (size <= 0n || (size & PAGE_MASK) !== 0n || size > U64_MAX) throw invalid(op, 2, 'Size', `${String(Size)} is not a positive multiple of PAGE_SIZE (4096)`);
    const explicit = optionalAddress(ExplicitLogicalAddress, op, 3, 'ExplicitLogicalAddress');
    const min = optionalAddress(MinLogicalAddress, op, 4, 'MinLogicalAddress');
    const max = optionalAddress(MaxLogicalAddress, op, 5, 'MaxLogicalAddress');
    const pages = Number(size >> 12n);
    const start = this.#placeLogical(dom, op, pages, explicit, min, max, 3, 'STATUS_IN_USE');
    const claim = new Claim(start, pages, ClaimKind.Token, 0, -1, null, false);
    claim.segments = new OrderedIndex<Claim>();
    dom.space.insert(claim);
    const handle = new LogicalAddressToken(BigInt(start) * PAGE, size);
    const t = new TokenState(handle, dom, claim);
    this.#reg.tokens.set(handle, t);
    dom.tokens.add(t);
    return handle;
  }

  /** IOMMU_FREE_RESERVED_LOGICAL_ADDRESS_RANGE. */
  FreeReservedLogicalAddressRange(LogicalAddressToken: LogicalAddressToken): void {
    const op = 'FreeReservedLogicalAddressRange';
    this.#live(op);
    const t = this.#reg.token(LogicalAddressToken, op, 1);
    const segs = t.claim.segments!;
    if (segs.size > 0) throw fail('STATUS_RESOURCE_IN_USE', op, `${segs.size} segment(s) of the token are still mapped: UnmapReservedLogicalRange first`);
    t.domain.space.remove(t.claim);
    t.domain.tokens.delete(t);
    t.freed = true;
  }

  /** IOMMU_MAP_RESERVED_LOGICAL_RANGE: returns the MappedSegment. */
  MapReservedLogicalRange(
    LogicalAddressToken: LogicalAddressToken,
    Offset: bigint | number,
    Permissions: number,
    PhysicalAddressToMap: IOMMU_MAP_PHYSICAL_ADDRESS,
  ): IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT {
    const op = 'MapReservedLogicalRange';
    this.#live(op);
    const t = this.#reg.token(LogicalAddressToken, op, 1);
    if (t.domain.deleted) throw fail('STATUS_UNSUCCESSFUL', op, 'the token\'s domain was deleted');
    // Fast path: a bigint offset and one ContiguousRange, valid and free, in int32 page numbers;
    // anything else goes through the general path below (same checks, same order, same errors).
    if (
      typeof Offset === 'bigint' &&
      (Permissions === 3 || Permissions === 1 || Permissions === 2) &&
      PhysicalAddressToMap !== null &&
      typeof PhysicalAddressToMap === 'object' &&
      PhysicalAddressToMap.MapType === MapPhysicalAddressTypeContiguousRange
    ) {
      const r = (PhysicalAddressToMap as { ContiguousRange?: { Base: unknown; Size: unknown } }).ContiguousRange;
      const Base = r?.Base;
      const Size = r?.Size;
      if (typeof Base === 'bigint' && typeof Size === 'bigint') {
        const offPage = alignedPage(Offset);
        const pfn = alignedPage(Base);
        const pages = alignedPage(Size);
        const claim = t.claim;
        const segs = claim.segments!;
        if (offPage >= 0 && pfn >= 0 && pages > 0 && offPage + pages <= claim.pages) {
          const prev = segs.floor(offPage + pages - 1);
          if (prev === undefined || prev.end <= offPage) {
            const dom = t.domain;
            const iova = t.handle.LogicalAddressBase + Offset;
            try {
              dom.backend.map(dom.id, iova, [{ pa: Base, length: Size }], Permissions);
            } catch (e) {
              throw translate(e, op, RESERVED_MAP, { iova, length: Size });
            }
            const seg = new Claim(offPage, pages, ClaimKind.Logical, Permissions, pfn, null, true);
            segs.set(offPage, seg);
            return new SegmentHandle(this, t, Offset, Size, seg);
          }
        }
      }
    }
    const off = typeof Offset === 'bigint' ? Offset : Number.isSafeInteger(Offset) ? BigInt(Offset) : -1n;
    if (off < 0n || (off & PAGE_MASK) !== 0n) throw invalid(op, 2, 'Offset', `${String(Offset)} is not a page-aligned byte offset`);
    const perms = checkPermissions(Permissions, op, 3);
    const phys = resolvePhysical(PhysicalAddressToMap, 'STATUS_INVALID_PARAMETER_4', op, 'PhysicalAddressToMap');
    const size = t.handle.Size;
    if (off + phys.length > size) {
      throw fail('STATUS_INVALID_PARAMETER_MIX', op, `Offset ${hex(off)} + ${hex(phys.length)} bytes exceeds the token's ${hex(size)} bytes`);
    }
    const offPage = Number(off >> 12n);
    const pages = Number(phys.length >> 12n);
    const segs = t.claim.segments!;
    const prev = segs.floor(offPage + pages - 1);
    if (prev && prev.end > offPage) {
      throw fail('STATUS_RESOURCE_IN_USE', op, `Offset ${hex(off)}+${hex(phys.length)} overlaps a mapped segment at offset ${hex(BigInt(prev.start) * PAGE)}`);
    }
    const dom = t.domain;
    const start = t.claim.start + offPage;
    const { pfn, runs } = runsOf(phys.runs);
    const seg = new Claim(offPage, pages, ClaimKind.Logical, perms, pfn, runs, perms !== 0);
    if (seg.backed) {
      const iova = BigInt(start) * PAGE;
      kernel(op, () => dom.backend.map(dom.id, iova, phys.runs, perms), RESERVED_MAP, { iova, length: phys.length });
    }
    segs.set(offPage, seg);
    return new SegmentHandle(this, t, off, phys.length, seg);
  }

  /** IOMMU_UNMAP_RESERVED_LOGICAL_RANGE. */
  UnmapReservedLogicalRange(MappedSegment: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT): void {
    const op = 'UnmapReservedLogicalRange';
    this.#live(op);
    const seg = MappedSegment && typeof MappedSegment === 'object' ? SegmentHandle.live(MappedSegment, this) : undefined;
    if (!seg) throw fail('STATUS_INVALID_PARAMETER', op, 'MappedSegment is not a mapped segment from MapReservedLogicalRange (or was already unmapped)', 'MappedSegment');
    const t = SegmentHandle.tokenOf(seg);
    const claim = SegmentHandle.claimOf(seg);
    // iova = token base + Offset, length = Size: the segment's own (immutable) bigints
    if (claim.backed) backendUnmap(t.domain, op, t.handle.LogicalAddressBase + seg.Offset, seg.Size);
    t.claim.segments!.delete(claim.start);
    SegmentHandle.release(seg);
  }

  // ==== fault reporting ========================================================================

  #setFaultReporting(d: DeviceState, op: string, base: unknown, enable: unknown, config: DEVICE_FAULT_CONFIGURATION | null | undefined): void {
    if (base !== 0) throw invalid(op, 2, 'InputMappingIdBase', 'must be 0 (input-mapping IDs are for ACPI-enumerated Arm64 devices)');
    if (typeof enable !== 'boolean') throw invalid(op, 3, 'Enable', 'must be a boolean');
    if (!d.domain) throw invalid(op, 1, op === 'SetDeviceFaultReporting' ? 'PhysicalDeviceObject' : 'DmaDevice', `${d.pdo.bdf} is not attached to a domain (fault reporting is set on attached devices)`);
    if (!enable) {
      d.fault = null;
      return;
    }
    if (!config || typeof config.FaultHandler !== 'function') throw invalid(op, 4, 'FaultConfig', 'must give a FaultHandler function when enabling');
    if (this.backend.capabilities.faultSource === 'none') {
      throw fail('STATUS_NOT_SUPPORTED', op, `the ${this.backend.kind} backend cannot observe DMA faults here (${this.backend.reason})`);
    }
    d.fault = { FaultHandler: config.FaultHandler, FaultContext: config.FaultContext };
  }

  /** IOMMU_SET_DEVICE_FAULT_REPORTING_EX (Windows returns STATUS_NOT_IMPLEMENTED; dma-iommu implements it). */
  SetDeviceFaultReportingEx(DmaDevice: IommuDmaDevice, InputMappingIdBase: number, Enable: boolean, FaultConfig?: DEVICE_FAULT_CONFIGURATION | null): void {
    const op = 'SetDeviceFaultReportingEx';
    this.#live(op);
    this.#setFaultReporting(this.#reg.device(DmaDevice, op, 1), op, InputMappingIdBase, Enable, FaultConfig);
  }

  /** IOMMU_SET_DEVICE_FAULT_REPORTING (V1). */
  SetDeviceFaultReporting(PhysicalDeviceObject: PhysicalDeviceObject, InputMappingIdBase: number, Enable: boolean, FaultConfig?: DEVICE_FAULT_CONFIGURATION | null): void {
    const op = 'SetDeviceFaultReporting';
    this.#live(op);
    const pdo = this.#pdo(PhysicalDeviceObject, op, 1);
    const d = this.#byPdo.get(pdo);
    if (!d) throw invalid(op, 1, 'PhysicalDeviceObject', `${pdo.bdf} is not attached to a domain`);
    this.#setFaultReporting(d, op, InputMappingIdBase, Enable, FaultConfig);
  }

  #onFault(f: BackendFault): void {
    const d = [...this.#reg.liveDevices].find((s) => s.pdo.bdf === f.bdf);
    const pasidState = f.pasid !== undefined ? d?.pasids.get(f.pasid) : undefined;
    const domain = pasidState?.domain?.handle ?? d?.domain?.handle ?? null;
    const pdo = d?.pdo ?? this.#pdos.get(f.bdf) ?? new PhysicalDeviceObject({
      bdf: f.bdf, vendorId: 0, deviceId: 0, classCode: 0, iommuGroup: null, requesterId: 0, driver: null, usable: false, maxPasidLog2: 0,
    });
    const type = f.kind === 'permission' ? PermissionFault : TranslationFault;
    const details = {
      bdf: f.bdf,
      write: f.write,
      ...(f.pasid !== undefined ? { pasid: f.pasid } : {}),
      reason: f.reason,
      ...(f.reasonCode !== undefined ? { reasonCode: f.reasonCode } : {}),
      source: f.source,
      ...(f.raw !== undefined ? { raw: f.raw } : {}),
      timestamp: f.timestamp,
    };
    const info: FAULT_INFORMATION =
      this.backend.capabilities.arch === 'arm64'
        ? {
            Type: FaultInformationArm64,
            IsStage1: true,
            Arm64: {
              DomainHandle: domain,
              FaultAddress: f.iova,
              PhysicalDeviceObject: pdo,
              InputMappingId: pdo.requesterId,
              Flags: { WriteNotRead: f.write ? 1 : 0, InstructionNotData: 0, Privileged: 0, FaultAddressValid: 1 },
              Type: type,
              IommuBaseAddress: 0n,
            },
            PhysicalDeviceObject: pdo,
            DmaDevice: d?.handle ?? null,
            Details: details,
          }
        : {
            Type: FaultInformationX64,
            IsStage1: false,
            X64: { DomainHandle: domain, FaultAddress: f.iova, Flags: { FaultAddressValid: 1 }, Type: type, IommuBaseAddress: 0n, PciSegment: Number.parseInt(f.bdf.slice(0, 4), 16) || 0 },
            PhysicalDeviceObject: pdo,
            DmaDevice: d?.handle ?? null,
            Details: details,
          };
    const suppressed = pasidState !== undefined && d?.suppressPasidFaults === true;
    const handler = !suppressed ? d?.fault : null;
    const record: FaultRecord = { information: info, delivered: !!handler };
    this.#faults.push(record);
    if (this.#faults.length > FAULT_LOG_LIMIT) this.#faults.shift();
    if (handler) {
      try {
        handler.FaultHandler(handler.FaultContext, info);
      } catch (e) {
        this.#onHandlerError(e, 'IOMMU_DEVICE_FAULT_HANDLER');
      }
    }
    for (const w of [...this.#faultWaiters]) w(record);
  }

  // ==== interface state change =================================================================

  /** IOMMU_REGISTER_INTERFACE_STATE_CHANGE_CALLBACK: invokes the callback at once, then on change. */
  RegisterInterfaceStateChangeCallback(
    StateChangeCallback: IOMMU_INTERFACE_STATE_CHANGE_CALLBACK,
    Context: unknown,
    DmaDevice: IommuDmaDevice,
    StateFields: IOMMU_INTERFACE_STATE_CHANGE_FIELDS,
  ): void {
    const op = 'RegisterInterfaceStateChangeCallback';
    this.#live(op);
    if (typeof StateChangeCallback !== 'function') throw invalid(op, 1, 'StateChangeCallback', 'must be a function');
    const d = this.#reg.device(DmaDevice, op, 3);
    const bits = StateFields && typeof StateFields === 'object'
      ? (typeof StateFields.AsULONG === 'number' ? StateFields.AsULONG : 0) | (StateFields.AvailableDomainTypes ? 1 : 0)
      : 0;
    if (bits === 0) throw invalid(op, 4, 'StateFields', 'selects no state (set AvailableDomainTypes)');
    if ((bits & ~1) !== 0) throw invalid(op, 4, 'StateFields', 'has reserved bits set (only AvailableDomainTypes is defined)');
    if (d.callback) throw fail('STATUS_UNSUCCESSFUL', op, `${d.pdo.bdf} already has a state-change callback (one per device)`);
    d.callback = { fn: StateChangeCallback, context: Context };
    this.#notify(d, d.removed ? 0 : this.QueryAvailableDomainTypes(d.handle));
  }

  /** IOMMU_UNREGISTER_INTERFACE_STATE_CHANGE_CALLBACK. */
  UnregisterInterfaceStateChangeCallback(StateChangeCallback: IOMMU_INTERFACE_STATE_CHANGE_CALLBACK, DmaDevice: IommuDmaDevice): void {
    const op = 'UnregisterInterfaceStateChangeCallback';
    this.#live(op);
    const d = this.#reg.device(DmaDevice, op, 2);
    if (!d.callback || d.callback.fn !== StateChangeCallback) throw fail('STATUS_UNSUCCESSFUL', op, `that callback is not registered for ${d.pdo.bdf}`);
    d.callback = null;
  }

  #notify(d: DeviceState, mask: number): void {
    const cb = d.callback;
    if (!cb) return;
    try {
      cb.fn({ PresentFields: { AvailableDomainTypes: 1, AsULONG: 1 }, AvailableDomainTypes: mask }, cb.context);
    } catch (e) {
      this.#onHandlerError(e, 'IOMMU_INTERFACE_STATE_CHANGE_CALLBACK');
    }
  }

  #onDeviceEvent(e: DeviceEvent): void {
    for (const d of this.#reg.liveDevices) {
      if (d.pdo.bdf !== e.bdf) continue;
      if (!e.present) d.removed = true;
      else d.removed = false;
      this.#notify(d, e.present ? e.availableDomainTypes & this.backend.capabilities.domainTypes : 0);
    }
  }

  // ==== PASID (V3) =============================================================================

  /** IOMMU_PASID_DEVICE_CREATE: returns { PasidDevice, Asid }. */
  CreatePasidDevice(DmaDevice: IommuDmaDevice): { PasidDevice: IommuDmaPasidDevice; Asid: number } {
    const op = 'CreatePasidDevice';
    this.#live(op);
    const d = this.#reg.device(DmaDevice, op, 1);
    if (!d.pasidTagged) throw invalid(op, 1, 'DmaDevice', `${d.pdo.bdf} was not created with a PasidConfigTypePasidTaggedDma configuration`);
    const max = 2 ** Math.min(d.pdo.maxPasidLog2, 20);
    let pasid = -1;
    for (let p = 1; p < max; p++) {
      if (!d.pasids.has(p)) {
        pasid = p;
        break;
      }
    }
    if (pasid < 0) throw fail('STATUS_NONE_MAPPED', op, `no free PASID on ${d.pdo.bdf} (${max - 1} in use)`);
    const handle = new IommuDmaPasidDevice(d.handle, pasid);
    const s = new PasidState(handle, d, pasid);
    d.pasids.set(pasid, s);
    this.#reg.pasids.set(handle, s);
    return { PasidDevice: handle, Asid: pasid };
  }

  /** IOMMU_PASID_DEVICE_DELETE. */
  DeletePasidDevice(PasidDevice: IommuDmaPasidDevice): void {
    const op = 'DeletePasidDevice';
    this.#live(op);
    const p = this.#reg.pasid(PasidDevice, op, 1);
    if (p.domain) throw fail('STATUS_RESOURCE_IN_USE', op, `PASID ${p.pasid} is still attached: DetachPasidDevice first`);
    p.deleted = true;
    p.device.pasids.delete(p.pasid);
  }

  /** IOMMU_DOMAIN_ATTACH_PASID_DEVICE. */
  AttachPasidDevice(Domain: IommuDmaDomain, PasidDevice: IommuDmaPasidDevice): void {
    const op = 'AttachPasidDevice';
    this.#live(op);
    const dom = this.#reg.domain(Domain, op, 1);
    const p = this.#reg.pasid(PasidDevice, op, 2);
    if (p.domain) throw fail('STATUS_UNSUCCESSFUL', op, `PASID ${p.pasid} of ${p.device.pdo.bdf} is already attached`);
    if (dom.kind !== 'translate') throw invalid(op, 1, 'Domain', 'PASID devices attach to DomainTypeTranslate domains only');
    kernel(op, () => this.backend.attachPasid(dom.id, p.device.id, p.pasid), {
      EOPNOTSUPP: 'STATUS_INVALID_PARAMETER_1',
      EINVAL: 'STATUS_ACCESS_DENIED',
      ENODEV: 'STATUS_DEVICE_REMOVED',
    });
    p.domain = dom;
    dom.pasids.add(p);
  }

  /** IOMMU_DOMAIN_DETACH_PASID_DEVICE. */
  DetachPasidDevice(PasidDevice: IommuDmaPasidDevice): void {
    const op = 'DetachPasidDevice';
    this.#live(op);
    const p = this.#reg.pasid(PasidDevice, op, 1);
    if (!p.domain) throw invalid(op, 1, 'PasidDevice', `PASID ${p.pasid} is not attached`);
    kernel(op, () => this.backend.detachPasid(p.device.id, p.pasid));
    p.domain.pasids.delete(p);
    p.domain = null;
  }

  // ==== lifetime ===============================================================================

  /**
   * Tear everything down in dependency order (segments and maps → PASIDs → devices detached →
   * tokens → domains → devices → memory → backend). Idempotent; continues past failures and
   * throws the first one at the end.
   */
  close(): void {
    if (this.#closed) return;
    const errors: unknown[] = [];
    const attempt = (fn: () => void): void => {
      try {
        fn();
      } catch (e) {
        errors.push(e);
      }
    };
    for (const dom of this.#reg.liveDomains) {
      for (const p of [...dom.pasids]) attempt(() => this.backend.detachPasid(p.device.id, p.pasid));
      dom.pasids.clear();
      for (const d of [...dom.devices]) {
        attempt(() => this.backend.detach(d.id));
        d.domain = null;
      }
      dom.devices.clear();
      attempt(() => this.backend.freeDomain(dom.id));
      dom.deleted = true;
      for (const t of dom.tokens) t.freed = true;
    }
    this.#reg.liveDomains.clear();
    this.#lastDomain = null;
    this.#lastDomainState = null;
    for (const d of [...this.#reg.liveDevices]) attempt(() => this.#closeDevice(d));
    for (const m of this.#memory) attempt(() => m.backendMemory.freed || m.backendMemory.free());
    this.#memory.clear();
    this.#unsubFault?.();
    this.#unsubDevice?.();
    attempt(() => this.backend.close());
    this.#closed = true;
    if (errors.length > 0) throw translate(errors[0], 'close');
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Everything as JSON-able data: the platform's objects and the backend's own view. */
  inspect(): unknown {
    const h = (v: bigint): string => hex(v);
    return {
      backend: { kind: this.backend.kind, reason: this.backend.reason, capabilities: this.backend.capabilities },
      devices: [...this.#reg.liveDevices].map((d) => ({
        handle: d.handle.toString(),
        bdf: d.pdo.bdf,
        attached: d.domain?.handle.toString() ?? null,
        pasids: [...d.pasids.keys()],
        faultReporting: !!d.fault,
        stateCallback: !!d.callback,
        removed: d.removed,
      })),
      domains: [...this.#reg.liveDomains].map((dom) => ({
        handle: dom.handle.toString(),
        type: dom.wdkType,
        allocator: dom.allocator ? { type: 'buddy', addressWidth: dom.allocator.addressWidth } : null,
        devices: [...dom.devices].map((d) => d.pdo.bdf),
        claims: [...dom.space.all()].map((c) => ({
          kind: ['logical', 'identity', 'token', 'reserved'][c.kind],
          iova: h(BigInt(c.start) * PAGE),
          length: h(BigInt(c.pages) * PAGE),
          perms: c.perms,
          ...(c.segments ? { segments: c.segments.size } : {}),
        })),
      })),
      memory: [...this.#memory].filter((m) => !m.freed).map((m) => ({ size: h(m.size), physicalAddress: h(m.physicalAddress) })),
      faults: this.#faults.length,
      backendState: this.backend.inspect(),
    };
  }
}

/** Whether pages [start, start+pages) lie inside one usable range. */
function usable(ranges: readonly PageRange[], start: number, pages: number): boolean {
  const last = start + pages - 1;
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i];
    if (r.start <= start && r.last >= last) return true;
  }
  return false;
}

/**
 * IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT as MapReservedLogicalRange returns it: frozen
 * public fields (OwningToken, Offset, Size), and, in private fields no caller can reach or forge,
 * the platform that made it, its token and its claim (cleared once unmapped). This replaces a
 * per-platform WeakMap from segment to claim, whose set + delete cost more than the rest of a
 * reserved map + unmap pair.
 */
class SegmentHandle implements IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT {
  readonly OwningToken: LogicalAddressToken;
  readonly Offset: bigint;
  readonly Size: bigint;
  readonly #owner: IommuPlatform;
  readonly #token: TokenState;
  #claim: Claim | null;

  constructor(owner: IommuPlatform, token: TokenState, offset: bigint, size: bigint, claim: Claim) {
    this.OwningToken = token.handle;
    this.Offset = offset;
    this.Size = size;
    this.#owner = owner;
    this.#token = token;
    this.#claim = claim;
    Object.freeze(this);
  }

  /** `s` when it is a still-mapped segment made by `owner`, else undefined. */
  static live(s: object, owner: IommuPlatform): SegmentHandle | undefined {
    return #claim in s && s.#owner === owner && s.#claim !== null ? s : undefined;
  }

  static tokenOf(s: SegmentHandle): TokenState {
    return s.#token;
  }

  static claimOf(s: SegmentHandle): Claim {
    return s.#claim as Claim;
  }

  static release(s: SegmentHandle): void {
    s.#claim = null;
  }
}

/** MapReservedLogicalRange's statuses for the backend's errnos. */
const RESERVED_MAP: Partial<Record<string, StatusName>> = {
  EINVAL: 'STATUS_INVALID_PARAMETER_4',
  EFAULT: 'STATUS_INVALID_PARAMETER_4',
  EEXIST: 'STATUS_RESOURCE_IN_USE',
};

const MAP_EX: MapStatuses = {
  address: 'STATUS_INVALID_PARAMETER_4',
  physical: 'STATUS_INVALID_PARAMETER_3',
  overlap: 'STATUS_IN_USE',
};

function runsOf(runs: ReturnType<typeof resolvePhysical>['runs']): { pfn: number; runs: typeof runs | null } {
  return runs.length === 1 ? { pfn: Number(runs[0].pa >> 12n), runs: null } : { pfn: -1, runs };
}

function claimName(c: Claim): string {
  return ['a logical mapping', 'an identity mapping', 'a reserved logical range (token)', 'a reserved region'][c.kind];
}

export function faultAddress(info: FAULT_INFORMATION): bigint {
  return (info.X64?.FaultAddress ?? info.Arm64?.FaultAddress) as bigint;
}
