// Cross-checks the carried VFIO definitions (vfio.h here) against the installed <linux/vfio.h>
// when the build machine has one. The system header's macros would collide with our names, so its
// values are captured first, the macros undefined, then our headers included and compared.
// iommufd and the device-cdev ioctls have no system counterpart on the 6.1 headers; their
// static_asserts (sizes, offsets, ioctl numbers) live next to them in iommufd.h / vfio.h.
#include <cstddef>

#if __has_include(<linux/vfio.h>)
#include <linux/vfio.h>
#define DMA_IOMMU_HAVE_SYS_VFIO 1
namespace sysabi {
constexpr unsigned long k_VFIO_GET_API_VERSION = VFIO_GET_API_VERSION;
constexpr unsigned long k_VFIO_CHECK_EXTENSION = VFIO_CHECK_EXTENSION;
constexpr unsigned long k_VFIO_SET_IOMMU = VFIO_SET_IOMMU;
constexpr unsigned long k_VFIO_GROUP_GET_STATUS = VFIO_GROUP_GET_STATUS;
constexpr unsigned long k_VFIO_GROUP_SET_CONTAINER = VFIO_GROUP_SET_CONTAINER;
constexpr unsigned long k_VFIO_GROUP_UNSET_CONTAINER = VFIO_GROUP_UNSET_CONTAINER;
constexpr unsigned long k_VFIO_GROUP_GET_DEVICE_FD = VFIO_GROUP_GET_DEVICE_FD;
constexpr unsigned long k_VFIO_DEVICE_GET_INFO = VFIO_DEVICE_GET_INFO;
constexpr unsigned long k_VFIO_DEVICE_GET_REGION_INFO = VFIO_DEVICE_GET_REGION_INFO;
constexpr unsigned long k_VFIO_DEVICE_RESET = VFIO_DEVICE_RESET;
constexpr unsigned long k_VFIO_IOMMU_GET_INFO = VFIO_IOMMU_GET_INFO;
constexpr unsigned long k_VFIO_IOMMU_MAP_DMA = VFIO_IOMMU_MAP_DMA;
constexpr unsigned long k_VFIO_IOMMU_UNMAP_DMA = VFIO_IOMMU_UNMAP_DMA;
constexpr unsigned long k_VFIO_API_VERSION = VFIO_API_VERSION;
constexpr unsigned long k_VFIO_TYPE1_IOMMU = VFIO_TYPE1_IOMMU;
constexpr unsigned long k_VFIO_TYPE1v2_IOMMU = VFIO_TYPE1v2_IOMMU;
constexpr unsigned long k_VFIO_UNMAP_ALL = VFIO_UNMAP_ALL;
constexpr unsigned long k_VFIO_UPDATE_VADDR = VFIO_UPDATE_VADDR;
constexpr unsigned long k_VFIO_NOIOMMU_IOMMU = VFIO_NOIOMMU_IOMMU;
constexpr unsigned long k_VFIO_DMA_CC_IOMMU = VFIO_DMA_CC_IOMMU;
constexpr unsigned long k_VFIO_SPAPR_TCE_IOMMU = VFIO_SPAPR_TCE_IOMMU;
constexpr unsigned long k_VFIO_GROUP_FLAGS_VIABLE = VFIO_GROUP_FLAGS_VIABLE;
constexpr unsigned long k_VFIO_GROUP_FLAGS_CONTAINER_SET = VFIO_GROUP_FLAGS_CONTAINER_SET;
constexpr unsigned long k_VFIO_DEVICE_FLAGS_RESET = VFIO_DEVICE_FLAGS_RESET;
constexpr unsigned long k_VFIO_DEVICE_FLAGS_PCI = VFIO_DEVICE_FLAGS_PCI;
constexpr unsigned long k_VFIO_REGION_INFO_FLAG_READ = VFIO_REGION_INFO_FLAG_READ;
constexpr unsigned long k_VFIO_REGION_INFO_FLAG_WRITE = VFIO_REGION_INFO_FLAG_WRITE;
constexpr unsigned long k_VFIO_REGION_INFO_FLAG_MMAP = VFIO_REGION_INFO_FLAG_MMAP;
constexpr unsigned long k_VFIO_REGION_INFO_FLAG_CAPS = VFIO_REGION_INFO_FLAG_CAPS;
constexpr unsigned long k_VFIO_IOMMU_INFO_PGSIZES = VFIO_IOMMU_INFO_PGSIZES;
constexpr unsigned long k_VFIO_IOMMU_INFO_CAPS = VFIO_IOMMU_INFO_CAPS;
constexpr unsigned long k_VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE;
constexpr unsigned long k_VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION;
constexpr unsigned long k_VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL;
constexpr unsigned long k_VFIO_DMA_MAP_FLAG_READ = VFIO_DMA_MAP_FLAG_READ;
constexpr unsigned long k_VFIO_DMA_MAP_FLAG_WRITE = VFIO_DMA_MAP_FLAG_WRITE;
constexpr unsigned long k_VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
constexpr unsigned long k_VFIO_DMA_UNMAP_FLAG_ALL = VFIO_DMA_UNMAP_FLAG_ALL;
constexpr size_t type1_info = sizeof(struct vfio_iommu_type1_info);
constexpr size_t dma_map = sizeof(struct vfio_iommu_type1_dma_map);
constexpr size_t dma_unmap = sizeof(struct vfio_iommu_type1_dma_unmap);
constexpr size_t region_info = sizeof(struct vfio_region_info);
constexpr size_t device_info_cap_offset = offsetof(struct vfio_device_info, cap_offset);
constexpr size_t group_status = sizeof(struct vfio_group_status);
constexpr size_t cap_iova_range = sizeof(struct vfio_iommu_type1_info_cap_iova_range);
constexpr unsigned long config_region = VFIO_PCI_CONFIG_REGION_INDEX;
#if defined(VFIO_DEVICE_BIND_IOMMUFD)
#define DMA_IOMMU_HAVE_SYS_CDEV 1
constexpr unsigned long k_VFIO_DEVICE_BIND_IOMMUFD = VFIO_DEVICE_BIND_IOMMUFD;
constexpr unsigned long k_VFIO_DEVICE_ATTACH_IOMMUFD_PT = VFIO_DEVICE_ATTACH_IOMMUFD_PT;
constexpr unsigned long k_VFIO_DEVICE_DETACH_IOMMUFD_PT = VFIO_DEVICE_DETACH_IOMMUFD_PT;
#endif
}  // namespace sysabi
#undef VFIO_GET_API_VERSION
#undef VFIO_CHECK_EXTENSION
#undef VFIO_SET_IOMMU
#undef VFIO_GROUP_GET_STATUS
#undef VFIO_GROUP_SET_CONTAINER
#undef VFIO_GROUP_UNSET_CONTAINER
#undef VFIO_GROUP_GET_DEVICE_FD
#undef VFIO_DEVICE_GET_INFO
#undef VFIO_DEVICE_GET_REGION_INFO
#undef VFIO_DEVICE_RESET
#undef VFIO_IOMMU_GET_INFO
#undef VFIO_IOMMU_MAP_DMA
#undef VFIO_IOMMU_UNMAP_DMA
#undef VFIO_API_VERSION
#undef VFIO_TYPE1_IOMMU
#undef VFIO_TYPE1v2_IOMMU
#undef VFIO_UNMAP_ALL
#undef VFIO_UPDATE_VADDR
#undef VFIO_NOIOMMU_IOMMU
#undef VFIO_DMA_CC_IOMMU
#undef VFIO_SPAPR_TCE_IOMMU
#undef VFIO_GROUP_FLAGS_VIABLE
#undef VFIO_GROUP_FLAGS_CONTAINER_SET
#undef VFIO_DEVICE_FLAGS_RESET
#undef VFIO_DEVICE_FLAGS_PCI
#undef VFIO_REGION_INFO_FLAG_READ
#undef VFIO_REGION_INFO_FLAG_WRITE
#undef VFIO_REGION_INFO_FLAG_MMAP
#undef VFIO_REGION_INFO_FLAG_CAPS
#undef VFIO_IOMMU_INFO_PGSIZES
#undef VFIO_IOMMU_INFO_CAPS
#undef VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE
#undef VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION
#undef VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL
#undef VFIO_DMA_MAP_FLAG_READ
#undef VFIO_DMA_MAP_FLAG_WRITE
#undef VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP
#undef VFIO_DMA_UNMAP_FLAG_ALL
#undef VFIO_DEVICE_BIND_IOMMUFD
#undef VFIO_DEVICE_ATTACH_IOMMUFD_PT
#undef VFIO_DEVICE_DETACH_IOMMUFD_PT
#endif

#include "iommufd.h"
#include "vfio.h"

#if defined(DMA_IOMMU_HAVE_SYS_VFIO)
namespace a = dmaiommu::abi;
static_assert(a::VFIO_GET_API_VERSION == sysabi::k_VFIO_GET_API_VERSION);
static_assert(a::VFIO_CHECK_EXTENSION == sysabi::k_VFIO_CHECK_EXTENSION);
static_assert(a::VFIO_SET_IOMMU == sysabi::k_VFIO_SET_IOMMU);
static_assert(a::VFIO_GROUP_GET_STATUS == sysabi::k_VFIO_GROUP_GET_STATUS);
static_assert(a::VFIO_GROUP_SET_CONTAINER == sysabi::k_VFIO_GROUP_SET_CONTAINER);
static_assert(a::VFIO_GROUP_UNSET_CONTAINER == sysabi::k_VFIO_GROUP_UNSET_CONTAINER);
static_assert(a::VFIO_GROUP_GET_DEVICE_FD == sysabi::k_VFIO_GROUP_GET_DEVICE_FD);
static_assert(a::VFIO_DEVICE_GET_INFO == sysabi::k_VFIO_DEVICE_GET_INFO);
static_assert(a::VFIO_DEVICE_GET_REGION_INFO == sysabi::k_VFIO_DEVICE_GET_REGION_INFO);
static_assert(a::VFIO_DEVICE_RESET == sysabi::k_VFIO_DEVICE_RESET);
static_assert(a::VFIO_IOMMU_GET_INFO == sysabi::k_VFIO_IOMMU_GET_INFO);
static_assert(a::VFIO_IOMMU_MAP_DMA == sysabi::k_VFIO_IOMMU_MAP_DMA);
static_assert(a::VFIO_IOMMU_UNMAP_DMA == sysabi::k_VFIO_IOMMU_UNMAP_DMA);
static_assert(a::VFIO_API_VERSION == sysabi::k_VFIO_API_VERSION);
static_assert(a::VFIO_TYPE1_IOMMU == sysabi::k_VFIO_TYPE1_IOMMU);
static_assert(a::VFIO_TYPE1v2_IOMMU == sysabi::k_VFIO_TYPE1v2_IOMMU);
static_assert(a::VFIO_UNMAP_ALL == sysabi::k_VFIO_UNMAP_ALL);
static_assert(a::VFIO_UPDATE_VADDR == sysabi::k_VFIO_UPDATE_VADDR);
static_assert(a::VFIO_NOIOMMU_IOMMU == sysabi::k_VFIO_NOIOMMU_IOMMU);
static_assert(a::VFIO_DMA_CC_IOMMU == sysabi::k_VFIO_DMA_CC_IOMMU);
static_assert(a::VFIO_SPAPR_TCE_IOMMU == sysabi::k_VFIO_SPAPR_TCE_IOMMU);
static_assert(a::VFIO_GROUP_FLAGS_VIABLE == sysabi::k_VFIO_GROUP_FLAGS_VIABLE);
static_assert(a::VFIO_GROUP_FLAGS_CONTAINER_SET == sysabi::k_VFIO_GROUP_FLAGS_CONTAINER_SET);
static_assert(a::VFIO_DEVICE_FLAGS_RESET == sysabi::k_VFIO_DEVICE_FLAGS_RESET);
static_assert(a::VFIO_DEVICE_FLAGS_PCI == sysabi::k_VFIO_DEVICE_FLAGS_PCI);
static_assert(a::VFIO_REGION_INFO_FLAG_READ == sysabi::k_VFIO_REGION_INFO_FLAG_READ);
static_assert(a::VFIO_REGION_INFO_FLAG_WRITE == sysabi::k_VFIO_REGION_INFO_FLAG_WRITE);
static_assert(a::VFIO_REGION_INFO_FLAG_MMAP == sysabi::k_VFIO_REGION_INFO_FLAG_MMAP);
static_assert(a::VFIO_REGION_INFO_FLAG_CAPS == sysabi::k_VFIO_REGION_INFO_FLAG_CAPS);
static_assert(a::VFIO_IOMMU_INFO_PGSIZES == sysabi::k_VFIO_IOMMU_INFO_PGSIZES);
static_assert(a::VFIO_IOMMU_INFO_CAPS == sysabi::k_VFIO_IOMMU_INFO_CAPS);
static_assert(a::VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE == sysabi::k_VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE);
static_assert(a::VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION == sysabi::k_VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION);
static_assert(a::VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL == sysabi::k_VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
static_assert(a::VFIO_DMA_MAP_FLAG_READ == sysabi::k_VFIO_DMA_MAP_FLAG_READ);
static_assert(a::VFIO_DMA_MAP_FLAG_WRITE == sysabi::k_VFIO_DMA_MAP_FLAG_WRITE);
static_assert(a::VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP == sysabi::k_VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP);
static_assert(a::VFIO_DMA_UNMAP_FLAG_ALL == sysabi::k_VFIO_DMA_UNMAP_FLAG_ALL);
static_assert(sizeof(a::vfio_iommu_type1_info) == sysabi::type1_info);
static_assert(sizeof(a::vfio_iommu_type1_dma_map) == sysabi::dma_map);
static_assert(sizeof(a::vfio_iommu_type1_dma_unmap) == sysabi::dma_unmap);
static_assert(sizeof(a::vfio_region_info) == sysabi::region_info);
// 6.1 headers end the struct at cap_offset (20 B); newer ones add `pad` (24 B). Same prefix.
static_assert(offsetof(a::vfio_device_info, cap_offset) == sysabi::device_info_cap_offset);
static_assert(sizeof(a::vfio_group_status) == sysabi::group_status);
static_assert(sizeof(a::vfio_iommu_type1_info_cap_iova_range) == sysabi::cap_iova_range);
static_assert(a::VFIO_PCI_CONFIG_REGION_INDEX == sysabi::config_region);
#if defined(DMA_IOMMU_HAVE_SYS_CDEV)
static_assert(a::VFIO_DEVICE_BIND_IOMMUFD == sysabi::k_VFIO_DEVICE_BIND_IOMMUFD);
static_assert(a::VFIO_DEVICE_ATTACH_IOMMUFD_PT == sysabi::k_VFIO_DEVICE_ATTACH_IOMMUFD_PT);
static_assert(a::VFIO_DEVICE_DETACH_IOMMUFD_PT == sysabi::k_VFIO_DEVICE_DETACH_IOMMUFD_PT);
#endif
#endif

namespace dmaiommu::abi {
// Referenced by the addon's `abi.checked`, so this translation unit is always linked.
int abi_checked() { return 1; }
}  // namespace dmaiommu::abi
