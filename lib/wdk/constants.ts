/**
 * WDK constants and enumerations of the DMA IOMMU interface (wdm.h), with their exact names and
 * numeric values. Values follow ../shared/reference/windows-iommu-ddi.md §1.3 and §3.2–3.3.
 */

// Interface versions (§1.3). VERSION_3 / MAX = 3 follow the header pattern for the V3 table.
export const DMA_IOMMU_INTERFACE_VERSION_1 = 1;
export const DMA_IOMMU_INTERFACE_VERSION = 1;
export const DMA_IOMMU_INTERFACE_EX_VERSION_1 = 1;
export const DMA_IOMMU_INTERFACE_EX_VERSION_2 = 2;
export const DMA_IOMMU_INTERFACE_EX_VERSION_3 = 3;
export const DMA_IOMMU_INTERFACE_EX_VERSION_MIN = 1;
export const DMA_IOMMU_INTERFACE_EX_VERSION_MAX = 3;
export const DMA_IOMMU_INTERFACE_EX_VERSION = 1;

/** x64 sizes of the C structures (from the 24H2 PDB), reported as `Size`. */
export const DMA_IOMMU_INTERFACE_EX_SIZE = 0xe8;
export const DMA_IOMMU_INTERFACE_SIZE = 0x70;

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

// IOMMU_DMA_DOMAIN_TYPE
export const DomainTypeTranslate = 0;
export const DomainTypePassThrough = 1;
export const DomainTypeUnmanaged = 2;
export const DomainTypeTranslateS1 = 3;
export const DomainTypeMax = 4;
export type IOMMU_DMA_DOMAIN_TYPE = number;

// IOMMU_DMA_LOGICAL_ALLOCATOR_TYPE
export const IommuDmaLogicalAllocatorNone = 0;
export const IommuDmaLogicalAllocatorBuddy = 1;
export const IommuDmaLogicalAllocatorMax = 2;
export type IOMMU_DMA_LOGICAL_ALLOCATOR_TYPE = number;

// IOMMU_MAP_PHYSICAL_ADDRESS_TYPE
export const MapPhysicalAddressTypeMdl = 0;
export const MapPhysicalAddressTypeContiguousRange = 1;
export const MapPhysicalAddressTypePfn = 2;
export const MapPhysicalAddressTypeMax = 3;
export type IOMMU_MAP_PHYSICAL_ADDRESS_TYPE = number;

// IOMMU_DEVICE_CREATION_CONFIGURATION_TYPE
export const IommuDeviceCreationConfigTypeNone = 0;
export const IommuDeviceCreationConfigTypeAcpi = 1;
export const IommuDeviceCreationConfigTypeDeviceId = 2;
export const IommuDeviceCreationConfigTypePasid = 3;
export const IommuDeviceCreationConfigTypeMax = 4;
export type IOMMU_DEVICE_CREATION_CONFIGURATION_TYPE = number;

// IOMMU_PASID_CONFIGURATION_TYPE
export const PasidConfigTypeDefaultPasidOnly = 0;
export const PasidConfigTypePasidTaggedDma = 1;
export const PasidConfigTypeMax = 2;
export type IOMMU_PASID_CONFIGURATION_TYPE = number;

// DOMAIN_CONFIGURATION_ARCH
export const DomainConfigurationArm64 = 0;
export const DomainConfigurationX64 = 1;
export const DomainConfigurationInvalid = 2;
export type DOMAIN_CONFIGURATION_ARCH = number;

// FAULT_INFORMATION_ARCH
export const FaultInformationInvalid = 0;
export const FaultInformationArm64 = 1;
export const FaultInformationX64 = 2;
export type FAULT_INFORMATION_ARCH = number;

// FAULT_INFORMATION_ARM64_TYPE (also typedef'd FAULT_INFORMATION_X64_TYPE)
export const UnsupportedUpstreamTransaction = 0;
export const AddressSizeFault = 1;
export const TlbMatchConflict = 2;
export const ExternalFault = 3;
export const PermissionFault = 4;
export const AccessFlagFault = 5;
export const TranslationFault = 6;
export const MaxFaultType = 7;
export type FAULT_INFORMATION_ARM64_TYPE = number;
export type FAULT_INFORMATION_X64_TYPE = number;

// Map permission bits (§3.3)
export const IOMMU_ACCESS_NONE = 0;
export const IOMMU_ACCESS_READ = 1;
export const IOMMU_ACCESS_WRITE = 2;
