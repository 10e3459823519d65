/**
 * TypeScript shapes of the WDK structures the interface takes and returns. Field names are the
 * WDK's. 64-bit quantities are `bigint`; 32-bit ones `number`. Pointers to caller storage become
 * return values; linked lists may also be given as arrays.
 */
import type {
  IommuDmaDevice,
  IommuDmaDomain,
  IommuDmaPasidDevice,
  LogicalAddressToken,
  PhysicalDeviceObject,
} from '../core/objects.js';

export type ULONGLONG = bigint;

/** A memory descriptor list: the pages of a buffer. `PfnArray` is MmGetMdlPfnArray's content. */
export interface MDL {
  readonly StartVa?: bigint;
  /** Bytes described (from ByteOffset within the first page). */
  readonly ByteCount: number | bigint;
  /** Offset of the data within the first page. */
  readonly ByteOffset: number;
  /** One page frame number per page. */
  readonly PfnArray: readonly bigint[] | BigUint64Array;
}

export type IOMMU_MAP_PHYSICAL_ADDRESS =
  | { readonly MapType: 0; readonly Mdl: MDL | { readonly Mdl: MDL } }
  | { readonly MapType: 1; readonly ContiguousRange: { readonly Base: bigint; readonly Size: bigint } }
  | {
      readonly MapType: 2;
      readonly PfnArray: { readonly PageFrame: readonly bigint[] | BigUint64Array; readonly NumberOfPages: bigint | number };
    };

export interface IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG {
  readonly LogicalAllocatorType: number;
  readonly BuddyAllocatorConfig?: { readonly AddressWidth: number };
}

export interface IOMMU_DMA_RESERVED_REGION {
  readonly RegionNext?: IOMMU_DMA_RESERVED_REGION | null;
  readonly Base: bigint;
  readonly NumberOfPages: bigint | number;
  readonly ShouldMap: boolean;
}

export type IOMMU_DMA_DOMAIN_CREATION_FLAGS = bigint | number | { readonly AsUlonglong: bigint | number };

export interface IOMMU_DEVICE_CREATION_CONFIGURATION_ACPI {
  readonly InputMappingBase: number;
  readonly MappingsCount: number;
}

export interface IOMMU_DEVICE_CREATION_CONFIGURATION_PASID {
  readonly ConfigType: number;
  readonly SuppressPasidFaults?: boolean;
}

export interface IOMMU_DEVICE_CREATION_CONFIGURATION {
  /** The chain (LIST_ENTRY in C): next configuration, if any. An array is accepted too. */
  readonly NextConfiguration?: IOMMU_DEVICE_CREATION_CONFIGURATION | null;
  readonly ConfigType: number;
  readonly Acpi?: IOMMU_DEVICE_CREATION_CONFIGURATION_ACPI;
  readonly DeviceId?: unknown;
  readonly Pasid?: IOMMU_DEVICE_CREATION_CONFIGURATION_PASID;
}

export interface IOMMU_DMA_DEVICE_INFORMATION {
  readonly DefaultPasidEnabled: boolean;
  readonly PasidTaggedDmaEnabled: boolean;
  readonly PasidFaultsSuppressed: boolean;
}

export interface IOMMU_INTERFACE_STATE_CHANGE_FIELDS {
  readonly AvailableDomainTypes?: number | boolean;
  readonly AsULONG?: number;
}

export interface IOMMU_INTERFACE_STATE_CHANGE {
  readonly PresentFields: { readonly AvailableDomainTypes: number; readonly AsULONG: number };
  readonly AvailableDomainTypes: number;
}

export type IOMMU_INTERFACE_STATE_CHANGE_CALLBACK = (StateChange: IOMMU_INTERFACE_STATE_CHANGE, Context: unknown) => void;

export interface DOMAIN_CONFIGURATION_ARM64 {
  readonly Ttbr0: bigint;
  readonly Ttbr1: bigint;
  readonly Mair0: number;
  readonly Mair1: number;
  readonly InputSize0: number;
  readonly InputSize1: number;
  readonly CoherentTableWalks: boolean;
  readonly TranslationEnabled: boolean;
}

export interface DOMAIN_CONFIGURATION {
  readonly Type: number;
  readonly Arm64?: DOMAIN_CONFIGURATION_ARM64;
  readonly X64?: { readonly FirstLevelPageTableRoot: bigint; readonly TranslationEnabled: boolean };
}

export interface FAULT_INFORMATION_X64 {
  readonly DomainHandle: IommuDmaDomain | null;
  readonly FaultAddress: bigint;
  readonly Flags: { readonly FaultAddressValid: number };
  readonly Type: number;
  readonly IommuBaseAddress: bigint;
  readonly PciSegment: number;
}

export interface FAULT_INFORMATION_ARM64 {
  readonly DomainHandle: IommuDmaDomain | null;
  readonly FaultAddress: bigint;
  readonly PhysicalDeviceObject: PhysicalDeviceObject;
  readonly InputMappingId: number;
  readonly Flags: {
    readonly WriteNotRead: number;
    readonly InstructionNotData: number;
    readonly Privileged: number;
    readonly FaultAddressValid: number;
  };
  readonly Type: number;
  readonly IommuBaseAddress: bigint;
}

/** What the platform observed, beyond the WDK fields (not in the C structure). */
export interface FaultDetails {
  readonly bdf: string;
  readonly write: boolean;
  readonly pasid?: number;
  readonly reason: string;
  readonly reasonCode?: number;
  /** 'simulator' (the simulated DMA engine) or 'kmsg' (the real kernel's log). */
  readonly source: 'simulator' | 'kmsg';
  readonly raw?: string;
  readonly timestamp: number;
}

export interface FAULT_INFORMATION {
  readonly Type: number;
  readonly IsStage1: boolean;
  readonly X64?: FAULT_INFORMATION_X64;
  readonly Arm64?: FAULT_INFORMATION_ARM64;
  /** The faulting device (the WDK passes the PDO for Arm64 only; given here for every arch). */
  readonly PhysicalDeviceObject: PhysicalDeviceObject;
  readonly DmaDevice: IommuDmaDevice | null;
  readonly Details: FaultDetails;
}

export type IOMMU_DEVICE_FAULT_HANDLER = (Context: unknown, FaultInformation: FAULT_INFORMATION) => void;

export interface DEVICE_FAULT_CONFIGURATION {
  readonly FaultHandler: IOMMU_DEVICE_FAULT_HANDLER;
  readonly FaultContext?: unknown;
}

export interface INPUT_MAPPING_ELEMENT {
  readonly InputMappingId: number;
}

export interface IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT {
  readonly OwningToken: LogicalAddressToken;
  readonly Offset: bigint;
  readonly Size: bigint;
}

export type { IommuDmaDevice, IommuDmaDomain, IommuDmaPasidDevice, LogicalAddressToken, PhysicalDeviceObject };
