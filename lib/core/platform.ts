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

  /** Allocate DMA-able memory (page-aligned, whole pages). */
  allocateDmaMemory(size: bigint | number, options: AllocateOptions = {}): DmaMemory {
    return services.allocateDmaMemory(this.#ctx, size, options);
  }

  /** PCI config space and BAR access of a created device, for drivers written in JS. */
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

  /** Every fault seen (most recent last; bounded). */
  faults(): readonly FaultRecord[] {
    return this.#ctx.faultLog.all();
  }

  /** Resolve with the next fault for `bdf` (or any); reject after `timeoutMs` (STATUS_TIMEOUT) or at close() (STATUS_INVALID_DEVICE_REQUEST). */
  waitForFault(filter: { bdf?: string; iova?: bigint } = {}, timeoutMs = 5000): Promise<FaultRecord> {
    return faults.waitForFault(this.#ctx, filter, timeoutMs);
  }

  // ==== devices ================================================================================

  /** IOMMU_DEVICE_CREATE. */
  CreateDevice(DeviceObject: PhysicalDeviceObject, DeviceConfig?: IOMMU_DEVICE_CREATION_CONFIGURATION | readonly IOMMU_DEVICE_CREATION_CONFIGURATION[] | null): IommuDmaDevice {
    return devices.createDevice(this.#ctx, DeviceObject, DeviceConfig);
  }

  /** IOMMU_DEVICE_DELETE. */
  DeleteDevice(DmaDevice: IommuDmaDevice): void {
    devices.deleteDevice(this.#ctx, DmaDevice);
  }

  /** IOMMU_DEVICE_QUERY_DOMAIN_TYPES: the mask of 1 << IOMMU_DMA_DOMAIN_TYPE (VOID in the WDK; returned here). */
  QueryAvailableDomainTypes(DmaDevice: IommuDmaDevice): number {
    return devices.queryAvailableDomainTypes(this.#ctx, DmaDevice);
  }

  /** IOMMU_DEVICE_QUERY_INFORMATION. `Size` is the caller's buffer size (≥ 3 bytes). */
  QueryDeviceInfo(DmaDevice: IommuDmaDevice, Size = 3): IOMMU_DMA_DEVICE_INFORMATION {
    return devices.queryDeviceInfo(this.#ctx, DmaDevice, Size);
  }

  // ==== domains ================================================================================

  /** IOMMU_DOMAIN_CREATE_EX. */
  CreateDomainEx(
    DomainType: number,
    Flags: IOMMU_DMA_DOMAIN_CREATION_FLAGS = 0n,
    LogicalAllocatorConfig?: IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG | null,
    ReservedRegions?: IOMMU_DMA_RESERVED_REGION | readonly IOMMU_DMA_RESERVED_REGION[] | null,
  ): IommuDmaDomain {
    return domains.createDomainEx(this.#ctx, DomainType, Flags, LogicalAllocatorConfig, ReservedRegions);
  }

  /** IOMMU_DOMAIN_CREATE (V1): OsManagedPageTable TRUE → Translate; FALSE → caller-owned (Unmanaged). */
  CreateDomain(OsManagedPageTable: boolean): IommuDmaDomain {
    return domains.createDomain(this.#ctx, OsManagedPageTable);
  }

  /** IOMMU_DOMAIN_DELETE. */
  DeleteDomain(Domain: IommuDmaDomain): void {
    domains.deleteDomain(this.#ctx, Domain);
  }

  /** IOMMU_DOMAIN_ATTACH_DEVICE_EX. */
  AttachDeviceEx(Domain: IommuDmaDomain, DmaDevice: IommuDmaDevice): void {
    domains.attachDeviceEx(this.#ctx, Domain, DmaDevice);
  }

  /** IOMMU_DOMAIN_DETACH_DEVICE_EX. */
  DetachDeviceEx(DmaDevice: IommuDmaDevice): void {
    domains.detachDeviceEx(this.#ctx, DmaDevice);
  }

  /** IOMMU_DOMAIN_ATTACH_DEVICE (V1). */
  AttachDevice(Domain: IommuDmaDomain, PhysicalDeviceObject: PhysicalDeviceObject, InputMappingIdBase = 0, MappingCount = 1): void {
    domains.attachDevice(this.#ctx, Domain, PhysicalDeviceObject, InputMappingIdBase, MappingCount);
  }

  /** IOMMU_DOMAIN_DETACH_DEVICE (V1). */
  DetachDevice(Domain: IommuDmaDomain, PhysicalDeviceObject: PhysicalDeviceObject, InputMappingId = 0): void {
    domains.detachDevice(this.#ctx, Domain, PhysicalDeviceObject, InputMappingId);
  }

  // ==== caller-owned page tables ===============================================================

  /** IOMMU_DOMAIN_CONFIGURE. */
  ConfigureDomain(Domain: IommuDmaDomain, Configuration: DOMAIN_CONFIGURATION): void {
    tables.configureDomain(this.#ctx, Domain, Configuration);
  }

  /** IOMMU_FLUSH_DOMAIN. */
  FlushDomain(Domain: IommuDmaDomain): void {
    tables.flushDomain(this.#ctx, Domain);
  }

  /** IOMMU_FLUSH_DOMAIN_VA_LIST. `VaList`: the addresses (bigint) to invalidate. */
  FlushDomainByVaList(Domain: IommuDmaDomain, LastLevel: boolean, Number_: number, VaList: readonly bigint[] | BigUint64Array): void {
    tables.flushDomainByVaList(this.#ctx, Domain, LastLevel, Number_, VaList);
  }

  /** IOMMU_QUERY_INPUT_MAPPINGS: returns { Buffer, ReturnLength }; BufferLength counts elements. */
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

  /** IOMMU_MAP_LOGICAL_RANGE_EX: returns LogicalAddressOut. */
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

  /** IOMMU_MAP_LOGICAL_RANGE (V1): map an MDL at LogicalAddress. */
  MapLogicalRange(Domain: IommuDmaDomain, Permissions: number, Mdl: MDL, LogicalAddress: bigint): void {
    logical.mapLogicalRange(this.#ctx, Domain, Permissions, Mdl, LogicalAddress);
  }

  /** IOMMU_UNMAP_LOGICAL_RANGE: any page sub-range of logical mappings (Ex or V1). */
  UnmapLogicalRange(Domain: IommuDmaDomain, LogicalAddress: bigint, NumberOfPages: bigint | number): void {
    logical.unmapLogicalRange(this.#ctx, Domain, LogicalAddress, NumberOfPages);
  }

  // ==== identity mappings ======================================================================

  /** IOMMU_MAP_IDENTITY_RANGE_EX. */
  MapIdentityRangeEx(Domain: IommuDmaDomain, Permissions: number, PhysicalAddressToMap: IOMMU_MAP_PHYSICAL_ADDRESS): void {
    identity.mapIdentityRangeEx(this.#ctx, Domain, Permissions, PhysicalAddressToMap);
  }

  /** IOMMU_UNMAP_IDENTITY_RANGE_EX. */
  UnmapIdentityRangeEx(Domain: IommuDmaDomain, MappedPhysicalAddress: IOMMU_MAP_PHYSICAL_ADDRESS): void {
    identity.unmapIdentityRangeEx(this.#ctx, Domain, MappedPhysicalAddress);
  }

  /** IOMMU_MAP_IDENTITY_RANGE (V1). */
  MapIdentityRange(Domain: IommuDmaDomain, Permissions: number, Mdl: MDL): void {
    identity.mapIdentityRange(this.#ctx, Domain, Permissions, Mdl);
  }

  /** IOMMU_UNMAP_IDENTITY_RANGE (V1). */
  UnmapIdentityRange(Domain: IommuDmaDomain, Mdl: MDL): void {
    identity.unmapIdentityRange(this.#ctx, Domain, Mdl);
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
    return reserved.reserveLogicalAddressRange(this.#ctx, Domain, Size, ExplicitLogicalAddress, MinLogicalAddress, MaxLogicalAddress);
  }

  /** IOMMU_FREE_RESERVED_LOGICAL_ADDRESS_RANGE. */
  FreeReservedLogicalAddressRange(LogicalAddressToken: LogicalAddressToken): void {
    reserved.freeReservedLogicalAddressRange(this.#ctx, LogicalAddressToken);
  }

  /** IOMMU_MAP_RESERVED_LOGICAL_RANGE: returns the MappedSegment. */
  MapReservedLogicalRange(
    LogicalAddressToken: LogicalAddressToken,
    Offset: bigint | number,
    Permissions: number,
    PhysicalAddressToMap: IOMMU_MAP_PHYSICAL_ADDRESS,
  ): IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT {
    return reserved.mapReservedLogicalRange(this.#ctx, LogicalAddressToken, Offset, Permissions, PhysicalAddressToMap);
  }

  /** IOMMU_UNMAP_RESERVED_LOGICAL_RANGE. */
  UnmapReservedLogicalRange(MappedSegment: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT): void {
    reserved.unmapReservedLogicalRange(this.#ctx, MappedSegment);
  }

  // ==== fault reporting ========================================================================

  /** IOMMU_SET_DEVICE_FAULT_REPORTING_EX (Windows returns STATUS_NOT_IMPLEMENTED; dma-iommu implements it). */
  SetDeviceFaultReportingEx(DmaDevice: IommuDmaDevice, InputMappingIdBase: number, Enable: boolean, FaultConfig?: DEVICE_FAULT_CONFIGURATION | null): void {
    faults.setDeviceFaultReportingEx(this.#ctx, DmaDevice, InputMappingIdBase, Enable, FaultConfig);
  }

  /** IOMMU_SET_DEVICE_FAULT_REPORTING (V1). */
  SetDeviceFaultReporting(PhysicalDeviceObject: PhysicalDeviceObject, InputMappingIdBase: number, Enable: boolean, FaultConfig?: DEVICE_FAULT_CONFIGURATION | null): void {
    faults.setDeviceFaultReporting(this.#ctx, PhysicalDeviceObject, InputMappingIdBase, Enable, FaultConfig);
  }

  // ==== interface state change =================================================================

  /** IOMMU_REGISTER_INTERFACE_STATE_CHANGE_CALLBACK: invokes the callback at once, then on change. */
  RegisterInterfaceStateChangeCallback(
    StateChangeCallback: IOMMU_INTERFACE_STATE_CHANGE_CALLBACK,
    Context: unknown,
    DmaDevice: IommuDmaDevice,
    StateFields: IOMMU_INTERFACE_STATE_CHANGE_FIELDS,
  ): void {
    callbacks.registerInterfaceStateChangeCallback(this.#ctx, StateChangeCallback, Context, DmaDevice, StateFields);
  }

  /** IOMMU_UNREGISTER_INTERFACE_STATE_CHANGE_CALLBACK. */
  UnregisterInterfaceStateChangeCallback(StateChangeCallback: IOMMU_INTERFACE_STATE_CHANGE_CALLBACK, DmaDevice: IommuDmaDevice): void {
    callbacks.unregisterInterfaceStateChangeCallback(this.#ctx, StateChangeCallback, DmaDevice);
  }

  // ==== PASID (V3) =============================================================================

  /** IOMMU_PASID_DEVICE_CREATE: returns { PasidDevice, Asid }. */
  CreatePasidDevice(DmaDevice: IommuDmaDevice): {
    /** The new PASID device. */
    PasidDevice: IommuDmaPasidDevice;
    /** Its PASID (address space ID), which the device puts in its tagged DMA. */
    Asid: number;
  } {
    return pasid.createPasidDevice(this.#ctx, DmaDevice);
  }

  /** IOMMU_PASID_DEVICE_DELETE. */
  DeletePasidDevice(PasidDevice: IommuDmaPasidDevice): void {
    pasid.deletePasidDevice(this.#ctx, PasidDevice);
  }

  /** IOMMU_DOMAIN_ATTACH_PASID_DEVICE. */
  AttachPasidDevice(Domain: IommuDmaDomain, PasidDevice: IommuDmaPasidDevice): void {
    pasid.attachPasidDevice(this.#ctx, Domain, PasidDevice);
  }

  /** IOMMU_DOMAIN_DETACH_PASID_DEVICE. */
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
