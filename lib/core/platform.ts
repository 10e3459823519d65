/**
 * IommuPlatform: the WDK semantics over one backend. Every member of DMA_IOMMU_INTERFACE_V1/V2/V3
 * is a method here with the WDK's parameter order (out-parameters returned), enforcing the rules
 * of ../shared/reference/windows-iommu-ddi.md §2 and §4.3 with their status codes, for every
 * backend alike. The WDK-shaped tables (lib/wdk/interface.ts) only bind these methods.
 *
 * This class is a facade: each method forwards to the module of its member family under
 * ./platform/ (devices, domains, logical, identity, reserved, tables, faults, pasid,
 * state-callbacks, services, lifetime), which share one `PlatformContext` and one argument
 * validation module (./platform/validate.ts). To add a WDK member: write it in its family module
 * and add its one-line method here (and its name to lib/wdk/interface.ts).
 *
 * Its length is the public API reference: about half of the file is the TSDoc of each member
 * (parameters, results, status codes, backend differences) that docs/api is generated from; the
 * code is one forwarding line per member (so the members are alike in shape by design: each is
 * the WDK member's TSDoc over one call into its family module).
 */
import type { AllocateOptions, DeviceRegions, DomainGeometry, IommuBackend } from '../backend/contract.js';
import type {
  DEVICE_FAULT_CONFIGURATION,
  DOMAIN_CONFIGURATION,
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
import type { IommuDmaDevice, IommuDmaDomain, IommuDmaPasidDevice, LogicalAddressToken, PhysicalDeviceObject } from './objects.js';
import type { DmaMemory } from './physical.js';
import { PlatformContext, warnHandlerError } from './platform/context.js';
import { viaBackend } from './platform/backend-call.js';
import { describe, invalidOption, isAbsent } from './platform/validate.js';
import * as devices from './platform/devices.js';
import * as domains from './platform/domains.js';
import * as faults from './platform/faults.js';
import type { FaultRecord } from './platform/faults.js';
import * as identity from './platform/identity.js';
import { closePlatform, inspectPlatform } from './platform/lifetime.js';
import * as logical from './platform/logical.js';
import * as pasid from './platform/pasid.js';
import * as reserved from './platform/reserved.js';
import * as services from './platform/services.js';
import * as callbacks from './platform/state-callbacks.js';
import * as tables from './platform/tables.js';

export type { FaultRecord } from './platform/faults.js';
export { faultAddress, toFaultInformation } from './platform/faults.js';

/** Options of an {@link IommuPlatform} (also accepted by {@link openPlatform} and {@link IoGetIommuInterfaceEx}). */
export interface PlatformOptions {
  /** Called when a fault or state-change handler throws (default: process.emitWarning). */
  readonly onHandlerError?: (error: unknown, where: string) => void;
}

/**
 * The WDK semantics over one backend: every member of `DMA_IOMMU_INTERFACE_V1`/`V2`/`V3` is a
 * method here, with the WDK's parameter names and order (out-parameters are return values), plus
 * the platform services the WDK gets elsewhere (devices, DMA memory, faults). The interface tables
 * of {@link IoGetIommuInterfaceEx} are these methods, bound; `iface.Platform` is this object.
 *
 * Calls are synchronous. Addresses and sizes are `bigint` bytes unless a parameter counts pages.
 * Every method throws {@link IommuError} and nothing else: a bad WDK argument is
 * `STATUS_INVALID_PARAMETER_n` (n = its position in the WDK prototype), a bad service argument is
 * `STATUS_INVALID_PARAMETER` with `.argument` naming it, any call after {@link close} is
 * `STATUS_INVALID_DEVICE_REQUEST`, a removed device is `STATUS_DEVICE_REMOVED`. What each backend
 * supports is in the README's implementation-status table.
 */
export class IommuPlatform {
  /** The backend under the platform: read `kind`, `reason`, `capabilities` and `memoryInfo`. */
  readonly backend: IommuBackend;
  readonly #ctx: PlatformContext;
  readonly #unsubscribe: () => void;

  /**
   * Wrap a backend (usually {@link openPlatform} does this).
   * @param backend - from {@link selectBackend} or `new SimulatedBackend()`; the platform owns it from now on.
   * @param options - platform options.
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER` naming `backend`, `options` or `options.onHandlerError`.
   */
  constructor(backend: IommuBackend, options: PlatformOptions = {}) {
    const op = 'IommuPlatform';
    if (backend === null || typeof backend !== 'object' || typeof backend.onFault !== 'function' || typeof backend.onDeviceEvent !== 'function') {
      throw invalidOption(op, 'backend', 'must be an IommuBackend (from selectBackend() or new SimulatedBackend())');
    }
    if (!isAbsent(options) && typeof options !== 'object') throw invalidOption(op, 'options', `must be a PlatformOptions object (got ${describe(options)})`);
    const hook = options?.onHandlerError;
    if (!isAbsent(hook) && typeof hook !== 'function') throw invalidOption(op, 'options.onHandlerError', `must be a function (got ${describe(hook)})`);
    this.backend = backend;
    const ctx = new PlatformContext(backend, hook ?? warnHandlerError);
    this.#ctx = ctx;
    const unsubFault = viaBackend(op, () => backend.onFault((f) => faults.onBackendFault(ctx, f)));
    const unsubDevice = viaBackend(op, () => backend.onDeviceEvent((e) => callbacks.onDeviceEvent(ctx, e)));
    this.#unsubscribe = () => {
      unsubFault();
      unsubDevice();
    };
  }

  /** True once {@link close} ran. */
  get closed(): boolean {
    return this.#ctx.closed;
  }

  // ==== platform services (not WDK members) ====================================================

  /** The PCI functions of the platform, as PDOs usable wherever the WDK takes one. */
  enumerateDevices(): PhysicalDeviceObject[] {
    return devices.enumerateDevices(this.#ctx);
  }

  /** The PDO for a BDF ('0000:00:03.0' or '00:03.0'), or undefined. */
  findDevice(bdf: string): PhysicalDeviceObject | undefined {
    return devices.findDevice(this.#ctx, bdf);
  }

  /**
   * Allocate DMA-able memory (page-aligned, whole pages). Simulator: simulated RAM; native: this
   * process's own pages, pinned by the kernel while mapped (real physical addresses as root).
   * @param size - bytes (`bigint` or a safe integer), rounded up to whole 4 KiB pages.
   * @param options - `hugePages` (2 MiB pages), `contiguous`, `lazy` (no JS view: use
   *   `read()`/`write()`; needed above 1 GiB).
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER` (`size`, `options`, `options.*`);
   *   `STATUS_INSUFFICIENT_RESOURCES` (out of memory or memlock limit); `STATUS_INVALID_DEVICE_REQUEST` (closed).
   */
  allocateDmaMemory(size: bigint | number, options: AllocateOptions = {}): DmaMemory {
    return services.allocateDmaMemory(this.#ctx, size, options);
  }

  /**
   * PCI config space and BAR access of a created device, for drivers written in JS (see
   * {@link EduDevice}). The object answers `STATUS_INVALID_DEVICE_REQUEST` once the device is deleted.
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER` (`device`: not a live device of this platform).
   */
  deviceRegions(device: IommuDmaDevice): DeviceRegions {
    return services.deviceRegions(this.#ctx, device);
  }

  /**
   * The domain's usable IOVA ranges, alignment and page sizes as of now (they narrow once a device
   * is attached: aperture minus reserved regions such as the x86 MSI window).
   */
  geometry(domain: IommuDmaDomain): DomainGeometry {
    return services.geometry(this.#ctx, domain);
  }

  /** Every fault seen, delivered to a handler or not (most recent last; the oldest are dropped past 1000). */
  faults(): readonly FaultRecord[] {
    return this.#ctx.faultLog.all();
  }

  /**
   * Resolve with the next fault for `bdf` (or any); reject after `timeoutMs` (STATUS_TIMEOUT) or at close() (STATUS_INVALID_DEVICE_REQUEST).
   * Works whether or not fault reporting is enabled for the device.
   * @param filter - `bdf`: only this device's faults; `iova`: only faults at this logical address.
   * @param timeoutMs - milliseconds to wait (default 5000).
   * @throws {@link IommuError} (as a rejection) `STATUS_INVALID_PARAMETER` (`filter`, `filter.bdf`,
   *   `filter.iova`, `timeoutMs`); `STATUS_TIMEOUT`; `STATUS_INVALID_DEVICE_REQUEST`.
   */
  waitForFault(filter: { bdf?: string; iova?: bigint } = {}, timeoutMs = 5000): Promise<FaultRecord> {
    return faults.waitForFault(this.#ctx, filter, timeoutMs);
  }

  // ==== devices ================================================================================

  /**
   * IOMMU_DEVICE_CREATE (V2, V3): turn a PDO into the device handle the other V2/V3 members take.
   * iommufd: opens the device's cdev and binds it (`VFIO_DEVICE_BIND_IOMMUFD`); type1: opens its group.
   * @param DeviceObject - the PDO, from `enumerateDevices()`/`findDevice()`.
   * @param DeviceConfig - optional configurations (a `NextConfiguration` chain or an array): an ACPI
   *   one for Arm64 ACPI devices, a PASID one (V3) for PASID-tagged DMA (simulator only); none otherwise.
   * @returns the new `IOMMU_DMA_DEVICE`.
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER_1` (not a PDO of this platform, stale, or not
   *   usable); `STATUS_INVALID_PARAMETER_2` (a configuration the device or architecture does not take);
   *   `STATUS_NOT_FOUND` (not behind an IOMMU, or its node is gone); `STATUS_DEVICE_BUSY` (the device
   *   already has an `IOMMU_DMA_DEVICE`, or the kernel reports it busy); `STATUS_ACCESS_DENIED` (device
   *   node not accessible, or another device of its IOMMU group is bound to a host driver).
   */
  CreateDevice(DeviceObject: PhysicalDeviceObject, DeviceConfig?: IOMMU_DEVICE_CREATION_CONFIGURATION | readonly IOMMU_DEVICE_CREATION_CONFIGURATION[] | null): IommuDmaDevice {
    return devices.createDevice(this.#ctx, DeviceObject, DeviceConfig);
  }

  /**
   * IOMMU_DEVICE_DELETE (V2, V3): release a device handle (closes the kernel's device/group on native).
   * @throws {@link IommuError} `STATUS_RESOURCE_IN_USE` (still attached: `DetachDeviceEx` first; or it
   *   still has PASID devices or a state-change callback); `STATUS_INVALID_PARAMETER_1` (not a live
   *   device of this platform).
   */
  DeleteDevice(DmaDevice: IommuDmaDevice): void {
    devices.deleteDevice(this.#ctx, DmaDevice);
  }

  /**
   * IOMMU_DEVICE_QUERY_DOMAIN_TYPES (V2, V3): which domain types the device may attach to now.
   * VOID in the WDK (an out-parameter); returned here. A hint for `AttachDeviceEx`.
   * Simulator: Translate and PassThrough (+ Unmanaged on Arm64), changeable by the test control
   * `setAvailableDomainTypes`; iommufd and type1: Translate and PassThrough.
   * @returns the mask, bit `1 << IOMMU_DMA_DOMAIN_TYPE` per available type.
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER_1` (not a live device); `STATUS_DEVICE_REMOVED`.
   */
  QueryAvailableDomainTypes(DmaDevice: IommuDmaDevice): number {
    return devices.queryAvailableDomainTypes(this.#ctx, DmaDevice);
  }

  /**
   * IOMMU_DEVICE_QUERY_INFORMATION (V3): the device's PASID information.
   * @param Size - the caller's buffer size in bytes (at least 3, `sizeof(IOMMU_DMA_DEVICE_INFORMATION)`).
   * @throws {@link IommuError} `STATUS_BUFFER_TOO_SMALL` (`Size` < 3); `STATUS_INVALID_PARAMETER_1`.
   */
  QueryDeviceInfo(DmaDevice: IommuDmaDevice, Size = 3): IOMMU_DMA_DEVICE_INFORMATION {
    return devices.queryDeviceInfo(this.#ctx, DmaDevice, Size);
  }

  // ==== domains ================================================================================

  /**
   * IOMMU_DOMAIN_CREATE_EX (V2, V3): create a domain.
   * Simulator: Translate, PassThrough (real bypass), Unmanaged on Arm64. iommufd: Translate is an IOAS,
   * PassThrough is emulated with identity maps of this process's DMA memory; type1: the same over a
   * container. Unmanaged needs nesting hardware there: `STATUS_NOT_SUPPORTED`.
   * @param DomainType - a `DomainType*` value.
   * @param Flags - reserved: must be 0.
   * @param LogicalAllocatorConfig - `null`: the caller gives every address; Buddy: the domain picks them.
   * @param ReservedRegions - ranges kept out of the allocator (identity-mapped when `ShouldMap`).
   * @returns the new domain.
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER_1`…`_4` for a malformed argument;
   *   `STATUS_NOT_SUPPORTED` (type unavailable on this backend); `STATUS_INSUFFICIENT_RESOURCES`.
   */
  CreateDomainEx(
    DomainType: number,
    Flags: IOMMU_DMA_DOMAIN_CREATION_FLAGS = 0n,
    LogicalAllocatorConfig?: IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG | null,
    ReservedRegions?: IOMMU_DMA_RESERVED_REGION | readonly IOMMU_DMA_RESERVED_REGION[] | null,
  ): IommuDmaDomain {
    return domains.createDomainEx(this.#ctx, DomainType, Flags, LogicalAllocatorConfig, ReservedRegions);
  }

  /**
   * IOMMU_DOMAIN_CREATE (V1): `OsManagedPageTable` true → a Translate domain; false → caller-owned
   * tables (Unmanaged: simulator on Arm64 only, else `STATUS_NOT_SUPPORTED`).
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER_1` (not a boolean); `STATUS_NOT_SUPPORTED`.
   */
  CreateDomain(OsManagedPageTable: boolean): IommuDmaDomain {
    return domains.createDomain(this.#ctx, OsManagedPageTable);
  }

  /**
   * IOMMU_DOMAIN_DELETE (all versions): delete a domain; mappings still in it go with it.
   * @throws {@link IommuError} `STATUS_RESOURCE_IN_USE` (devices attached, or reserved tokens not
   *   freed); `STATUS_INVALID_PARAMETER_1` (not a live domain of this platform).
   */
  DeleteDomain(Domain: IommuDmaDomain): void {
    domains.deleteDomain(this.#ctx, Domain);
  }

  /**
   * IOMMU_DOMAIN_ATTACH_DEVICE_EX (V2, V3): attach a device to a domain; its DMA is translated by
   * the domain from now on. A device has at most one domain. type1: the first device makes the
   * container usable and the domain's earlier maps are replayed into it.
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER` (already attached: `DetachDeviceEx` first);
   *   `STATUS_ACCESS_DENIED` (the domain type is not available to the device now, or an IOMMU group
   *   conflict); `STATUS_INVALID_PARAMETER_1`/`_2` (not a live domain/device); `STATUS_DEVICE_REMOVED`;
   *   `STATUS_INSUFFICIENT_RESOURCES`.
   */
  AttachDeviceEx(Domain: IommuDmaDomain, DmaDevice: IommuDmaDevice): void {
    domains.attachDeviceEx(this.#ctx, Domain, DmaDevice);
  }

  /**
   * IOMMU_DOMAIN_DETACH_DEVICE_EX (V2, V3): detach a device from its domain.
   * A removed device reports `STATUS_DEVICE_REMOVED` and is still recorded as detached.
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER_1` (not attached, or not a live device);
   *   `STATUS_DEVICE_REMOVED`.
   */
  DetachDeviceEx(DmaDevice: IommuDmaDevice): void {
    domains.detachDeviceEx(this.#ctx, DmaDevice);
  }

  /**
   * IOMMU_DOMAIN_ATTACH_DEVICE (V1): attach a device by its PDO (an implicit device is created).
   * @param InputMappingIdBase - Arm64 ACPI devices' first stream ID; must be 0 elsewhere.
   * @param MappingCount - number of stream IDs from the base; must be 1 elsewhere.
   * @throws {@link IommuError} as `AttachDeviceEx`, with `STATUS_INVALID_PARAMETER_3`/`_4` for the mapping arguments.
   */
  AttachDevice(Domain: IommuDmaDomain, PhysicalDeviceObject: PhysicalDeviceObject, InputMappingIdBase = 0, MappingCount = 1): void {
    domains.attachDevice(this.#ctx, Domain, PhysicalDeviceObject, InputMappingIdBase, MappingCount);
  }

  /**
   * IOMMU_DOMAIN_DETACH_DEVICE (V1): detach a device attached with `AttachDevice`.
   * @param InputMappingId - the `InputMappingIdBase` used at attach time (0 except for Arm64 ACPI devices).
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER_1`…`_3`; `STATUS_DEVICE_REMOVED`.
   */
  DetachDevice(Domain: IommuDmaDomain, PhysicalDeviceObject: PhysicalDeviceObject, InputMappingId = 0): void {
    domains.detachDevice(this.#ctx, Domain, PhysicalDeviceObject, InputMappingId);
  }

  // ==== caller-owned page tables ===============================================================

  /**
   * IOMMU_DOMAIN_CONFIGURE (all versions): give an Unmanaged domain the caller's stage-1 tables.
   * Simulator on Arm64: the DMA engine walks them. `X64` configurations are reserved:
   * `STATUS_NOT_SUPPORTED`. On OS-managed domains (every native domain): `STATUS_INVALID_PARAMETER_1`.
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER_1` (not an Unmanaged domain);
   *   `STATUS_INVALID_PARAMETER_2` (malformed or refused configuration); `STATUS_NOT_SUPPORTED`.
   */
  ConfigureDomain(Domain: IommuDmaDomain, Configuration: DOMAIN_CONFIGURATION): void {
    tables.configureDomain(this.#ctx, Domain, Configuration);
  }

  /**
   * IOMMU_FLUSH_DOMAIN (all versions): invalidate the cached translations (IOTLB) of an Unmanaged
   * domain after the caller changed its tables.
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER_1` (not an Unmanaged domain: every native domain).
   */
  FlushDomain(Domain: IommuDmaDomain): void {
    tables.flushDomain(this.#ctx, Domain);
  }

  /**
   * IOMMU_FLUSH_DOMAIN_VA_LIST (all versions): invalidate the cached translations of listed addresses
   * of an Unmanaged domain.
   * @param LastLevel - only the last-level (leaf) entries changed.
   * @param Number_ - how many entries of `VaList` to use (`Number` in the WDK).
   * @param VaList - the input addresses (`bigint`) to invalidate.
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER_1` (not an Unmanaged domain);
   *   `STATUS_INVALID_PARAMETER_2` (`LastLevel` not a boolean); `STATUS_INVALID_PARAMETER_3`/`_4`
   *   (count or list malformed, or refused by the backend).
   */
  FlushDomainByVaList(Domain: IommuDmaDomain, LastLevel: boolean, Number_: number, VaList: readonly bigint[] | BigUint64Array): void {
    tables.flushDomainByVaList(this.#ctx, Domain, LastLevel, Number_, VaList);
  }

  /**
   * IOMMU_QUERY_INPUT_MAPPINGS (all versions): the device's input mapping (stream) IDs. Arm64 only
   * (simulator with `arch: 'arm64'`); x86 and the native backends: `STATUS_NOT_SUPPORTED`.
   * @param BufferLength - the caller's buffer size in elements (default: all).
   * @throws {@link IommuError} `STATUS_NOT_SUPPORTED`; `STATUS_BUFFER_TOO_SMALL`; `STATUS_INVALID_PARAMETER_1`/`_3`.
   */
  QueryInputMappings(
    PhysicalDeviceObject: PhysicalDeviceObject,
    BufferLength?: number,
  ): {
    /** The device's input mappings (at most `BufferLength` of them). */
    Buffer: INPUT_MAPPING_ELEMENT[];
    /** How many input mappings the device has. */
    ReturnLength: number;
  } {
    return tables.queryInputMappings(this.#ctx, PhysicalDeviceObject, BufferLength);
  }

  // ==== logical mappings =======================================================================

  /**
   * IOMMU_MAP_LOGICAL_RANGE_EX (V2, V3): map physical memory into a Translate domain.
   * Without an allocator `ExplicitLogicalAddress` is required (Min/Max ignored); with the Buddy
   * allocator it must be absent and the address is chosen in [Min, Max].
   * @param Permissions - `IOMMU_ACCESS_READ` | `IOMMU_ACCESS_WRITE` (non-zero; other bits 0).
   *   Write-only maps are device-readable on Linux: the driver sets the read/present bit.
   * @param PhysicalAddressToMap - the memory (`DmaMemory.asMdl()` etc.): page-aligned, whole pages.
   * @param ExplicitLogicalAddress - the IOVA to map at (page-aligned), or `null`.
   * @param MinLogicalAddress - lowest acceptable IOVA (inclusive), for the allocator.
   * @param MaxLogicalAddress - highest acceptable IOVA (inclusive), for the allocator.
   * @returns the logical address (IOVA) of the first byte (`LogicalAddressOut`).
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER_1` (not a Translate domain);
   *   `STATUS_INVALID_PARAMETER_2` (permissions); `STATUS_INVALID_PARAMETER_3` (memory not page-aligned,
   *   not whole pages, or not this platform's DMA memory); `STATUS_INVALID_PARAMETER_4` (address not
   *   aligned or outside the usable ranges); `STATUS_INVALID_PARAMETER_MIX` (Min/Max unsatisfiable);
   *   `STATUS_IN_USE` (explicit range already mapped); `STATUS_NOT_SUPPORTED` (explicit address vs
   *   allocator rules); `STATUS_INSUFFICIENT_RESOURCES` (memory, IOVA space, type1's mapping limit).
   */
  MapLogicalRangeEx(
    Domain: IommuDmaDomain,
    Permissions: number,
    PhysicalAddressToMap: IOMMU_MAP_PHYSICAL_ADDRESS,
    ExplicitLogicalAddress?: bigint | null,
    MinLogicalAddress?: bigint | null,
    MaxLogicalAddress?: bigint | null,
  ): bigint {
    return logical.mapLogicalRangeEx(this.#ctx, Domain, Permissions, PhysicalAddressToMap, ExplicitLogicalAddress, MinLogicalAddress, MaxLogicalAddress);
  }

  /**
   * IOMMU_MAP_LOGICAL_RANGE (V1): map an MDL's pages at `LogicalAddress` (page-aligned).
   * @throws {@link IommuError} as `MapLogicalRangeEx`: `STATUS_INVALID_PARAMETER_1`…`_4`, `STATUS_IN_USE`,
   *   `STATUS_INSUFFICIENT_RESOURCES`.
   */
  MapLogicalRange(Domain: IommuDmaDomain, Permissions: number, Mdl: MDL, LogicalAddress: bigint): void {
    logical.mapLogicalRange(this.#ctx, Domain, Permissions, Mdl, LogicalAddress);
  }

  /**
   * IOMMU_UNMAP_LOGICAL_RANGE (all versions): unmap `NumberOfPages` 4 KiB pages at `LogicalAddress`,
   * any page sub-range of logical mappings (Ex or V1). After it returns no device can reach the
   * pages. iommufd/type1 unmap the kernel area and map the kept parts again.
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER` (not mapped); `STATUS_INVALID_PARAMETER_1`…`_3`
   *   (domain, misaligned address, page count); `STATUS_UNSUCCESSFUL` (a kept part of a split mapping
   *   could not be mapped again).
   */
  UnmapLogicalRange(Domain: IommuDmaDomain, LogicalAddress: bigint, NumberOfPages: bigint | number): void {
    logical.unmapLogicalRange(this.#ctx, Domain, LogicalAddress, NumberOfPages);
  }

  // ==== identity mappings ======================================================================

  /**
   * IOMMU_MAP_IDENTITY_RANGE_EX (V2, V3): map memory at IOVA = its physical address, in a Translate
   * or PassThrough domain. Native: real physical addresses as root (else the synthetic namespace).
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER_1` (domain type); `STATUS_INVALID_PARAMETER_2`
   *   (permissions); `STATUS_INVALID_PARAMETER_3` (memory); `STATUS_IN_USE`; `STATUS_NOT_SUPPORTED`
   *   (Buddy-allocator domain).
   */
  MapIdentityRangeEx(Domain: IommuDmaDomain, Permissions: number, PhysicalAddressToMap: IOMMU_MAP_PHYSICAL_ADDRESS): void {
    identity.mapIdentityRangeEx(this.#ctx, Domain, Permissions, PhysicalAddressToMap);
  }

  /**
   * IOMMU_UNMAP_IDENTITY_RANGE_EX (V2, V3): remove an identity mapping (describe the same memory).
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER_1` (domain type); `STATUS_INVALID_PARAMETER_2`
   *   (memory malformed); `STATUS_INVALID_PARAMETER` (not mapped); `STATUS_NOT_SUPPORTED` (Buddy domain).
   */
  UnmapIdentityRangeEx(Domain: IommuDmaDomain, MappedPhysicalAddress: IOMMU_MAP_PHYSICAL_ADDRESS): void {
    identity.unmapIdentityRangeEx(this.#ctx, Domain, MappedPhysicalAddress);
  }

  /**
   * IOMMU_MAP_IDENTITY_RANGE (V1): identity-map an MDL's pages.
   * @throws {@link IommuError} as `MapIdentityRangeEx`.
   */
  MapIdentityRange(Domain: IommuDmaDomain, Permissions: number, Mdl: MDL): void {
    identity.mapIdentityRange(this.#ctx, Domain, Permissions, Mdl);
  }

  /**
   * IOMMU_UNMAP_IDENTITY_RANGE (V1): remove an identity mapping made with `MapIdentityRange`.
   * @throws {@link IommuError} as `UnmapIdentityRangeEx`.
   */
  UnmapIdentityRange(Domain: IommuDmaDomain, Mdl: MDL): void {
    identity.unmapIdentityRange(this.#ctx, Domain, Mdl);
  }

  // ==== reserved logical ranges ================================================================

  /**
   * IOMMU_RESERVE_LOGICAL_ADDRESS_RANGE (V2, V3): reserve `Size` bytes (whole pages) of a Translate
   * domain's logical space; explicit/Min/Max rules as `MapLogicalRangeEx`. Native backends reserve in
   * user space: the kernel cannot pre-allocate page tables, so "no allocation later" is not guaranteed.
   * @returns the token (`LogicalAddressBase`, `Size`).
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER_1` (domain type); `STATUS_INVALID_PARAMETER_2`
   *   (size); `STATUS_INVALID_PARAMETER_3` (explicit address); `STATUS_INVALID_PARAMETER_MIX`;
   *   `STATUS_IN_USE`; `STATUS_NOT_SUPPORTED`; `STATUS_INSUFFICIENT_RESOURCES`.
   */
  ReserveLogicalAddressRange(
    Domain: IommuDmaDomain,
    Size: bigint | number,
    ExplicitLogicalAddress?: bigint | null,
    MinLogicalAddress?: bigint | null,
    MaxLogicalAddress?: bigint | null,
  ): LogicalAddressToken {
    return reserved.reserveLogicalAddressRange(this.#ctx, Domain, Size, ExplicitLogicalAddress, MinLogicalAddress, MaxLogicalAddress);
  }

  /**
   * IOMMU_FREE_RESERVED_LOGICAL_ADDRESS_RANGE (V2, V3): free a token.
   * @throws {@link IommuError} `STATUS_RESOURCE_IN_USE` (a segment is still mapped);
   *   `STATUS_INVALID_PARAMETER_1` (not a live token).
   */
  FreeReservedLogicalAddressRange(LogicalAddressToken: LogicalAddressToken): void {
    reserved.freeReservedLogicalAddressRange(this.#ctx, LogicalAddressToken);
  }

  /**
   * IOMMU_MAP_RESERVED_LOGICAL_RANGE (V2, V3): map memory at `Offset` bytes (page-aligned) into a
   * token. Native: one kernel area per segment.
   * @returns the mapped segment (`MappedSegment`), for `UnmapReservedLogicalRange`.
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER_1` (token); `STATUS_INVALID_PARAMETER_2`
   *   (offset); `STATUS_INVALID_PARAMETER_3` (permissions); `STATUS_INVALID_PARAMETER_4` (memory);
   *   `STATUS_INVALID_PARAMETER_MIX` (segment beyond the token); `STATUS_RESOURCE_IN_USE` (that part is
   *   mapped); `STATUS_UNSUCCESSFUL` (the token's domain was deleted).
   */
  MapReservedLogicalRange(
    LogicalAddressToken: LogicalAddressToken,
    Offset: bigint | number,
    Permissions: number,
    PhysicalAddressToMap: IOMMU_MAP_PHYSICAL_ADDRESS,
  ): IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT {
    return reserved.mapReservedLogicalRange(this.#ctx, LogicalAddressToken, Offset, Permissions, PhysicalAddressToMap);
  }

  /**
   * IOMMU_UNMAP_RESERVED_LOGICAL_RANGE (V2, V3): unmap a segment; the token keeps the range.
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER` (the segment is not mapped, or unknown).
   */
  UnmapReservedLogicalRange(MappedSegment: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT): void {
    reserved.unmapReservedLogicalRange(this.#ctx, MappedSegment);
  }

  // ==== fault reporting ========================================================================

  /**
   * IOMMU_SET_DEVICE_FAULT_REPORTING_EX (V2, V3): turn fault reporting of a device on (with a handler)
   * or off. Windows always returns `STATUS_NOT_IMPLEMENTED`; dma-iommu implements it. Simulator: the
   * DMA engine's faults, synchronously. Native: the kernel's DMAR records from `/dev/kmsg` (root), at
   * most 3 faults per 5 s (VT-d rate limit).
   * @param InputMappingIdBase - 0 except for Arm64 ACPI devices.
   * @param FaultConfig - the handler and its context; required when enabling.
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER_1`…`_4`; `STATUS_NOT_SUPPORTED` (enabling on a
   *   backend that cannot observe faults here, e.g. `/dev/kmsg` not readable); `STATUS_DEVICE_REMOVED`.
   */
  SetDeviceFaultReportingEx(DmaDevice: IommuDmaDevice, InputMappingIdBase: number, Enable: boolean, FaultConfig?: DEVICE_FAULT_CONFIGURATION | null): void {
    faults.setDeviceFaultReportingEx(this.#ctx, DmaDevice, InputMappingIdBase, Enable, FaultConfig);
  }

  /**
   * IOMMU_SET_DEVICE_FAULT_REPORTING (V1): as `SetDeviceFaultReportingEx`, for a device given by its PDO.
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER_1`…`_4`.
   */
  SetDeviceFaultReporting(PhysicalDeviceObject: PhysicalDeviceObject, InputMappingIdBase: number, Enable: boolean, FaultConfig?: DEVICE_FAULT_CONFIGURATION | null): void {
    faults.setDeviceFaultReporting(this.#ctx, PhysicalDeviceObject, InputMappingIdBase, Enable, FaultConfig);
  }

  // ==== interface state change =================================================================

  /**
   * IOMMU_REGISTER_INTERFACE_STATE_CHANGE_CALLBACK (V2, V3): one callback per device, called at once
   * with the current state, then on change (simulator: device removal and policy change; native:
   * hot-unplug or removal of the device, from its VFIO request notifier).
   * @param Context - passed back to the callback.
   * @param StateFields - which states to watch (`AvailableDomainTypes`).
   * @throws {@link IommuError} `STATUS_UNSUCCESSFUL` (the device already has a callback);
   *   `STATUS_INVALID_PARAMETER_1`/`_3`; `STATUS_INVALID_PARAMETER_4` (no field selected).
   */
  RegisterInterfaceStateChangeCallback(
    StateChangeCallback: IOMMU_INTERFACE_STATE_CHANGE_CALLBACK,
    Context: unknown,
    DmaDevice: IommuDmaDevice,
    StateFields: IOMMU_INTERFACE_STATE_CHANGE_FIELDS,
  ): void {
    callbacks.registerInterfaceStateChangeCallback(this.#ctx, StateChangeCallback, Context, DmaDevice, StateFields);
  }

  /**
   * IOMMU_UNREGISTER_INTERFACE_STATE_CHANGE_CALLBACK (V2, V3).
   * @throws {@link IommuError} `STATUS_UNSUCCESSFUL` (that callback is not registered for the device).
   */
  UnregisterInterfaceStateChangeCallback(StateChangeCallback: IOMMU_INTERFACE_STATE_CHANGE_CALLBACK, DmaDevice: IommuDmaDevice): void {
    callbacks.unregisterInterfaceStateChangeCallback(this.#ctx, StateChangeCallback, DmaDevice);
  }

  // ==== PASID (V3) =============================================================================

  /**
   * IOMMU_PASID_DEVICE_CREATE (V3): a sub-device with a new PASID, of a device created with
   * `PasidConfigTypePasidTaggedDma` (simulator only: edu has no PASID capability).
   * @returns `{ PasidDevice, Asid }`.
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER_1` (the device is not PASID-tagged);
   *   `STATUS_NONE_MAPPED` (no PASID left); `STATUS_INSUFFICIENT_RESOURCES`.
   */
  CreatePasidDevice(DmaDevice: IommuDmaDevice): {
    /** The new PASID device. */
    PasidDevice: IommuDmaPasidDevice;
    /** Its PASID (address space ID), which the device puts in its tagged DMA. */
    Asid: number;
  } {
    return pasid.createPasidDevice(this.#ctx, DmaDevice);
  }

  /**
   * IOMMU_PASID_DEVICE_DELETE (V3): delete a PASID device and free its PASID.
   * @throws {@link IommuError} `STATUS_RESOURCE_IN_USE` (still attached); `STATUS_INVALID_PARAMETER_1`.
   */
  DeletePasidDevice(PasidDevice: IommuDmaPasidDevice): void {
    pasid.deletePasidDevice(this.#ctx, PasidDevice);
  }

  /**
   * IOMMU_DOMAIN_ATTACH_PASID_DEVICE (V3): PASID-tagged DMA of the sub-device translates through `Domain`.
   * @throws {@link IommuError} `STATUS_UNSUCCESSFUL` (already attached); `STATUS_INVALID_PARAMETER_1`
   *   (domain type); `STATUS_INVALID_PARAMETER_2`; `STATUS_ACCESS_DENIED`.
   */
  AttachPasidDevice(Domain: IommuDmaDomain, PasidDevice: IommuDmaPasidDevice): void {
    pasid.attachPasidDevice(this.#ctx, Domain, PasidDevice);
  }

  /**
   * IOMMU_DOMAIN_DETACH_PASID_DEVICE (V3).
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER_1` (not attached); `STATUS_DEVICE_REMOVED`.
   */
  DetachPasidDevice(PasidDevice: IommuDmaPasidDevice): void {
    pasid.detachPasidDevice(this.#ctx, PasidDevice);
  }

  // ==== lifetime ===============================================================================

  /**
   * Tear everything down in dependency order (segments and maps → PASIDs → devices detached →
   * tokens → domains → devices → memory → backend). Idempotent; continues past failures and
   * throws the first one at the end.
   */
  close(): void {
    closePlatform(this.#ctx, this.#unsubscribe);
  }

  /** `using` support: the same as {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Everything as JSON-able data: the platform's objects and the backend's own view. */
  inspect(): unknown {
    return inspectPlatform(this.#ctx);
  }
}
