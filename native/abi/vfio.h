// VFIO uAPI (include/uapi/linux/vfio.h): the device-cdev ioctls (6.6+, absent from the build
// machine's 6.1 headers), the generic device ioctls and the legacy type1 container/group ioctls.
// Carried here so the addon does not depend on the installed header version; abi_check.cc
// compares the long-standing part with <linux/vfio.h> when that header is present.
#pragma once

#include <cstddef>
#include <cstdint>
#include <sys/ioctl.h>

namespace dmaiommu::abi {

constexpr unsigned kVfioType = ';';
constexpr unsigned kVfioBase = 100;
constexpr unsigned long VfioCmd(unsigned n) { return _IO(kVfioType, kVfioBase + n); }

// ---- container / group (legacy) ----------------------------------------------------------------
constexpr unsigned long VFIO_GET_API_VERSION = VfioCmd(0);
constexpr unsigned long VFIO_CHECK_EXTENSION = VfioCmd(1);
constexpr unsigned long VFIO_SET_IOMMU = VfioCmd(2);
constexpr unsigned long VFIO_GROUP_GET_STATUS = VfioCmd(3);
constexpr unsigned long VFIO_GROUP_SET_CONTAINER = VfioCmd(4);
constexpr unsigned long VFIO_GROUP_UNSET_CONTAINER = VfioCmd(5);
constexpr unsigned long VFIO_GROUP_GET_DEVICE_FD = VfioCmd(6);
// ---- device ------------------------------------------------------------------------------------
constexpr unsigned long VFIO_DEVICE_GET_INFO = VfioCmd(7);
constexpr unsigned long VFIO_DEVICE_GET_REGION_INFO = VfioCmd(8);
constexpr unsigned long VFIO_DEVICE_RESET = VfioCmd(11);
// ---- type1 container ---------------------------------------------------------------------------
constexpr unsigned long VFIO_IOMMU_GET_INFO = VfioCmd(12);
constexpr unsigned long VFIO_IOMMU_MAP_DMA = VfioCmd(13);
constexpr unsigned long VFIO_IOMMU_UNMAP_DMA = VfioCmd(14);
// ---- device cdev (6.6+) ------------------------------------------------------------------------
constexpr unsigned long VFIO_DEVICE_BIND_IOMMUFD = VfioCmd(18);
constexpr unsigned long VFIO_DEVICE_ATTACH_IOMMUFD_PT = VfioCmd(19);
constexpr unsigned long VFIO_DEVICE_DETACH_IOMMUFD_PT = VfioCmd(20);

constexpr int VFIO_API_VERSION = 0;

enum : int {
  VFIO_TYPE1_IOMMU = 1,
  VFIO_SPAPR_TCE_IOMMU = 2,
  VFIO_TYPE1v2_IOMMU = 3,
  VFIO_DMA_CC_IOMMU = 4,
  VFIO_NOIOMMU_IOMMU = 8,
  VFIO_UNMAP_ALL = 9,
  VFIO_UPDATE_VADDR = 10,
};

enum : uint32_t {
  VFIO_GROUP_FLAGS_VIABLE = 1u << 0,
  VFIO_GROUP_FLAGS_CONTAINER_SET = 1u << 1,
};

struct vfio_group_status {
  uint32_t argsz;
  uint32_t flags;
};

struct vfio_device_info {
  uint32_t argsz;
  uint32_t flags;
  uint32_t num_regions;
  uint32_t num_irqs;
  uint32_t cap_offset;
  uint32_t pad;
};
constexpr uint32_t kDeviceInfoMinSize = 16;  // up to num_irqs

enum : uint32_t {
  VFIO_DEVICE_FLAGS_RESET = 1u << 0,
  VFIO_DEVICE_FLAGS_PCI = 1u << 1,
};

struct vfio_region_info {
  uint32_t argsz;
  uint32_t flags;
  uint32_t index;
  uint32_t cap_offset;
  alignas(8) uint64_t size;
  alignas(8) uint64_t offset;
};

enum : uint32_t {
  VFIO_REGION_INFO_FLAG_READ = 1u << 0,
  VFIO_REGION_INFO_FLAG_WRITE = 1u << 1,
  VFIO_REGION_INFO_FLAG_MMAP = 1u << 2,
  VFIO_REGION_INFO_FLAG_CAPS = 1u << 3,
};

enum : uint32_t {
  VFIO_PCI_BAR0_REGION_INDEX = 0,
  VFIO_PCI_ROM_REGION_INDEX = 6,
  VFIO_PCI_CONFIG_REGION_INDEX = 7,
  VFIO_PCI_NUM_REGIONS = 9,
};

struct vfio_info_cap_header {
  uint16_t id;
  uint16_t version;
  uint32_t next;
};

struct vfio_iommu_type1_info {
  uint32_t argsz;
  uint32_t flags;
  alignas(8) uint64_t iova_pgsizes;
  uint32_t cap_offset;
  uint32_t pad;
};

enum : uint32_t {
  VFIO_IOMMU_INFO_PGSIZES = 1u << 0,
  VFIO_IOMMU_INFO_CAPS = 1u << 1,
};

enum : uint16_t {
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3,
};

struct vfio_iova_range {
  uint64_t start;
  uint64_t end;  // inclusive
};

struct vfio_iommu_type1_info_cap_iova_range {
  vfio_info_cap_header header;
  uint32_t nr_iovas;
  uint32_t reserved;
  // vfio_iova_range iova_ranges[] follows at offset 16
};

struct vfio_iommu_type1_info_dma_avail {
  vfio_info_cap_header header;
  uint32_t avail;
};

// The type1 DMA structs, field by field as include/uapi/linux/vfio.h has them (alike because the
// kernel's are; left unmerged on purpose).
struct vfio_iommu_type1_dma_map {
  uint32_t argsz;
  uint32_t flags;
  uint64_t vaddr;
  uint64_t iova;
  uint64_t size;
};

enum : uint32_t {
  VFIO_DMA_MAP_FLAG_READ = 1u << 0,
  VFIO_DMA_MAP_FLAG_WRITE = 1u << 1,
};

struct vfio_iommu_type1_dma_unmap {
  uint32_t argsz;
  uint32_t flags;
  uint64_t iova;
  uint64_t size;
};

enum : uint32_t {
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1u << 0,
  VFIO_DMA_UNMAP_FLAG_ALL = 1u << 1,
};

// ---- device cdev -------------------------------------------------------------------------------
struct vfio_device_bind_iommufd {
  uint32_t argsz;
  uint32_t flags;
  int32_t iommufd;
  uint32_t out_devid;
};
// The 6.6 kernel's struct is 16 bytes (minsz 16); newer kernels append token_uuid_ptr, which is
// only read when VFIO_DEVICE_BIND_FLAG_TOKEN is set, so the 16-byte form works everywhere.

struct vfio_device_attach_iommufd_pt {
  uint32_t argsz;
  uint32_t flags;
  uint32_t pt_id;
};
// 12 bytes = minsz; the pasid field (6.15+) is only read with VFIO_DEVICE_ATTACH_PASID.

struct vfio_device_detach_iommufd_pt {
  uint32_t argsz;
  uint32_t flags;
};

// ---- compile-time checks against the kernel ABI ------------------------------------------------
// (Left alike on purpose: these lists mirror the kernel uAPI field by field, like the structs above;
// their likeness to vfio.h / iommufd.h / uapi.h is the ABI's own, and a table cannot hold static_asserts.)
#if defined(__x86_64__) || defined(__aarch64__)
static_assert(VFIO_GET_API_VERSION == 0x3b64);
static_assert(VFIO_SET_IOMMU == 0x3b66);
static_assert(VFIO_GROUP_GET_DEVICE_FD == 0x3b6a);
static_assert(VFIO_DEVICE_GET_REGION_INFO == 0x3b6c);
static_assert(VFIO_IOMMU_GET_INFO == 0x3b70);
static_assert(VFIO_IOMMU_MAP_DMA == 0x3b71);
static_assert(VFIO_IOMMU_UNMAP_DMA == 0x3b72);
static_assert(VFIO_DEVICE_BIND_IOMMUFD == 0x3b76);
static_assert(VFIO_DEVICE_ATTACH_IOMMUFD_PT == 0x3b77);
static_assert(VFIO_DEVICE_DETACH_IOMMUFD_PT == 0x3b78);
#endif
static_assert(sizeof(vfio_group_status) == 8);
static_assert(sizeof(vfio_device_info) == 24);
static_assert(sizeof(vfio_region_info) == 32);
static_assert(offsetof(vfio_region_info, size) == 16);
static_assert(offsetof(vfio_region_info, offset) == 24);
static_assert(sizeof(vfio_info_cap_header) == 8);
static_assert(sizeof(vfio_iommu_type1_info) == 24);
static_assert(offsetof(vfio_iommu_type1_info, iova_pgsizes) == 8);
static_assert(offsetof(vfio_iommu_type1_info, cap_offset) == 16);
static_assert(sizeof(vfio_iova_range) == 16);
static_assert(sizeof(vfio_iommu_type1_info_cap_iova_range) == 16);
static_assert(sizeof(vfio_iommu_type1_info_dma_avail) == 12);
static_assert(sizeof(vfio_iommu_type1_dma_map) == 32);
static_assert(offsetof(vfio_iommu_type1_dma_map, vaddr) == 8);
static_assert(offsetof(vfio_iommu_type1_dma_map, iova) == 16);
static_assert(offsetof(vfio_iommu_type1_dma_map, size) == 24);
static_assert(sizeof(vfio_iommu_type1_dma_unmap) == 24);
static_assert(sizeof(vfio_device_bind_iommufd) == 16);
static_assert(offsetof(vfio_device_bind_iommufd, out_devid) == 12);
static_assert(sizeof(vfio_device_attach_iommufd_pt) == 12);
static_assert(offsetof(vfio_device_attach_iommufd_pt, pt_id) == 8);
static_assert(sizeof(vfio_device_detach_iommufd_pt) == 8);

}  // namespace dmaiommu::abi
