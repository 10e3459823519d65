#include "iommufd.h"

#include <cerrno>
#include <cstring>

#include "../abi/iommufd.h"
#include "sys.h"

namespace dmaiommu::iommufd {
namespace abi = dmaiommu::abi;

template <typename T>
static T zeroed() {
  T v;
  std::memset(&v, 0, sizeof v);
  v.size = sizeof v;
  return v;
}

int ioas_alloc(int fd, uint32_t* out_ioas_id) {
  auto a = zeroed<abi::iommu_ioas_alloc>();
  int r = sys::xioctl(fd, abi::IOMMU_IOAS_ALLOC, &a);
  if (r < 0) return r;
  *out_ioas_id = a.out_ioas_id;
  return 0;
}

int destroy(int fd, uint32_t id) {
  auto a = zeroed<abi::iommu_destroy>();
  a.id = id;
  int r = sys::xioctl(fd, abi::IOMMU_DESTROY, &a);
  return r < 0 ? r : 0;
}

int ioas_iova_ranges(int fd, uint32_t ioas_id, std::vector<IovaRange>* out, uint64_t* out_alignment) {
  std::vector<abi::iommu_iova_range> buf(4);
  for (int attempt = 0; attempt < 8; attempt++) {
    auto a = zeroed<abi::iommu_ioas_iova_ranges>();
    a.ioas_id = ioas_id;
    a.num_iovas = static_cast<uint32_t>(buf.size());
    a.allowed_iovas = reinterpret_cast<uintptr_t>(buf.data());
    int r = sys::xioctl(fd, abi::IOMMU_IOAS_IOVA_RANGES, &a);
    if (r == -EMSGSIZE) {
      // The kernel wrote the number it needs; the ranges can change between calls (a device
      // attached meanwhile), hence the loop.
      buf.resize(a.num_iovas > buf.size() ? a.num_iovas : buf.size() * 2);
      continue;
    }
    if (r < 0) return r;
    out->clear();
    for (uint32_t i = 0; i < a.num_iovas && i < buf.size(); i++) out->push_back({buf[i].start, buf[i].last});
    *out_alignment = a.out_iova_alignment;
    return 0;
  }
  return -EMSGSIZE;
}

int ioas_map(int fd, uint32_t ioas_id, uint32_t flags, uint64_t user_va, uint64_t length, uint64_t* iova) {
  auto a = zeroed<abi::iommu_ioas_map>();
  a.flags = flags;
  a.ioas_id = ioas_id;
  a.user_va = user_va;
  a.length = length;
  a.iova = *iova;
  int r = sys::xioctl(fd, abi::IOMMU_IOAS_MAP, &a);
  if (r < 0) return r;
  *iova = a.iova;
  return 0;
}

int ioas_unmap(int fd, uint32_t ioas_id, uint64_t iova, uint64_t length, uint64_t* unmapped) {
  auto a = zeroed<abi::iommu_ioas_unmap>();
  a.ioas_id = ioas_id;
  a.iova = iova;
  a.length = length;
  int r = sys::xioctl(fd, abi::IOMMU_IOAS_UNMAP, &a);
  if (r < 0) return r;
  *unmapped = a.length;
  return 0;
}

int hwpt_alloc(int fd, uint32_t dev_id, uint32_t pt_id, uint32_t flags, uint32_t* out_hwpt_id) {
  auto a = zeroed<abi::iommu_hwpt_alloc>();
  a.flags = flags;
  a.dev_id = dev_id;
  a.pt_id = pt_id;
  // Full 48-byte struct: older kernels accept it because the tail they do not know is zero.
  int r = sys::xioctl(fd, abi::IOMMU_HWPT_ALLOC, &a);
  if (r < 0) return r;
  *out_hwpt_id = a.out_hwpt_id;
  return 0;
}

int get_hw_info(int fd, uint32_t dev_id, HwInfo* out) {
  std::vector<uint8_t> data(256, 0);
  auto a = zeroed<abi::iommu_hw_info>();
  a.dev_id = dev_id;
  a.data_len = static_cast<uint32_t>(data.size());
  a.data_uptr = reinterpret_cast<uintptr_t>(data.data());
  int r = sys::xioctl(fd, abi::IOMMU_GET_HW_INFO, &a);
  if (r < 0) return r;
  out->data_type = a.out_data_type;
  out->max_pasid_log2 = a.out_max_pasid_log2;
  out->capabilities = a.out_capabilities;
  data.resize(a.data_len < data.size() ? a.data_len : data.size());
  out->data = std::move(data);
  return 0;
}

}  // namespace dmaiommu::iommufd
