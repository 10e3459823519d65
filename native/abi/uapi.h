/*
 * The Linux VFIO and iommufd uAPI that the project's C programs use (vm/helper/dma-probe.c, the guest
 * tests' DMA probe, and bench/c/baseline.c, the benchmarks' C side), in the kernel's own names: one
 * copy for both. Carried because build hosts' linux-libc-dev (6.1 here) has no linux/iommufd.h and
 * none of the VFIO device-cdev ioctls. Do not include it together with <linux/vfio.h>.
 *
 * Every layout and ioctl number is checked at compile time against the values of the kernel's
 * include/uapi/linux/{vfio,iommufd}.h (6.12): sizes and offsets are arch-independent (64-bit
 * fields are __aligned_u64). The addon carries the same ABI as typed C++ (native/abi/iommufd.h, vfio.h),
 * checked against the same values and, where the build host has them, against the system headers
 * (native/abi/abi_check.cc).
 */
#ifndef DMA_IOMMU_UAPI_H
#define DMA_IOMMU_UAPI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>

#ifdef __cplusplus
#define UAPI_ASSERT(cond, what) static_assert(cond, what)
#else
#define UAPI_ASSERT(cond, what) _Static_assert(cond, what)
#endif
#define UAPI_U64 uint64_t __attribute__((aligned(8)))

/* ---- VFIO (include/uapi/linux/vfio.h) ------------------------------------------------------------ */
#define VFIO_TYPE ';'
#define VFIO_BASE 100
#define VFIO_GET_API_VERSION _IO(VFIO_TYPE, VFIO_BASE + 0)
#define VFIO_CHECK_EXTENSION _IO(VFIO_TYPE, VFIO_BASE + 1)
#define VFIO_SET_IOMMU _IO(VFIO_TYPE, VFIO_BASE + 2)
#define VFIO_GROUP_GET_STATUS _IO(VFIO_TYPE, VFIO_BASE + 3)
#define VFIO_GROUP_SET_CONTAINER _IO(VFIO_TYPE, VFIO_BASE + 4)
#define VFIO_GROUP_UNSET_CONTAINER _IO(VFIO_TYPE, VFIO_BASE + 5)
#define VFIO_GROUP_GET_DEVICE_FD _IO(VFIO_TYPE, VFIO_BASE + 6)
#define VFIO_DEVICE_GET_INFO _IO(VFIO_TYPE, VFIO_BASE + 7)
#define VFIO_DEVICE_GET_REGION_INFO _IO(VFIO_TYPE, VFIO_BASE + 8)
#define VFIO_IOMMU_GET_INFO _IO(VFIO_TYPE, VFIO_BASE + 12)
#define VFIO_IOMMU_MAP_DMA _IO(VFIO_TYPE, VFIO_BASE + 13)
#define VFIO_IOMMU_UNMAP_DMA _IO(VFIO_TYPE, VFIO_BASE + 14)
#define VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)
#define VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 19)
#define VFIO_DEVICE_DETACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 20)

#define VFIO_API_VERSION 0
#define VFIO_TYPE1v2_IOMMU 3
#define VFIO_GROUP_FLAGS_VIABLE (1u << 0)
#define VFIO_IOMMU_INFO_PGSIZES (1u << 0)
#define VFIO_IOMMU_INFO_CAPS (1u << 1)
#define VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE 1
#define VFIO_DMA_MAP_FLAG_READ (1u << 0)
#define VFIO_DMA_MAP_FLAG_WRITE (1u << 1)
#define VFIO_PCI_BAR0_REGION_INDEX 0
#define VFIO_PCI_CONFIG_REGION_INDEX 7

struct vfio_group_status { uint32_t argsz, flags; };
struct vfio_info_cap_header { uint16_t id, version; uint32_t next; };
struct vfio_iommu_type1_info {
  uint32_t argsz, flags;
  UAPI_U64 iova_pgsizes;
  uint32_t cap_offset, pad;
};
struct vfio_iova_range { uint64_t start, end; };
struct vfio_iommu_type1_info_cap_iova_range {
  struct vfio_info_cap_header header;
  uint32_t nr_iovas, reserved;
  struct vfio_iova_range iova_ranges[];
};
struct vfio_iommu_type1_dma_map { uint32_t argsz, flags; uint64_t vaddr, iova, size; };
struct vfio_iommu_type1_dma_unmap { uint32_t argsz, flags; uint64_t iova, size; };
struct vfio_device_info { uint32_t argsz, flags, num_regions, num_irqs, cap_offset, pad; };
struct vfio_region_info {
  uint32_t argsz, flags, index, cap_offset;
  UAPI_U64 size;
  UAPI_U64 offset;
};
/* Device cdev (6.6+), the 6.12 layouts: BIND has no token field yet, ATTACH no pasid yet. */
struct vfio_device_bind_iommufd { uint32_t argsz, flags; int32_t iommufd; uint32_t out_devid; };
struct vfio_device_attach_iommufd_pt { uint32_t argsz, flags, pt_id; };
struct vfio_device_detach_iommufd_pt { uint32_t argsz, flags; };

/* ---- iommufd (include/uapi/linux/iommufd.h) ------------------------------------------------------ */
#define IOMMUFD_TYPE ';'
#define IOMMU_DESTROY _IO(IOMMUFD_TYPE, 0x80)
#define IOMMU_IOAS_ALLOC _IO(IOMMUFD_TYPE, 0x81)
#define IOMMU_IOAS_IOVA_RANGES _IO(IOMMUFD_TYPE, 0x84)
#define IOMMU_IOAS_MAP _IO(IOMMUFD_TYPE, 0x85)
#define IOMMU_IOAS_UNMAP _IO(IOMMUFD_TYPE, 0x86)
#define IOMMU_HWPT_ALLOC _IO(IOMMUFD_TYPE, 0x89)
#define IOMMU_GET_HW_INFO _IO(IOMMUFD_TYPE, 0x8a)
#define IOMMU_IOAS_MAP_FIXED_IOVA (1u << 0)
#define IOMMU_IOAS_MAP_WRITEABLE (1u << 1)
#define IOMMU_IOAS_MAP_READABLE (1u << 2)

struct iommu_destroy { uint32_t size, id; };
struct iommu_ioas_alloc { uint32_t size, flags, out_ioas_id; };
struct iommu_iova_range { uint64_t start, last; };
struct iommu_ioas_iova_ranges {
  uint32_t size, ioas_id, num_iovas, __reserved;
  UAPI_U64 allowed_iovas;
  UAPI_U64 out_iova_alignment;
};
struct iommu_ioas_map {
  uint32_t size, flags, ioas_id, __reserved;
  UAPI_U64 user_va;
  UAPI_U64 length;
  UAPI_U64 iova;
};
struct iommu_ioas_unmap {
  uint32_t size, ioas_id;
  UAPI_U64 iova;
  UAPI_U64 length;
};
struct iommu_hwpt_alloc {
  uint32_t size, flags, dev_id, pt_id, out_hwpt_id, __reserved, data_type, data_len;
  UAPI_U64 data_uptr;
  uint32_t fault_id, __reserved2;
};
struct iommu_hw_info {
  uint32_t size, flags, dev_id, data_len;
  UAPI_U64 data_uptr;
  uint32_t out_data_type;
  uint8_t out_max_pasid_log2, __reserved[3];
  UAPI_U64 out_capabilities;
};

/* ---- checks against the kernel's values ---------------------------------------------------------- */
/* (One assertion per value, mirroring the kernel headers: alike in shape on purpose, like the lists in
 * iommufd.h / vfio.h, which the addon's C++ needs as typed constants; see the top of this file.) */
#if defined(__x86_64__) || defined(__aarch64__) /* _IO(';', n) = 0x3b00 | n where _IOC has this layout */
UAPI_ASSERT(VFIO_SET_IOMMU == 0x3b66, "VFIO_SET_IOMMU");
UAPI_ASSERT(VFIO_GROUP_GET_STATUS == 0x3b67, "VFIO_GROUP_GET_STATUS");
UAPI_ASSERT(VFIO_GROUP_SET_CONTAINER == 0x3b68, "VFIO_GROUP_SET_CONTAINER");
UAPI_ASSERT(VFIO_IOMMU_MAP_DMA == 0x3b71, "VFIO_IOMMU_MAP_DMA");
UAPI_ASSERT(VFIO_IOMMU_UNMAP_DMA == 0x3b72, "VFIO_IOMMU_UNMAP_DMA");
UAPI_ASSERT(VFIO_DEVICE_BIND_IOMMUFD == 0x3b76, "VFIO_DEVICE_BIND_IOMMUFD");
UAPI_ASSERT(VFIO_DEVICE_ATTACH_IOMMUFD_PT == 0x3b77, "VFIO_DEVICE_ATTACH_IOMMUFD_PT");
UAPI_ASSERT(VFIO_DEVICE_DETACH_IOMMUFD_PT == 0x3b78, "VFIO_DEVICE_DETACH_IOMMUFD_PT");
UAPI_ASSERT(IOMMU_IOAS_ALLOC == 0x3b81, "IOMMU_IOAS_ALLOC");
UAPI_ASSERT(IOMMU_IOAS_MAP == 0x3b85, "IOMMU_IOAS_MAP");
UAPI_ASSERT(IOMMU_IOAS_UNMAP == 0x3b86, "IOMMU_IOAS_UNMAP");
UAPI_ASSERT(IOMMU_HWPT_ALLOC == 0x3b89, "IOMMU_HWPT_ALLOC");
UAPI_ASSERT(IOMMU_GET_HW_INFO == 0x3b8a, "IOMMU_GET_HW_INFO");
#endif
UAPI_ASSERT(sizeof(struct vfio_group_status) == 8, "vfio_group_status");
UAPI_ASSERT(sizeof(struct vfio_iommu_type1_info) == 24, "vfio_iommu_type1_info");
UAPI_ASSERT(offsetof(struct vfio_iommu_type1_info, cap_offset) == 16, "vfio_iommu_type1_info.cap_offset");
UAPI_ASSERT(sizeof(struct vfio_iommu_type1_info_cap_iova_range) == 16, "vfio_iommu_type1_info_cap_iova_range");
UAPI_ASSERT(sizeof(struct vfio_iommu_type1_dma_map) == 32, "vfio_iommu_type1_dma_map");
UAPI_ASSERT(sizeof(struct vfio_iommu_type1_dma_unmap) == 24, "vfio_iommu_type1_dma_unmap");
UAPI_ASSERT(sizeof(struct vfio_device_info) == 24, "vfio_device_info");
UAPI_ASSERT(sizeof(struct vfio_region_info) == 32, "vfio_region_info");
UAPI_ASSERT(sizeof(struct vfio_device_bind_iommufd) == 16, "vfio_device_bind_iommufd");
UAPI_ASSERT(offsetof(struct vfio_device_bind_iommufd, out_devid) == 12, "vfio_device_bind_iommufd.out_devid");
UAPI_ASSERT(sizeof(struct vfio_device_attach_iommufd_pt) == 12, "vfio_device_attach_iommufd_pt");
UAPI_ASSERT(sizeof(struct iommu_destroy) == 8, "iommu_destroy");
UAPI_ASSERT(sizeof(struct iommu_ioas_alloc) == 12, "iommu_ioas_alloc");
UAPI_ASSERT(sizeof(struct iommu_ioas_iova_ranges) == 32, "iommu_ioas_iova_ranges");
UAPI_ASSERT(sizeof(struct iommu_ioas_map) == 40, "iommu_ioas_map");
UAPI_ASSERT(offsetof(struct iommu_ioas_map, user_va) == 16, "iommu_ioas_map.user_va");
UAPI_ASSERT(offsetof(struct iommu_ioas_map, iova) == 32, "iommu_ioas_map.iova");
UAPI_ASSERT(sizeof(struct iommu_ioas_unmap) == 24, "iommu_ioas_unmap");
UAPI_ASSERT(offsetof(struct iommu_ioas_unmap, iova) == 8, "iommu_ioas_unmap.iova");
UAPI_ASSERT(sizeof(struct iommu_hwpt_alloc) == 48, "iommu_hwpt_alloc");
UAPI_ASSERT(offsetof(struct iommu_hwpt_alloc, out_hwpt_id) == 16, "iommu_hwpt_alloc.out_hwpt_id");
UAPI_ASSERT(sizeof(struct iommu_hw_info) == 40, "iommu_hw_info");

#endif /* DMA_IOMMU_UAPI_H */
