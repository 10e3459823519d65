#include "iommufd.h"

#include <cerrno>
#include <cstring>

#include "../abi/iommufd.h"
#include "call.h"
#include "sys.h"

namespace dmaiommu::iommufd {
namespace abi = dmaiommu::abi;
using ioctl::call;
using ioctl::zeroed;

int ioas_alloc(int fd, uint32_t* out_ioas_id) {
  return call(fd, abi::IOMMU_IOAS_ALLOC, abi::iommu_ioas_alloc{}, [&](auto& a) { *out_ioas_id = a.out_ioas_id; });
}

int destroy(int fd, uint32_t id) { return call(fd, abi::IOMMU_DESTROY, abi::iommu_destroy{.id = id}); }

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
  abi::iommu_ioas_map arg{.flags = flags, .ioas_id = ioas_id, .user_va = user_va, .length = length, .iova = *iova};
  return call(fd, abi::IOMMU_IOAS_MAP, arg, [&](auto& a) { *iova = a.iova; });
}

int ioas_unmap(int fd, uint32_t ioas_id, uint64_t iova, uint64_t length, uint64_t* unmapped) {
  abi::iommu_ioas_unmap arg{.ioas_id = ioas_id, .iova = iova, .length = length};
  return call(fd, abi::IOMMU_IOAS_UNMAP, arg, [&](auto& a) { *unmapped = a.length; });
}

// The full 48-byte struct: older kernels accept it because the tail they do not know is zero.
int hwpt_alloc(int fd, uint32_t dev_id, uint32_t pt_id, uint32_t flags, uint32_t* out_hwpt_id) {
  abi::iommu_hwpt_alloc arg{.flags = flags, .dev_id = dev_id, .pt_id = pt_id};
  return call(fd, abi::IOMMU_HWPT_ALLOC, arg, [&](auto& a) { *out_hwpt_id = a.out_hwpt_id; });
}

int get_hw_info(int fd, uint32_t dev_id, HwInfo* out) {
  std::vector<uint8_t> data(256, 0);
  abi::iommu_hw_info arg{.dev_id = dev_id, .data_len = static_cast<uint32_t>(data.size()), .data_uptr = reinterpret_cast<uintptr_t>(data.data())};
  return call(fd, abi::IOMMU_GET_HW_INFO, arg, [&](auto& a) {
    data.resize(a.data_len < data.size() ? a.data_len : data.size());
    *out = {a.out_data_type, a.out_max_pasid_log2, a.out_capabilities, std::move(data)};
  });
}

}  // namespace dmaiommu::iommufd
