// iommufd uAPI (include/uapi/linux/iommufd.h), carried here because the system headers of the
// build machine (linux-libc-dev 6.1) do not have it. Only what the addon uses. Every layout is
// checked at compile time against the kernel ABI (sizes and offsets are arch-independent:
// all 64-bit fields are __aligned_u64).
#pragma once

#include <cstddef>
#include <cstdint>
#include <sys/ioctl.h>

namespace dmaiommu::abi {

constexpr unsigned kIommufdType = ';';  // 0x3b

constexpr unsigned long IommufdCmd(unsigned nr) { return _IO(kIommufdType, nr); }

enum : unsigned {
  IOMMUFD_CMD_DESTROY = 0x80,
  IOMMUFD_CMD_IOAS_ALLOC = 0x81,
  IOMMUFD_CMD_IOAS_ALLOW_IOVAS = 0x82,
  IOMMUFD_CMD_IOAS_COPY = 0x83,
  IOMMUFD_CMD_IOAS_IOVA_RANGES = 0x84,
  IOMMUFD_CMD_IOAS_MAP = 0x85,
  IOMMUFD_CMD_IOAS_UNMAP = 0x86,
  IOMMUFD_CMD_OPTION = 0x87,
  IOMMUFD_CMD_VFIO_IOAS = 0x88,
  IOMMUFD_CMD_HWPT_ALLOC = 0x89,
  IOMMUFD_CMD_GET_HW_INFO = 0x8a,
  IOMMUFD_CMD_FAULT_QUEUE_ALLOC = 0x8e,
};

constexpr unsigned long IOMMU_DESTROY = IommufdCmd(IOMMUFD_CMD_DESTROY);
constexpr unsigned long IOMMU_IOAS_ALLOC = IommufdCmd(IOMMUFD_CMD_IOAS_ALLOC);
constexpr unsigned long IOMMU_IOAS_IOVA_RANGES = IommufdCmd(IOMMUFD_CMD_IOAS_IOVA_RANGES);
constexpr unsigned long IOMMU_IOAS_MAP = IommufdCmd(IOMMUFD_CMD_IOAS_MAP);
constexpr unsigned long IOMMU_IOAS_UNMAP = IommufdCmd(IOMMUFD_CMD_IOAS_UNMAP);
constexpr unsigned long IOMMU_OPTION = IommufdCmd(IOMMUFD_CMD_OPTION);
constexpr unsigned long IOMMU_HWPT_ALLOC = IommufdCmd(IOMMUFD_CMD_HWPT_ALLOC);
constexpr unsigned long IOMMU_GET_HW_INFO = IommufdCmd(IOMMUFD_CMD_GET_HW_INFO);
constexpr unsigned long IOMMU_FAULT_QUEUE_ALLOC = IommufdCmd(IOMMUFD_CMD_FAULT_QUEUE_ALLOC);

struct iommu_destroy {
  uint32_t size;
  uint32_t id;
};

struct iommu_ioas_alloc {
  uint32_t size;
  uint32_t flags;
  uint32_t out_ioas_id;
};

struct iommu_iova_range {
  alignas(8) uint64_t start;
  alignas(8) uint64_t last;
};

struct iommu_ioas_iova_ranges {
  uint32_t size;
  uint32_t ioas_id;
  uint32_t num_iovas;
  uint32_t __reserved;
  alignas(8) uint64_t allowed_iovas;
  alignas(8) uint64_t out_iova_alignment;
};

enum : uint32_t {
  IOMMU_IOAS_MAP_FIXED_IOVA = 1u << 0,
  IOMMU_IOAS_MAP_WRITEABLE = 1u << 1,
  IOMMU_IOAS_MAP_READABLE = 1u << 2,
};

struct iommu_ioas_map {
  uint32_t size;
  uint32_t flags;
  uint32_t ioas_id;
  uint32_t __reserved;
  alignas(8) uint64_t user_va;
  alignas(8) uint64_t length;
  alignas(8) uint64_t iova;
};

struct iommu_ioas_unmap {
  uint32_t size;
  uint32_t ioas_id;
  alignas(8) uint64_t iova;
  alignas(8) uint64_t length;
};

enum : uint32_t { IOMMU_OPTION_RLIMIT_MODE = 0, IOMMU_OPTION_HUGE_PAGES = 1 };
enum : uint16_t { IOMMU_OPTION_OP_SET = 0, IOMMU_OPTION_OP_GET = 1 };

struct iommu_option {
  uint32_t size;
  uint32_t option_id;
  uint16_t op;
  uint16_t __reserved;
  uint32_t object_id;
  alignas(8) uint64_t val64;
};

enum : uint32_t {
  IOMMU_HWPT_ALLOC_NEST_PARENT = 1u << 0,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1u << 1,
  IOMMU_HWPT_FAULT_ID_VALID = 1u << 2,
  IOMMU_HWPT_ALLOC_PASID = 1u << 3,
};

struct iommu_hwpt_alloc {
  uint32_t size;
  uint32_t flags;
  uint32_t dev_id;
  uint32_t pt_id;
  uint32_t out_hwpt_id;
  uint32_t __reserved;
  uint32_t data_type;
  uint32_t data_len;
  alignas(8) uint64_t data_uptr;
  uint32_t fault_id;
  uint32_t __reserved2;
};
// The 6.6 kernel knows only the first 24 bytes (min_size); bigger structs are fine as long as the
// tail is zero.
constexpr uint32_t kHwptAllocMinSize = 24;

enum : uint32_t {
  IOMMU_HW_INFO_TYPE_NONE = 0,
  IOMMU_HW_INFO_TYPE_INTEL_VTD = 1,
  IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2,
};

struct iommu_hw_info {
  uint32_t size;
  uint32_t flags;
  uint32_t dev_id;
  uint32_t data_len;
  alignas(8) uint64_t data_uptr;
  uint32_t out_data_type;
  uint8_t out_max_pasid_log2;
  uint8_t __reserved[3];
  alignas(8) uint64_t out_capabilities;
};

struct iommu_hw_info_vtd {
  uint32_t flags;
  uint32_t __reserved;
  alignas(8) uint64_t cap_reg;
  alignas(8) uint64_t ecap_reg;
};

struct iommu_fault_alloc {
  uint32_t size;
  uint32_t flags;
  uint32_t out_fault_id;
  uint32_t out_fault_fd;
};

// ---- compile-time checks against the kernel ABI ------------------------------------------------
// (Left alike on purpose: these lists mirror the kernel uAPI field by field, like the structs above;
// their likeness to vfio.h / iommufd.h / uapi.h is the ABI's own, and a table cannot hold static_asserts.)
static_assert(kIommufdType == 0x3b);
#if defined(__x86_64__) || defined(__aarch64__)
// _IO(';', nr) == 0x3b00 | nr on architectures with the generic ioctl encoding.
static_assert(IOMMU_DESTROY == 0x3b80);
static_assert(IOMMU_IOAS_ALLOC == 0x3b81);
static_assert(IOMMU_IOAS_IOVA_RANGES == 0x3b84);
static_assert(IOMMU_IOAS_MAP == 0x3b85);
static_assert(IOMMU_IOAS_UNMAP == 0x3b86);
static_assert(IOMMU_OPTION == 0x3b87);
static_assert(IOMMU_HWPT_ALLOC == 0x3b89);
static_assert(IOMMU_GET_HW_INFO == 0x3b8a);
static_assert(IOMMU_FAULT_QUEUE_ALLOC == 0x3b8e);
#endif

static_assert(sizeof(iommu_destroy) == 8);
static_assert(sizeof(iommu_ioas_alloc) == 12);
static_assert(offsetof(iommu_ioas_alloc, out_ioas_id) == 8);
static_assert(sizeof(iommu_iova_range) == 16);
static_assert(sizeof(iommu_ioas_iova_ranges) == 32);
static_assert(offsetof(iommu_ioas_iova_ranges, num_iovas) == 8);
static_assert(offsetof(iommu_ioas_iova_ranges, allowed_iovas) == 16);
static_assert(offsetof(iommu_ioas_iova_ranges, out_iova_alignment) == 24);
static_assert(sizeof(iommu_ioas_map) == 40);
static_assert(offsetof(iommu_ioas_map, user_va) == 16);
static_assert(offsetof(iommu_ioas_map, length) == 24);
static_assert(offsetof(iommu_ioas_map, iova) == 32);
static_assert(sizeof(iommu_ioas_unmap) == 24);
static_assert(offsetof(iommu_ioas_unmap, iova) == 8);
static_assert(offsetof(iommu_ioas_unmap, length) == 16);
static_assert(sizeof(iommu_option) == 24);
static_assert(offsetof(iommu_option, op) == 8);
static_assert(offsetof(iommu_option, object_id) == 12);
static_assert(offsetof(iommu_option, val64) == 16);
static_assert(sizeof(iommu_hwpt_alloc) == 48);
static_assert(offsetof(iommu_hwpt_alloc, pt_id) == 12);
static_assert(offsetof(iommu_hwpt_alloc, out_hwpt_id) == 16);
static_assert(offsetof(iommu_hwpt_alloc, data_type) == 24);
static_assert(offsetof(iommu_hwpt_alloc, data_uptr) == 32);
static_assert(offsetof(iommu_hwpt_alloc, fault_id) == 40);
static_assert(sizeof(iommu_hw_info) == 40);
static_assert(offsetof(iommu_hw_info, data_uptr) == 16);
static_assert(offsetof(iommu_hw_info, out_data_type) == 24);
static_assert(offsetof(iommu_hw_info, out_max_pasid_log2) == 28);
static_assert(offsetof(iommu_hw_info, out_capabilities) == 32);
static_assert(sizeof(iommu_hw_info_vtd) == 24);
static_assert(sizeof(iommu_fault_alloc) == 16);
static_assert(offsetof(iommu_fault_alloc, out_fault_fd) == 12);

}  // namespace dmaiommu::abi
