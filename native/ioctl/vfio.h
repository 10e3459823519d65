// Thin wrappers over the VFIO ioctls: device cdev (BIND/ATTACH/DETACH), generic device
// (GET_INFO, GET_REGION_INFO, region pread/pwrite) and the legacy type1 container/group
// model. Plain C++ types; 0 / non-negative on success, -errno on failure. No Node-API.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dmaiommu::vfio {

// ---- device cdev -------------------------------------------------------------------------------
int device_bind_iommufd(int device_fd, int iommufd, uint32_t* out_dev_id);
// `pt_id` in: IOAS or HWPT id; *out_pt_id: the HWPT the kernel really attached.
int device_attach_iommufd_pt(int device_fd, uint32_t pt_id, uint32_t* out_pt_id);
int device_detach_iommufd_pt(int device_fd);

// ---- generic device ----------------------------------------------------------------------------
struct DeviceInfo {
  uint32_t flags;
  uint32_t num_regions;
  uint32_t num_irqs;
};
struct RegionInfo {
  uint32_t flags;
  uint64_t size;
  uint64_t offset;
};
int device_get_info(int device_fd, DeviceInfo* out);
int device_get_region_info(int device_fd, uint32_t index, RegionInfo* out);
// One access of `size` bytes (1, 2, 4, 8) at the absolute file offset (region offset + offset).
int region_read(int device_fd, uint64_t file_offset, unsigned size, uint64_t* value);
int region_write(int device_fd, uint64_t file_offset, unsigned size, uint64_t value);

// ---- type1 container / group -------------------------------------------------------------------
int get_api_version(int container_fd);
// > 0 supported, 0 not supported, < 0 -errno.
int check_extension(int container_fd, int extension);
int set_iommu(int container_fd, int iommu_type);
int group_get_status(int group_fd, uint32_t* out_flags);
int group_set_container(int group_fd, int container_fd);
int group_unset_container(int group_fd);
// Returns the new device fd or -errno.
int group_get_device_fd(int group_fd, const std::string& name);

struct IovaRange {
  uint64_t start;
  uint64_t end;  // inclusive
};
struct IommuInfo {
  uint32_t flags;
  uint64_t iova_pgsizes;
  bool has_ranges;
  std::vector<IovaRange> ranges;
  bool has_dma_avail;
  uint32_t dma_avail;
};
// VFIO_IOMMU_GET_INFO with the capability chain (argsz grows until the chain fits).
int iommu_get_info(int container_fd, IommuInfo* out);
int iommu_map_dma(int container_fd, uint32_t flags, uint64_t vaddr, uint64_t iova, uint64_t size);
// *unmapped receives the byte count the kernel removed (0 when nothing was mapped there).
int iommu_unmap_dma(int container_fd, uint32_t flags, uint64_t iova, uint64_t size, uint64_t* unmapped);

}  // namespace dmaiommu::vfio
