// Thin wrappers over the iommufd ioctls on a /dev/iommu fd: one function per ioctl, plain C++
// types, 0 (or a non-negative result) on success, -errno on failure. No Node-API.
#pragma once

#include <cstdint>
#include <vector>

namespace dmaiommu::iommufd {

struct IovaRange {
  uint64_t start;
  uint64_t last;  // inclusive
};

struct HwInfo {
  uint32_t data_type;
  uint8_t max_pasid_log2;
  uint64_t capabilities;
  std::vector<uint8_t> data;  // driver-specific (VT-d: iommu_hw_info_vtd)
};

int ioas_alloc(int fd, uint32_t* out_ioas_id);
int destroy(int fd, uint32_t id);
// The EMSGSIZE two-call protocol: ask with a small array, grow to the count the kernel reports.
int ioas_iova_ranges(int fd, uint32_t ioas_id, std::vector<IovaRange>* out, uint64_t* out_alignment);
// flags: IOMMU_IOAS_MAP_*; with FIXED_IOVA `*iova` is input, otherwise output.
int ioas_map(int fd, uint32_t ioas_id, uint32_t flags, uint64_t user_va, uint64_t length, uint64_t* iova);
// `*unmapped` receives the number of bytes the kernel removed.
int ioas_unmap(int fd, uint32_t ioas_id, uint64_t iova, uint64_t length, uint64_t* unmapped);
int hwpt_alloc(int fd, uint32_t dev_id, uint32_t pt_id, uint32_t flags, uint32_t* out_hwpt_id);
int get_hw_info(int fd, uint32_t dev_id, HwInfo* out);

}  // namespace dmaiommu::iommufd
