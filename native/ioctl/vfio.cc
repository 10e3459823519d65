#include "vfio.h"

#include <cerrno>
#include <cstring>

#include "../abi/vfio.h"
#include "call.h"
#include "sys.h"

namespace dmaiommu::vfio {
namespace abi = dmaiommu::abi;

using ioctl::call;

int device_bind_iommufd(int device_fd, int iommufd, uint32_t* out_dev_id) {
  abi::vfio_device_bind_iommufd arg{.iommufd = iommufd};
  return call(device_fd, abi::VFIO_DEVICE_BIND_IOMMUFD, arg, [&](auto& a) { *out_dev_id = a.out_devid; });
}

int device_attach_iommufd_pt(int device_fd, uint32_t pt_id, uint32_t* out_pt_id) {
  abi::vfio_device_attach_iommufd_pt arg{.pt_id = pt_id};
  return call(device_fd, abi::VFIO_DEVICE_ATTACH_IOMMUFD_PT, arg, [&](auto& a) { *out_pt_id = a.pt_id; });
}

int device_detach_iommufd_pt(int device_fd) {
  return call(device_fd, abi::VFIO_DEVICE_DETACH_IOMMUFD_PT, abi::vfio_device_detach_iommufd_pt{});
}

int device_get_info(int device_fd, DeviceInfo* out) {
  return call(device_fd, abi::VFIO_DEVICE_GET_INFO, abi::vfio_device_info{}, [&](auto& a) { *out = {a.flags, a.num_regions, a.num_irqs}; });
}

int device_get_region_info(int device_fd, uint32_t index, RegionInfo* out) {
  abi::vfio_region_info arg{.index = index};
  return call(device_fd, abi::VFIO_DEVICE_GET_REGION_INFO, arg, [&](auto& a) { *out = {a.flags, a.size, a.offset}; });
}

int region_read(int device_fd, uint64_t file_offset, unsigned size, uint64_t* value) {
  if (size != 1 && size != 2 && size != 4 && size != 8) return -EINVAL;
  uint8_t buf[8] = {0};
  int r = sys::pread_exact(device_fd, buf, size, file_offset);
  if (r < 0) return r;
  uint64_t v = 0;
  std::memcpy(&v, buf, size);  // little-endian hosts (x86-64, arm64 LE)
  *value = v;
  return 0;
}

int region_write(int device_fd, uint64_t file_offset, unsigned size, uint64_t value) {
  if (size != 1 && size != 2 && size != 4 && size != 8) return -EINVAL;
  uint8_t buf[8];
  std::memcpy(buf, &value, 8);
  return sys::pwrite_exact(device_fd, buf, size, file_offset);
}

int get_api_version(int container_fd) { return sys::xioctl_int(container_fd, abi::VFIO_GET_API_VERSION, 0); }

int check_extension(int container_fd, int extension) {
  return sys::xioctl_int(container_fd, abi::VFIO_CHECK_EXTENSION, static_cast<unsigned long>(extension));
}

int set_iommu(int container_fd, int iommu_type) {
  int r = sys::xioctl_int(container_fd, abi::VFIO_SET_IOMMU, static_cast<unsigned long>(iommu_type));
  return r < 0 ? r : 0;
}

int group_get_status(int group_fd, uint32_t* out_flags) {
  return call(group_fd, abi::VFIO_GROUP_GET_STATUS, abi::vfio_group_status{}, [&](auto& a) { *out_flags = a.flags; });
}

int group_set_container(int group_fd, int container_fd) {
  int c = container_fd;
  int r = sys::xioctl(group_fd, abi::VFIO_GROUP_SET_CONTAINER, &c);
  return r < 0 ? r : 0;
}

int group_unset_container(int group_fd) {
  int r = sys::xioctl_int(group_fd, abi::VFIO_GROUP_UNSET_CONTAINER, 0);
  return r < 0 ? r : 0;
}

int group_get_device_fd(int group_fd, const std::string& name) {
  // The kernel reads a NUL-terminated string; std::string::c_str() provides it.
  return sys::xioctl(group_fd, abi::VFIO_GROUP_GET_DEVICE_FD, const_cast<char*>(name.c_str()));
}

int iommu_get_info(int container_fd, IommuInfo* out) {
  std::vector<uint8_t> buf(sizeof(abi::vfio_iommu_type1_info) + 256, 0);
  for (int attempt = 0; attempt < 8; attempt++) {
    std::memset(buf.data(), 0, buf.size());
    auto* info = reinterpret_cast<abi::vfio_iommu_type1_info*>(buf.data());
    info->argsz = static_cast<uint32_t>(buf.size());
    int r = sys::xioctl(container_fd, abi::VFIO_IOMMU_GET_INFO, info);
    if (r < 0) return r;
    if (info->argsz > buf.size()) {
      // The capability chain did not fit: the kernel reports the size it needs, no error.
      buf.resize(info->argsz);
      continue;
    }
    out->flags = info->flags;
    out->iova_pgsizes = (info->flags & abi::VFIO_IOMMU_INFO_PGSIZES) ? info->iova_pgsizes : 0;
    out->has_ranges = false;
    out->has_dma_avail = false;
    out->dma_avail = 0;
    out->ranges.clear();
    if (!(info->flags & abi::VFIO_IOMMU_INFO_CAPS) || info->cap_offset == 0) return 0;
    uint32_t off = info->cap_offset;
    for (int hops = 0; off != 0 && hops < 64; hops++) {
      if (off < sizeof(abi::vfio_iommu_type1_info) || off + sizeof(abi::vfio_info_cap_header) > buf.size())
        return -EPROTO;
      abi::vfio_info_cap_header hdr;
      std::memcpy(&hdr, buf.data() + off, sizeof hdr);
      if (hdr.id == abi::VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
        if (off + sizeof(abi::vfio_iommu_type1_info_cap_iova_range) > buf.size()) return -EPROTO;
        abi::vfio_iommu_type1_info_cap_iova_range cap;
        std::memcpy(&cap, buf.data() + off, sizeof cap);
        size_t first = off + sizeof cap;
        if (first + static_cast<size_t>(cap.nr_iovas) * sizeof(abi::vfio_iova_range) > buf.size()) return -EPROTO;
        for (uint32_t i = 0; i < cap.nr_iovas; i++) {
          abi::vfio_iova_range rg;
          std::memcpy(&rg, buf.data() + first + i * sizeof rg, sizeof rg);
          out->ranges.push_back({rg.start, rg.end});
        }
        out->has_ranges = true;
      } else if (hdr.id == abi::VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
        if (off + sizeof(abi::vfio_iommu_type1_info_dma_avail) > buf.size()) return -EPROTO;
        abi::vfio_iommu_type1_info_dma_avail cap;
        std::memcpy(&cap, buf.data() + off, sizeof cap);
        out->has_dma_avail = true;
        out->dma_avail = cap.avail;
      }
      if (hdr.next != 0 && hdr.next <= off) return -EPROTO;  // the chain only moves forward
      off = hdr.next;
    }
    return 0;
  }
  return -EMSGSIZE;
}

int iommu_map_dma(int container_fd, uint32_t flags, uint64_t vaddr, uint64_t iova, uint64_t size) {
  abi::vfio_iommu_type1_dma_map arg{.flags = flags, .vaddr = vaddr, .iova = iova, .size = size};
  return call(container_fd, abi::VFIO_IOMMU_MAP_DMA, arg);
}

int iommu_unmap_dma(int container_fd, uint32_t flags, uint64_t iova, uint64_t size, uint64_t* unmapped) {
  abi::vfio_iommu_type1_dma_unmap arg{.flags = flags, .iova = iova, .size = size};
  return call(container_fd, abi::VFIO_IOMMU_UNMAP_DMA, arg, [&](auto& a) { *unmapped = a.size; });
}

}  // namespace dmaiommu::vfio
