/**
 * WDK constants and enumerations of the DMA IOMMU interface (wdm.h), with their exact names and
 * numeric values. Values follow ../shared/reference/windows-iommu-ddi.md §1.3 and §3.2–3.3.
 */

// Interface versions (§1.3). VERSION_3 / MAX = 3 follow the header pattern for the V3 table.
/** `IoGetIommuInterface` (deprecated) version 1: the `DMA_IOMMU_INTERFACE` (V1 members). */
export const DMA_IOMMU_INTERFACE_VERSION_1 = 1;
/** The deprecated `IoGetIommuInterface`'s current version (1). */
export const DMA_IOMMU_INTERFACE_VERSION = 1;
/** `IoGetIommuInterfaceEx` version 1: `DMA_IOMMU_INTERFACE_EX` with the `V1` table. */
export const DMA_IOMMU_INTERFACE_EX_VERSION_1 = 1;
/** `IoGetIommuInterfaceEx` version 2: the `V2` table (devices, Ex calls, reserved ranges, state callbacks). */
export const DMA_IOMMU_INTERFACE_EX_VERSION_2 = 2;
/**
 * `IoGetIommuInterfaceEx` version 3: the `V3` table (V2 plus PASID and `QueryDeviceInfo`). Not in
 * public WDK headers; the value follows their pattern.
 */
export const DMA_IOMMU_INTERFACE_EX_VERSION_3 = 3;
/** Lowest version `IoGetIommuInterfaceEx` accepts (1); below it: `STATUS_NOT_SUPPORTED`. */
export const DMA_IOMMU_INTERFACE_EX_VERSION_MIN = 1;
/** Highest version `IoGetIommuInterfaceEx` accepts (3); above it: `STATUS_NOT_SUPPORTED`. */
export const DMA_IOMMU_INTERFACE_EX_VERSION_MAX = 3;
/** The default `IoGetIommuInterfaceEx` version of the WDK headers (1). */
export const DMA_IOMMU_INTERFACE_EX_VERSION = 1;

/** x64 sizes of the C structures (from the 24H2 PDB), reported as `Size`. */
export const DMA_IOMMU_INTERFACE_EX_SIZE = 0xe8;
/** x64 size of the C `DMA_IOMMU_INTERFACE` (from the 24H2 PDB). */
export const DMA_IOMMU_INTERFACE_SIZE = 0x70;

/** The IOMMU page size, in bytes: every logical and physical range is aligned to it. */
export const PAGE_SIZE = 4096;
/** log2 of {@link PAGE_SIZE}: a page frame number is a physical address `>> PAGE_SHIFT`. */
export const PAGE_SHIFT = 12;

// IOMMU_DMA_DOMAIN_TYPE
/** `IOMMU_DMA_DOMAIN_TYPE`: a remapping domain whose page tables the system owns (every backend). */
export const DomainTypeTranslate = 0;
/**
 * `IOMMU_DMA_DOMAIN_TYPE`: DMA is not translated; map calls are not needed. The simulator bypasses
 * translation; iommufd and type1 emulate it with identity maps of this process's DMA memory.
 */
export const DomainTypePassThrough = 1;
/**
 * `IOMMU_DMA_DOMAIN_TYPE`: a remapping domain whose page tables the caller owns (`ConfigureDomain`,
 * `FlushDomain`). Simulator on Arm64 only; elsewhere `STATUS_NOT_SUPPORTED`.
 */
export const DomainTypeUnmanaged = 2;
/** `IOMMU_DMA_DOMAIN_TYPE`: a stage-1 translate domain (named in the WDK, undocumented; not supported). */
export const DomainTypeTranslateS1 = 3;
/** `IOMMU_DMA_DOMAIN_TYPE`: the sentinel; not a valid type. */
export const DomainTypeMax = 4;
/** WDK `IOMMU_DMA_DOMAIN_TYPE`: one of the `DomainType*` values. Masks of types use `1 << type`. */
export type IOMMU_DMA_DOMAIN_TYPE = number;

// IOMMU_DMA_LOGICAL_ALLOCATOR_TYPE
// (Each WDK enumeration mirrors the WDK header value by value with its own TSDoc: the groups are
// alike in shape on purpose, as public exports named as the WDK names them.)
/** `IOMMU_DMA_LOGICAL_ALLOCATOR_TYPE`: no allocator; the caller gives every logical address. */
export const IommuDmaLogicalAllocatorNone = 0;
/**
 * `IOMMU_DMA_LOGICAL_ALLOCATOR_TYPE`: the buddy allocator (power-of-two blocks of at least 4 KiB,
 * low addresses first); explicit addresses are refused.
 */
export const IommuDmaLogicalAllocatorBuddy = 1;
/** `IOMMU_DMA_LOGICAL_ALLOCATOR_TYPE`: the sentinel; not a valid type. */
export const IommuDmaLogicalAllocatorMax = 2;
/** WDK `IOMMU_DMA_LOGICAL_ALLOCATOR_TYPE`: one of the `IommuDmaLogicalAllocator*` values. */
export type IOMMU_DMA_LOGICAL_ALLOCATOR_TYPE = number;

// IOMMU_MAP_PHYSICAL_ADDRESS_TYPE
/** `IOMMU_MAP_PHYSICAL_ADDRESS_TYPE`: the memory is described by an MDL. */
export const MapPhysicalAddressTypeMdl = 0;
/** `IOMMU_MAP_PHYSICAL_ADDRESS_TYPE`: a physically contiguous range (base + size in bytes). */
export const MapPhysicalAddressTypeContiguousRange = 1;
/** `IOMMU_MAP_PHYSICAL_ADDRESS_TYPE`: an array of page frame numbers. */
export const MapPhysicalAddressTypePfn = 2;
/** `IOMMU_MAP_PHYSICAL_ADDRESS_TYPE`: the sentinel; not a valid type. */
export const MapPhysicalAddressTypeMax = 3;
/** WDK `IOMMU_MAP_PHYSICAL_ADDRESS_TYPE`: one of the `MapPhysicalAddressType*` values. */
export type IOMMU_MAP_PHYSICAL_ADDRESS_TYPE = number;

// IOMMU_DEVICE_CREATION_CONFIGURATION_TYPE
/** `IOMMU_DEVICE_CREATION_CONFIGURATION_TYPE`: no configuration. */
export const IommuDeviceCreationConfigTypeNone = 0;
/** `IOMMU_DEVICE_CREATION_CONFIGURATION_TYPE`: ACPI input mappings (Arm64 only). */
export const IommuDeviceCreationConfigTypeAcpi = 1;
/** `IOMMU_DEVICE_CREATION_CONFIGURATION_TYPE`: an opaque device id (undocumented in the WDK). */
export const IommuDeviceCreationConfigTypeDeviceId = 2;
/** `IOMMU_DEVICE_CREATION_CONFIGURATION_TYPE`: a PASID configuration (V3). */
export const IommuDeviceCreationConfigTypePasid = 3;
/** `IOMMU_DEVICE_CREATION_CONFIGURATION_TYPE`: the sentinel; not a valid type. */
export const IommuDeviceCreationConfigTypeMax = 4;
/** WDK `IOMMU_DEVICE_CREATION_CONFIGURATION_TYPE`: one of the `IommuDeviceCreationConfigType*` values. */
export type IOMMU_DEVICE_CREATION_CONFIGURATION_TYPE = number;

// IOMMU_PASID_CONFIGURATION_TYPE
/** `IOMMU_PASID_CONFIGURATION_TYPE`: untagged DMA only, through the default PASID. */
export const PasidConfigTypeDefaultPasidOnly = 0;
/** `IOMMU_PASID_CONFIGURATION_TYPE`: PASID-tagged DMA enabled (allows `CreatePasidDevice`); the default PASID stays on. */
export const PasidConfigTypePasidTaggedDma = 1;
/** `IOMMU_PASID_CONFIGURATION_TYPE`: the sentinel; not a valid type. */
export const PasidConfigTypeMax = 2;
/** WDK `IOMMU_PASID_CONFIGURATION_TYPE`: one of the `PasidConfigType*` values. */
export type IOMMU_PASID_CONFIGURATION_TYPE = number;

// DOMAIN_CONFIGURATION_ARCH
/** `DOMAIN_CONFIGURATION_ARCH`: an Arm64 stage-1 configuration. */
export const DomainConfigurationArm64 = 0;
/** `DOMAIN_CONFIGURATION_ARCH`: x64 (reserved for the system; `ConfigureDomain` answers `STATUS_NOT_SUPPORTED`). */
export const DomainConfigurationX64 = 1;
/** `DOMAIN_CONFIGURATION_ARCH`: the sentinel; not valid. */
export const DomainConfigurationInvalid = 2;
/** WDK `DOMAIN_CONFIGURATION_ARCH`: one of the `DomainConfiguration*` values. */
export type DOMAIN_CONFIGURATION_ARCH = number;

// FAULT_INFORMATION_ARCH
/** `FAULT_INFORMATION_ARCH`: not valid. */
export const FaultInformationInvalid = 0;
/** `FAULT_INFORMATION_ARCH`: `FAULT_INFORMATION.Arm64` holds the fault. */
export const FaultInformationArm64 = 1;
/** `FAULT_INFORMATION_ARCH`: `FAULT_INFORMATION.X64` holds the fault. */
export const FaultInformationX64 = 2;
/** WDK `FAULT_INFORMATION_ARCH`: one of the `FaultInformation*` values. */
export type FAULT_INFORMATION_ARCH = number;

// FAULT_INFORMATION_ARM64_TYPE (also typedef'd FAULT_INFORMATION_X64_TYPE)
/** Fault type: the transaction is of a kind the IOMMU does not support. */
export const UnsupportedUpstreamTransaction = 0;
/** Fault type: the address is beyond the translation's input or output size. */
export const AddressSizeFault = 1;
/** Fault type: conflicting TLB entries matched. */
export const TlbMatchConflict = 2;
/** Fault type: an external abort during the access or the table walk. */
export const ExternalFault = 3;
/** Fault type: the mapping exists but does not allow the access (e.g. a write to a read-only IOVA). */
export const PermissionFault = 4;
/** Fault type: the access flag of the entry is clear. */
export const AccessFlagFault = 5;
/** Fault type: no valid mapping for the address (an unmapped IOVA). */
export const TranslationFault = 6;
/** Fault type: the sentinel; not a valid type. */
export const MaxFaultType = 7;
/** WDK `FAULT_INFORMATION_ARM64_TYPE`: one of the fault type values (`PermissionFault`, `TranslationFault`, …). */
export type FAULT_INFORMATION_ARM64_TYPE = number;
/** WDK `FAULT_INFORMATION_X64_TYPE`: the same enumeration as {@link FAULT_INFORMATION_ARM64_TYPE}. */
export type FAULT_INFORMATION_X64_TYPE = number;

// Map permission bits (§3.3)
/** Map permission: no access. */
export const IOMMU_ACCESS_NONE = 0;
/** Map permission bit 0: the device may read the memory. Combine with `|`; bits 31..2 must be 0. */
export const IOMMU_ACCESS_READ = 1;
/**
 * Map permission bit 1: the device may write the memory. Write-only maps are device-readable on
 * Linux: the driver sets the read/present bit (VT-d `DMA_FL_PTE_PRESENT` == `DMA_PTE_READ`).
 */
export const IOMMU_ACCESS_WRITE = 2;
