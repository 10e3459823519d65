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

/** WDK `ULONGLONG`: an unsigned 64-bit integer, as a `bigint` (0 … 2^64−1). */
export type ULONGLONG = bigint;

/** A memory descriptor list: the pages of a buffer. `PfnArray` is MmGetMdlPfnArray's content. */
export interface MDL {
  /** Virtual address of the buffer's first page (informational; the IOMMU maps `PfnArray`). */
  readonly StartVa?: bigint;
  /** Bytes described (from ByteOffset within the first page). */
  readonly ByteCount: number | bigint;
  /** Offset of the data within the first page. */
  readonly ByteOffset: number;
  /** One page frame number per page. */
  readonly PfnArray: readonly bigint[] | BigUint64Array;
}

/**
 * WDK `IOMMU_MAP_PHYSICAL_ADDRESS`: the physical memory a map call maps, a tagged union selected
 * by `MapType`:
 * - `MapPhysicalAddressTypeMdl` (0): `Mdl`, an {@link MDL} (or `{ Mdl }`), as from `DmaMemory.mdl()`;
 * - `MapPhysicalAddressTypeContiguousRange` (1): `ContiguousRange.Base` (physical address) and
 *   `ContiguousRange.Size` (bytes), both `bigint`;
 * - `MapPhysicalAddressTypePfn` (2): `PfnArray.PageFrame` (page frame numbers) and
 *   `PfnArray.NumberOfPages`.
 *
 * The memory must be 4 KiB-aligned and a multiple of 4 KiB long. `DmaMemory.asMdl()`,
 * `asPfnArray()` and `asContiguousRange()` build each form. On every backend the pages must be DMA
 * memory of the same platform (from `Platform.allocateDmaMemory`, not freed; the simulator checks
 * what the kernel checks): other pages make the map call fail with `STATUS_INVALID_PARAMETER_n`
 * (n = this argument's position).
 */
export type IOMMU_MAP_PHYSICAL_ADDRESS =
  | {
      /** `MapPhysicalAddressTypeMdl`. */
      readonly MapType: 0;
      /** The MDL of the memory (or `{ Mdl }`, the C union member's shape). */
      readonly Mdl:
        | MDL
        | {
            /** The MDL of the memory. */
            readonly Mdl: MDL;
          };
    }
  | {
      /** `MapPhysicalAddressTypeContiguousRange`. */
      readonly MapType: 1;
      /** A physically contiguous range. */
      readonly ContiguousRange: {
        /** Physical address of the first byte (page-aligned). */
        readonly Base: bigint;
        /** Length in bytes (a multiple of 4 KiB). */
        readonly Size: bigint;
      };
    }
  | {
      /** `MapPhysicalAddressTypePfn`. */
      readonly MapType: 2;
      /** An array of page frame numbers. */
      readonly PfnArray: {
        /** Page frame numbers (physical address >> 12), one per 4 KiB page. */
        readonly PageFrame: readonly bigint[] | BigUint64Array;
        /** How many entries of `PageFrame` to map. */
        readonly NumberOfPages: bigint | number;
      };
    };

/**
 * WDK `IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG`: `CreateDomainEx`'s logical (IOVA) allocator. With an
 * allocator the domain chooses logical addresses itself; explicit addresses are then refused
 * (`STATUS_NOT_SUPPORTED`).
 */
export interface IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG {
  /** `IommuDmaLogicalAllocatorNone` (0: the caller chooses every address) or `IommuDmaLogicalAllocatorBuddy` (1). */
  readonly LogicalAllocatorType: number;
  /**
   * Buddy allocator settings: `AddressWidth`, the allocator's address width in bits (at most 63 on a
   * 64-bit OS; the domain's usable IOVA ranges limit it further). Set it to the widest width every attached device supports.
   */
  readonly BuddyAllocatorConfig?: {
    /** Address width in bits (1–63): the allocator hands out addresses below `2 ** AddressWidth`. */
    readonly AddressWidth: number;
  };
}

/**
 * WDK `IOMMU_DMA_RESERVED_REGION`: a logical range `CreateDomainEx` keeps out of the allocator (and
 * identity-maps when `ShouldMap`). Given as a `RegionNext` chain or as an array.
 */
export interface IOMMU_DMA_RESERVED_REGION {
  /** The next region of the chain, or `null`/absent at its end. */
  readonly RegionNext?: IOMMU_DMA_RESERVED_REGION | null;
  /** Start of the region: a page-aligned logical address (`bigint`, bytes). */
  readonly Base: bigint;
  /** Length of the region in 4 KiB pages. */
  readonly NumberOfPages: bigint | number;
  /** `true`: identity-map the region (logical address = physical address); `false`: leave it unmapped. */
  readonly ShouldMap: boolean;
}

/**
 * WDK `IOMMU_DMA_DOMAIN_CREATION_FLAGS` (a union passed by value; `AsUlonglong` or the plain number).
 * Every flag is reserved: it must be 0, else `CreateDomainEx` fails with `STATUS_INVALID_PARAMETER_2`.
 */
export type IOMMU_DMA_DOMAIN_CREATION_FLAGS =
  | bigint
  | number
  | {
      /** The union as one ULONGLONG: must be 0. */
      readonly AsUlonglong: bigint | number;
    };

/** WDK `IOMMU_DEVICE_CREATION_CONFIGURATION_ACPI`: the input mappings (stream IDs) of an ACPI device; Arm64 only. */
export interface IOMMU_DEVICE_CREATION_CONFIGURATION_ACPI {
  /** First input mapping (stream ID) of the device. */
  readonly InputMappingBase: number;
  /** Number of input mappings from `InputMappingBase`. */
  readonly MappingsCount: number;
}

/** WDK `IOMMU_DEVICE_CREATION_CONFIGURATION_PASID`: how `CreateDevice` sets up PASID use (V3). */
export interface IOMMU_DEVICE_CREATION_CONFIGURATION_PASID {
  /**
   * `PasidConfigTypeDefaultPasidOnly` (0: untagged DMA only) or `PasidConfigTypePasidTaggedDma` (1:
   * allows `CreatePasidDevice`; needs a PASID-capable device, which only the simulator has: the native
   * backends answer `STATUS_INVALID_PARAMETER_2`).
   */
  readonly ConfigType: number;
  /** `true`: faults of PASID-tagged DMA are not reported. Default `false`. */
  readonly SuppressPasidFaults?: boolean;
}

/** WDK `IOMMU_DEVICE_CREATION_CONFIGURATION`: one optional configuration of `CreateDevice`. */
export interface IOMMU_DEVICE_CREATION_CONFIGURATION {
  /** The chain (LIST_ENTRY in C): next configuration, if any. An array is accepted too. */
  readonly NextConfiguration?: IOMMU_DEVICE_CREATION_CONFIGURATION | null;
  /** Which union member is used: an `IommuDeviceCreationConfigType*` value (`Acpi`, `DeviceId`, `Pasid`). */
  readonly ConfigType: number;
  /** With `IommuDeviceCreationConfigTypeAcpi`: the ACPI input mappings (Arm64 only). */
  readonly Acpi?: IOMMU_DEVICE_CREATION_CONFIGURATION_ACPI;
  /** With `IommuDeviceCreationConfigTypeDeviceId`: an opaque device id (the WDK does not document it; not interpreted). */
  readonly DeviceId?: unknown;
  /** With `IommuDeviceCreationConfigTypePasid`: the PASID configuration. */
  readonly Pasid?: IOMMU_DEVICE_CREATION_CONFIGURATION_PASID;
}

/** WDK `IOMMU_DMA_DEVICE_INFORMATION`: what `QueryDeviceInfo` (V3) returns about a device. */
export interface IOMMU_DMA_DEVICE_INFORMATION {
  /** The device has a default PASID (its untagged DMA goes through the attached domain). */
  readonly DefaultPasidEnabled: boolean;
  /** PASID-tagged DMA (several address spaces) is enabled: the device was created with `PasidConfigTypePasidTaggedDma`. */
  readonly PasidTaggedDmaEnabled: boolean;
  /** Faults of PASID-tagged DMA are suppressed (`SuppressPasidFaults` at creation). */
  readonly PasidFaultsSuppressed: boolean;
}

/** WDK `IOMMU_INTERFACE_STATE_CHANGE_FIELDS`: at registration, which states the callback wants to hear about. */
export interface IOMMU_INTERFACE_STATE_CHANGE_FIELDS {
  /** Bit 0: notify when the available domain types change (the only field the WDK defines). */
  readonly AvailableDomainTypes?: number | boolean;
  /** The whole union as a ULONG (bit 0 = `AvailableDomainTypes`; the other bits are reserved and must be 0). */
  readonly AsULONG?: number;
}

/** WDK `IOMMU_INTERFACE_STATE_CHANGE`: what a state-change callback receives. */
export interface IOMMU_INTERFACE_STATE_CHANGE {
  /** Which states changed (bit 0 / `AvailableDomainTypes` = 1: the available domain types). */
  readonly PresentFields: {
    /** 1 when the available domain types changed. */
    readonly AvailableDomainTypes: number;
    /** The whole union as a ULONG (bit 0 = `AvailableDomainTypes`). */
    readonly AsULONG: number;
  };
  /** The new mask of available domain types: bit `1 << IOMMU_DMA_DOMAIN_TYPE` per type. */
  readonly AvailableDomainTypes: number;
}

/**
 * WDK `IOMMU_INTERFACE_STATE_CHANGE_CALLBACK`: called once at registration with the current state,
 * then (simulator only) on device removal and policy change. `Context` is the value given at
 * registration. What it throws goes to `PlatformOptions.onHandlerError`.
 */
export type IOMMU_INTERFACE_STATE_CHANGE_CALLBACK = (StateChange: IOMMU_INTERFACE_STATE_CHANGE, Context: unknown) => void;

/** WDK `DOMAIN_CONFIGURATION_ARM64`: the stage-1 tables an Unmanaged domain walks (simulator on Arm64 only). */
export interface DOMAIN_CONFIGURATION_ARM64 {
  /** Translation table base 0: physical address of the caller's table for the low input range. */
  readonly Ttbr0: bigint;
  /** Translation table base 1: physical address of the caller's table for the high input range. */
  readonly Ttbr1: bigint;
  /** Memory attribute indirection register 0. */
  readonly Mair0: number;
  /** Memory attribute indirection register 1. */
  readonly Mair1: number;
  /** Input address width (bits) for `Ttbr0`. */
  readonly InputSize0: number;
  /** Input address width (bits) for `Ttbr1`. */
  readonly InputSize1: number;
  /** Table walks are cache-coherent. */
  readonly CoherentTableWalks: boolean;
  /** `false`: traffic bypasses stage-1 translation. */
  readonly TranslationEnabled: boolean;
}

/**
 * WDK `DOMAIN_CONFIGURATION`: `ConfigureDomain`'s argument. `X64` is reserved for the system:
 * `ConfigureDomain` answers `STATUS_NOT_SUPPORTED` for it.
 */
export interface DOMAIN_CONFIGURATION {
  /** `DomainConfigurationArm64` (0) or `DomainConfigurationX64` (1): selects `Arm64` or `X64`. */
  readonly Type: number;
  /** With `DomainConfigurationArm64`: the stage-1 configuration. */
  readonly Arm64?: DOMAIN_CONFIGURATION_ARM64;
  /** With `DomainConfigurationX64` (reserved for the system): the first-level table root and whether translation is on. */
  readonly X64?: {
    /** Physical address of the first-level page table. */
    readonly FirstLevelPageTableRoot: bigint;
    /** `false`: DMA is not translated. */
    readonly TranslationEnabled: boolean;
  };
}

/** WDK `FAULT_INFORMATION_X64` (no WDK doc page; fields from the PDB): an x86_64 DMA fault. */
export interface FAULT_INFORMATION_X64 {
  /** The domain the faulting device was attached to, or `null` if none is known. */
  readonly DomainHandle: IommuDmaDomain | null;
  /** The faulting logical address (IOVA, `bigint`), valid when `Flags.FaultAddressValid` is 1. */
  readonly FaultAddress: bigint;
  /** `FaultAddressValid`: 1 when `FaultAddress` is meaningful. */
  readonly Flags: {
    /** 1 when `FaultAddress` is meaningful. */
    readonly FaultAddressValid: number;
  };
  /** The fault type: a `FAULT_INFORMATION_X64_TYPE` value (`PermissionFault`, `TranslationFault`, …). */
  readonly Type: number;
  /** Base address of the IOMMU unit that reported the fault (0 when unknown). */
  readonly IommuBaseAddress: bigint;
  /** PCI segment (domain) of the faulting device. */
  readonly PciSegment: number;
}

/** WDK `FAULT_INFORMATION_ARM64`: an Arm64 (SMMU) DMA fault (simulator with `arch: 'arm64'`). */
export interface FAULT_INFORMATION_ARM64 {
  /** The domain the faulting device was attached to, or `null` if none is known. */
  readonly DomainHandle: IommuDmaDomain | null;
  /** The faulting input address (`bigint`), valid when `Flags.FaultAddressValid` is 1. */
  readonly FaultAddress: bigint;
  /** The PDO of the faulting device. */
  readonly PhysicalDeviceObject: PhysicalDeviceObject;
  /** The input mapping (stream ID) of the faulting transaction. */
  readonly InputMappingId: number;
  /**
   * Bits of the access: `WriteNotRead` (a write), `InstructionNotData` (an instruction fetch),
   * `Privileged` (supervisor access), `FaultAddressValid` (`FaultAddress` is meaningful); each 0 or 1.
   */
  readonly Flags: {
    /** 1: write access was requested. */
    readonly WriteNotRead: number;
    /** 1: an instruction fetch was requested. */
    readonly InstructionNotData: number;
    /** 1: supervisor privilege was requested. */
    readonly Privileged: number;
    /** 1: `FaultAddress` is meaningful. */
    readonly FaultAddressValid: number;
  };
  /** The fault type: a `FAULT_INFORMATION_ARM64_TYPE` value (`PermissionFault`, `TranslationFault`, …). */
  readonly Type: number;
  /** Base address of the SMMU that reported the fault (0 when unknown). */
  readonly IommuBaseAddress: bigint;
}

/** What the platform observed, beyond the WDK fields (not in the C structure). */
export interface FaultDetails {
  /** PCI address of the faulting device (`0000:00:03.0`). */
  readonly bdf: string;
  /** `true` for a blocked write (device → memory), `false` for a read (or not reported: `directionKnown`). */
  readonly write: boolean;
  /** `false` when the IOMMU's record does not give the direction (virtio-iommu's no-mapping fault); `write` is then false. */
  readonly directionKnown?: boolean;
  /** The PASID of a PASID-tagged transaction (absent for untagged DMA). */
  readonly pasid?: number;
  /** The reason in words (the kernel's text for `kmsg` faults, e.g. `PTE Write access is not set`). */
  readonly reason: string;
  /** The hardware's fault reason code when known (VT-d: `0x05` = write access not set). */
  readonly reasonCode?: number;
  /** 'simulator' (the simulated DMA engine) or 'kmsg' (the real kernel's log). */
  readonly source: 'simulator' | 'kmsg';
  /** The kernel log record the fault was parsed from (`kmsg` faults only). */
  readonly raw?: string;
  /** When the fault was observed: milliseconds since the Unix epoch. */
  readonly timestamp: number;
}

/**
 * WDK `FAULT_INFORMATION`: what a device fault handler receives (`SetDeviceFaultReportingEx`).
 * `Type` selects `X64` or `Arm64`; `Details` is this library's addition.
 */
export interface FAULT_INFORMATION {
  /** `FaultInformationX64` (2) or `FaultInformationArm64` (1): which of `X64`/`Arm64` is present. */
  readonly Type: number;
  /** The fault happened in a stage-1 (first-level) translation (undocumented in the WDK). */
  readonly IsStage1: boolean;
  /** With `FaultInformationX64`: the x86_64 fault. */
  readonly X64?: FAULT_INFORMATION_X64;
  /** With `FaultInformationArm64`: the Arm64 fault. */
  readonly Arm64?: FAULT_INFORMATION_ARM64;
  /** The faulting device (the WDK passes the PDO for Arm64 only; given here for every arch). */
  readonly PhysicalDeviceObject: PhysicalDeviceObject;
  /** The `IommuDmaDevice` the fault belongs to, or `null` if the device has none. */
  readonly DmaDevice: IommuDmaDevice | null;
  /** What the platform observed beyond the WDK fields. */
  readonly Details: FaultDetails;
}

/**
 * WDK `IOMMU_DEVICE_FAULT_HANDLER`: called once per DMA fault of a device whose reporting is on.
 * `Context` is `DEVICE_FAULT_CONFIGURATION.FaultContext`. On the simulator it runs synchronously
 * inside the faulting DMA; on the native backends when the kernel's fault record is read from
 * `/dev/kmsg`. What it throws goes to `PlatformOptions.onHandlerError`.
 */
export type IOMMU_DEVICE_FAULT_HANDLER = (Context: unknown, FaultInformation: FAULT_INFORMATION) => void;

/** WDK `DEVICE_FAULT_CONFIGURATION`: `SetDeviceFaultReportingEx`'s handler and its context. */
export interface DEVICE_FAULT_CONFIGURATION {
  /** The function called for each fault. */
  readonly FaultHandler: IOMMU_DEVICE_FAULT_HANDLER;
  /** Passed to the handler as `Context`. */
  readonly FaultContext?: unknown;
}

/** WDK `INPUT_MAPPING_ELEMENT`: one entry of `QueryInputMappings`' buffer (Arm64 only). */
export interface INPUT_MAPPING_ELEMENT {
  /** An input mapping (stream ID) of the device. */
  readonly InputMappingId: number;
}

/**
 * WDK `IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT`: a mapped piece of a reserved range, as
 * `MapReservedLogicalRange` fills it in; `UnmapReservedLogicalRange` takes it back and invalidates it.
 */
export interface IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT {
  /** The token (reserved range) the segment belongs to. */
  readonly OwningToken: LogicalAddressToken;
  /** Offset of the segment within the token, in bytes (page-aligned). */
  readonly Offset: bigint;
  /** Length of the segment in bytes (a multiple of 4 KiB). */
  readonly Size: bigint;
}

export type { IommuDmaDevice, IommuDmaDomain, IommuDmaPasidDevice, LogicalAddressToken, PhysicalDeviceObject };
