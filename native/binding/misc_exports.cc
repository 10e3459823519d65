// open(), memory, /dev/kmsg, ABI constants and stats.
#include <fcntl.h>

#include "../abi/iommufd.h"
#include "../abi/vfio.h"
#include "../ioctl/memory.h"
#include "../ioctl/sys.h"
#include "addon.h"
#include "args.h"

namespace dmaiommu::abi {
int abi_checked();
}

namespace dmaiommu::binding {
namespace {

using Info = const Napi::CallbackInfo&;

HandleKind ParseKind(Napi::Env env, const std::string& k) {
  if (k == "iommufd") return HandleKind::kIommufd;
  if (k == "device") return HandleKind::kDevice;
  if (k == "container") return HandleKind::kContainer;
  if (k == "group") return HandleKind::kGroup;
  if (k == "file") return HandleKind::kFile;
  ThrowTypeError(env, "kind must be 'iommufd', 'device', 'container', 'group' or 'file'");
}

// open(path, flags, kind) -> Handle. O_CLOEXEC is always added.
Napi::Value Open(Info info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "path");
  int32_t flags = ArgI32(info, 1, "flags");
  HandleKind kind = ParseKind(env, ArgString(info, 2, "kind"));
  int fd = Check(env, sys::open_fd(path.c_str(), flags), "open", path);
  auto st = std::make_shared<HandleState>();
  st->fd = fd;
  st->kind = kind;
  st->path = path;
  return env.GetInstanceData<Addon>()->NewHandle(env, st);
}

// allocMemory(size, flags, view) -> Memory. flags: MEM_HUGE_PAGES | MEM_POPULATE | MEM_LOCK.
Napi::Value AllocMemory(Info info) {
  Napi::Env env = info.Env();
  uint64_t size = ArgU64(info, 0, "size");
  uint32_t flags = ArgU32(info, 1, "flags");
  if (info.Length() < 3 || !info[2].IsBoolean()) ThrowTypeError(env, "view must be a boolean");
  bool view = info[2].As<Napi::Boolean>().Value();
  size_t align = (flags & mem::kHugePages) ? (2u << 20) : mem::page_size();
  if (size == 0 || size % align != 0) ThrowRangeError(env, "size must be a non-zero multiple of the page size");
  if (size > (uint64_t(1) << 47)) ThrowRangeError(env, "size too large");
  // V8 limits ArrayBuffers (kMaxByteLength, 2^53 on 64-bit; practically RAM): views above 1 GiB
  // are not offered by the TS layer either.
  void* addr = nullptr;
  int r = mem::map_anonymous(static_cast<size_t>(size), flags, &addr);
  if (r < 0)
    ThrowErrno(env, r, (flags & mem::kLock) && r != -ENOMEM ? "mlock" : "mmap",
               (flags & mem::kHugePages) ? "MAP_HUGETLB (is the hugetlb pool empty?)" : "");
  Addon* a = env.GetInstanceData<Addon>();
  auto region = std::make_shared<Region>();
  region->addr = addr;
  region->size = static_cast<size_t>(size);
  region->mapped = true;
  region->lazy = !view;
  region->owner = a;
  a->TrackRegion(region.get());
  return a->NewMemory(env, std::move(region), view);
}

Napi::Value KmsgOpen(Info info) {
  Napi::Env env = info.Env();
  int fd = Check(env, sys::kmsg_open_at_end(), "open", "/dev/kmsg");
  auto st = std::make_shared<HandleState>();
  st->fd = fd;
  st->kind = HandleKind::kKmsg;
  st->path = "/dev/kmsg";
  return env.GetInstanceData<Addon>()->NewHandle(env, st);
}

// kmsgRead(handle, max) -> string[]: the records pending now (non-blocking), at most `max`.
Napi::Value KmsgRead(Info info) {
  Napi::Env env = info.Env();
  HandleState& h = ArgOpenHandle(info, 0, "kmsg");
  if (h.kind != HandleKind::kKmsg) ThrowTypeError(env, "kmsg must be a handle from kmsgOpen()");
  uint32_t max = ArgU32(info, 1, "max");
  Napi::Array out = Napi::Array::New(env);
  std::string rec;
  for (uint32_t i = 0; i < max; i++) {
    if (Check(env, sys::kmsg_read_record(h.fd, &rec), "read", "/dev/kmsg") == 0) break;
    out.Set(i, Napi::String::New(env, rec));
  }
  return out;
}

Napi::Value Stats(Info info) { return info.Env().GetInstanceData<Addon>()->Stats(info.Env()); }

// The ioctl numbers and struct sizes the JS side checks its expectations against: one row per
// value (a table; alike in shape to the constants table below on purpose).
Napi::Object Abi(Napi::Env env) {
  namespace A = dmaiommu::abi;
  Napi::Object o = Napi::Object::New(env);
  auto num = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
  num("IOMMU_DESTROY", A::IOMMU_DESTROY);
  num("IOMMU_IOAS_ALLOC", A::IOMMU_IOAS_ALLOC);
  num("IOMMU_IOAS_IOVA_RANGES", A::IOMMU_IOAS_IOVA_RANGES);
  num("IOMMU_IOAS_MAP", A::IOMMU_IOAS_MAP);
  num("IOMMU_IOAS_UNMAP", A::IOMMU_IOAS_UNMAP);
  num("IOMMU_OPTION", A::IOMMU_OPTION);
  num("IOMMU_HWPT_ALLOC", A::IOMMU_HWPT_ALLOC);
  num("IOMMU_GET_HW_INFO", A::IOMMU_GET_HW_INFO);
  num("IOMMU_FAULT_QUEUE_ALLOC", A::IOMMU_FAULT_QUEUE_ALLOC);
  num("VFIO_GET_API_VERSION", A::VFIO_GET_API_VERSION);
  num("VFIO_CHECK_EXTENSION", A::VFIO_CHECK_EXTENSION);
  num("VFIO_SET_IOMMU", A::VFIO_SET_IOMMU);
  num("VFIO_GROUP_GET_STATUS", A::VFIO_GROUP_GET_STATUS);
  num("VFIO_GROUP_SET_CONTAINER", A::VFIO_GROUP_SET_CONTAINER);
  num("VFIO_GROUP_UNSET_CONTAINER", A::VFIO_GROUP_UNSET_CONTAINER);
  num("VFIO_GROUP_GET_DEVICE_FD", A::VFIO_GROUP_GET_DEVICE_FD);
  num("VFIO_DEVICE_GET_INFO", A::VFIO_DEVICE_GET_INFO);
  num("VFIO_DEVICE_GET_REGION_INFO", A::VFIO_DEVICE_GET_REGION_INFO);
  num("VFIO_DEVICE_RESET", A::VFIO_DEVICE_RESET);
  num("VFIO_IOMMU_GET_INFO", A::VFIO_IOMMU_GET_INFO);
  num("VFIO_IOMMU_MAP_DMA", A::VFIO_IOMMU_MAP_DMA);
  num("VFIO_IOMMU_UNMAP_DMA", A::VFIO_IOMMU_UNMAP_DMA);
  num("VFIO_DEVICE_BIND_IOMMUFD", A::VFIO_DEVICE_BIND_IOMMUFD);
  num("VFIO_DEVICE_ATTACH_IOMMUFD_PT", A::VFIO_DEVICE_ATTACH_IOMMUFD_PT);
  num("VFIO_DEVICE_DETACH_IOMMUFD_PT", A::VFIO_DEVICE_DETACH_IOMMUFD_PT);
  Napi::Object sizes = Napi::Object::New(env);
  sizes.Set("iommu_ioas_alloc", sizeof(A::iommu_ioas_alloc));
  sizes.Set("iommu_ioas_iova_ranges", sizeof(A::iommu_ioas_iova_ranges));
  sizes.Set("iommu_ioas_map", sizeof(A::iommu_ioas_map));
  sizes.Set("iommu_ioas_unmap", sizeof(A::iommu_ioas_unmap));
  sizes.Set("iommu_option", sizeof(A::iommu_option));
  sizes.Set("iommu_hwpt_alloc", sizeof(A::iommu_hwpt_alloc));
  sizes.Set("iommu_hw_info", sizeof(A::iommu_hw_info));
  sizes.Set("vfio_device_bind_iommufd", sizeof(A::vfio_device_bind_iommufd));
  sizes.Set("vfio_device_attach_iommufd_pt", sizeof(A::vfio_device_attach_iommufd_pt));
  sizes.Set("vfio_iommu_type1_info", sizeof(A::vfio_iommu_type1_info));
  sizes.Set("vfio_iommu_type1_dma_map", sizeof(A::vfio_iommu_type1_dma_map));
  sizes.Set("vfio_iommu_type1_dma_unmap", sizeof(A::vfio_iommu_type1_dma_unmap));
  sizes.Set("vfio_region_info", sizeof(A::vfio_region_info));
  o.Set("sizes", sizes);
  o.Set("checked", Napi::Boolean::New(env, A::abi_checked() == 1));
  return o;
}

Napi::Object Constants(Napi::Env env) {
  namespace A = dmaiommu::abi;
  Napi::Object o = Napi::Object::New(env);
  auto num = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
  num("pageSize", static_cast<double>(mem::page_size()));
  num("O_RDONLY", O_RDONLY);
  num("O_RDWR", O_RDWR);
  num("O_NONBLOCK", O_NONBLOCK);
  num("MEM_HUGE_PAGES", mem::kHugePages);
  num("MEM_POPULATE", mem::kPopulate);
  num("MEM_LOCK", mem::kLock);
  num("IOMMU_IOAS_MAP_FIXED_IOVA", A::IOMMU_IOAS_MAP_FIXED_IOVA);
  num("IOMMU_IOAS_MAP_WRITEABLE", A::IOMMU_IOAS_MAP_WRITEABLE);
  num("IOMMU_IOAS_MAP_READABLE", A::IOMMU_IOAS_MAP_READABLE);
  num("IOMMU_HWPT_ALLOC_NEST_PARENT", A::IOMMU_HWPT_ALLOC_NEST_PARENT);
  num("IOMMU_HWPT_ALLOC_DIRTY_TRACKING", A::IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
  num("IOMMU_HW_INFO_TYPE_INTEL_VTD", A::IOMMU_HW_INFO_TYPE_INTEL_VTD);
  num("IOMMU_HW_INFO_TYPE_ARM_SMMUV3", A::IOMMU_HW_INFO_TYPE_ARM_SMMUV3);
  num("VFIO_API_VERSION", A::VFIO_API_VERSION);
  num("VFIO_TYPE1_IOMMU", A::VFIO_TYPE1_IOMMU);
  num("VFIO_TYPE1v2_IOMMU", A::VFIO_TYPE1v2_IOMMU);
  num("VFIO_UNMAP_ALL", A::VFIO_UNMAP_ALL);
  num("VFIO_GROUP_FLAGS_VIABLE", A::VFIO_GROUP_FLAGS_VIABLE);
  num("VFIO_GROUP_FLAGS_CONTAINER_SET", A::VFIO_GROUP_FLAGS_CONTAINER_SET);
  num("VFIO_DEVICE_FLAGS_RESET", A::VFIO_DEVICE_FLAGS_RESET);
  num("VFIO_DEVICE_FLAGS_PCI", A::VFIO_DEVICE_FLAGS_PCI);
  num("VFIO_REGION_INFO_FLAG_READ", A::VFIO_REGION_INFO_FLAG_READ);
  num("VFIO_REGION_INFO_FLAG_WRITE", A::VFIO_REGION_INFO_FLAG_WRITE);
  num("VFIO_PCI_CONFIG_REGION_INDEX", A::VFIO_PCI_CONFIG_REGION_INDEX);
  num("VFIO_PCI_NUM_REGIONS", A::VFIO_PCI_NUM_REGIONS);
  num("VFIO_DMA_MAP_FLAG_READ", A::VFIO_DMA_MAP_FLAG_READ);
  num("VFIO_DMA_MAP_FLAG_WRITE", A::VFIO_DMA_MAP_FLAG_WRITE);
  num("VFIO_DMA_UNMAP_FLAG_ALL", A::VFIO_DMA_UNMAP_FLAG_ALL);
  return o;
}

}  // namespace

void RegisterMisc(Napi::Env env, Napi::Object exports) {
  SetFunctions(env, exports,
               {
                   {"open", Open},
                   {"allocMemory", AllocMemory},
                   {"kmsgOpen", KmsgOpen},
                   {"kmsgRead", KmsgRead},
                   {"stats", Stats},
                   {"setErrorClass", SetErrorClass},
               });
  exports.Set("constants", Constants(env));
  exports.Set("abi", Abi(env));
  exports.Set("version", Napi::String::New(env, "1"));
}

}  // namespace dmaiommu::binding
