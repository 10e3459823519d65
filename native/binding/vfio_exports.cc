// Generic VFIO device and legacy type1 container/group exports.
#include "../abi/vfio.h"
#include "../ioctl/vfio.h"
#include "addon.h"
#include "args.h"

namespace dmaiommu::binding {
namespace {

using Info = const Napi::CallbackInfo&;

// An export that reads one struct from the kernel: the open handle (argument 0, named `handle`),
// `call(fd, &out)`, its errno check. The struct, or the error.
template <typename Out, typename Call>
Out Query(Info info, const char* handle, const char* syscall, Call call) {
  HandleState& h = ArgOpenHandle(info, 0, handle);
  Out out{};
  Check(info.Env(), call(h.fd, &out), syscall);
  return out;
}

Napi::Value DeviceGetInfo(Info info) {
  Napi::Env env = info.Env();
  auto di = Query<vfio::DeviceInfo>(info, "device", "VFIO_DEVICE_GET_INFO", vfio::device_get_info);
  Napi::Object o = Napi::Object::New(env);
  o.Set("flags", di.flags);
  o.Set("numRegions", di.num_regions);
  o.Set("numIrqs", di.num_irqs);
  return o;
}

Napi::Value DeviceGetRegionInfo(Info info) {
  Napi::Env env = info.Env();
  HandleState& d = ArgOpenHandle(info, 0, "device");
  uint32_t index = ArgU32(info, 1, "index");
  vfio::RegionInfo ri{};
  Check(env, vfio::device_get_region_info(d.fd, index, &ri), "VFIO_DEVICE_GET_REGION_INFO");
  Napi::Object o = Napi::Object::New(env);
  o.Set("flags", ri.flags);
  o.Set("size", U64(env, ri.size));
  o.Set("offset", U64(env, ri.offset));
  return o;
}

unsigned ArgAccessSize(Info info, size_t i) {
  uint32_t size = ArgU32(info, i, "size");
  if (size != 1 && size != 2 && size != 4 && size != 8) ThrowRangeError(info.Env(), "size must be 1, 2, 4 or 8");
  return size;
}

// regionRead(device, fileOffset, size) -> number (size <= 4) | bigint (size 8)
Napi::Value RegionRead(Info info) {
  Napi::Env env = info.Env();
  HandleState& d = ArgOpenHandle(info, 0, "device");
  uint64_t off = ArgU64(info, 1, "offset");
  unsigned size = ArgAccessSize(info, 2);
  uint64_t v = 0;
  Check(env, vfio::region_read(d.fd, off, size, &v), "pread", "VFIO device region");
  if (size == 8) return U64(env, v);
  return Napi::Number::New(env, static_cast<double>(v));
}

Napi::Value RegionWrite(Info info) {
  Napi::Env env = info.Env();
  HandleState& d = ArgOpenHandle(info, 0, "device");
  uint64_t off = ArgU64(info, 1, "offset");
  unsigned size = ArgAccessSize(info, 2);
  uint64_t v;
  if (size == 8) {
    v = ArgU64(info, 3, "value");
  } else {
    v = ArgU32(info, 3, "value");
    if (size < 4 && v >> (size * 8)) ThrowRangeError(env, "value does not fit the access size");
  }
  Check(env, vfio::region_write(d.fd, off, size, v), "pwrite", "VFIO device region");
  return env.Undefined();
}

// ---- type1 -------------------------------------------------------------------------------------

Napi::Value GetApiVersion(Info info) {
  HandleState& c = ArgOpenHandle(info, 0, "container");
  return Napi::Number::New(info.Env(), Check(info.Env(), vfio::get_api_version(c.fd), "VFIO_GET_API_VERSION"));
}

Napi::Value CheckExtension(Info info) {
  HandleState& c = ArgOpenHandle(info, 0, "container");
  int32_t ext = ArgI32(info, 1, "extension");
  return Napi::Number::New(info.Env(), Check(info.Env(), vfio::check_extension(c.fd, ext), "VFIO_CHECK_EXTENSION"));
}

Napi::Value SetIommu(Info info) {
  HandleState& c = ArgOpenHandle(info, 0, "container");
  int32_t type = ArgI32(info, 1, "iommuType");
  Check(info.Env(), vfio::set_iommu(c.fd, type), "VFIO_SET_IOMMU");
  return info.Env().Undefined();
}

Napi::Value GroupGetStatus(Info info) {
  return Napi::Number::New(info.Env(), Query<uint32_t>(info, "group", "VFIO_GROUP_GET_STATUS", vfio::group_get_status));
}

Napi::Value GroupSetContainer(Info info) {
  HandleWrap* gw = ArgHandle(info, 0, "group");
  HandleWrap* cw = ArgHandle(info, 1, "container");
  int gfd = gw->FdOrThrow(info.Env());
  int cfd = cw->FdOrThrow(info.Env());
  Check(info.Env(), vfio::group_set_container(gfd, cfd), "VFIO_GROUP_SET_CONTAINER");
  gw->state->LeaveContainer();  // (never set here: the kernel refuses a second SET with EINVAL)
  gw->state->JoinContainer(cw->state);
  return info.Env().Undefined();
}

Napi::Value GroupUnsetContainer(Info info) {
  HandleState& g = ArgOpenHandle(info, 0, "group");
  Check(info.Env(), vfio::group_unset_container(g.fd), "VFIO_GROUP_UNSET_CONTAINER");
  g.LeaveContainer();
  return info.Env().Undefined();
}

Napi::Value GroupGetDeviceFd(Info info) {
  Napi::Env env = info.Env();
  HandleWrap* gw = ArgHandle(info, 0, "group");
  int gfd = gw->FdOrThrow(env);
  std::string name = ArgString(info, 1, "name");
  int fd = Check(env, vfio::group_get_device_fd(gfd, name), "VFIO_GROUP_GET_DEVICE_FD", name);
  auto st = std::make_shared<HandleState>();
  st->fd = fd;
  st->kind = HandleKind::kDevice;
  st->path = name;
  st->parent = gw->state;  // the device file keeps its group (and so the container link) alive
  gw->state->file_refs++;
  return env.GetInstanceData<Addon>()->NewHandle(env, st);
}

Napi::Value IommuGetInfo(Info info) {
  Napi::Env env = info.Env();
  auto ii = Query<vfio::IommuInfo>(info, "container", "VFIO_IOMMU_GET_INFO", vfio::iommu_get_info);
  Napi::Object o = Napi::Object::New(env);
  o.Set("flags", ii.flags);
  o.Set("pageSizes", U64(env, ii.iova_pgsizes));
  if (ii.has_ranges) {
    Napi::Array arr = Napi::Array::New(env, ii.ranges.size());
    for (size_t i = 0; i < ii.ranges.size(); i++) {
      Napi::Object rg = Napi::Object::New(env);
      rg.Set("start", U64(env, ii.ranges[i].start));
      rg.Set("last", U64(env, ii.ranges[i].end));
      arr.Set(static_cast<uint32_t>(i), rg);
    }
    o.Set("ranges", arr);
  } else {
    o.Set("ranges", env.Null());
  }
  o.Set("dmaAvail", ii.has_dma_avail ? Napi::Value(Napi::Number::New(env, ii.dma_avail)) : env.Null());
  return o;
}

}  // namespace

void DmaMapOp(Napi::Env env, HandleState& c, uint64_t iova, MemoryWrap* m, uint64_t offset, uint64_t length, uint32_t flags) {
  uint8_t* va = m->Span(env, offset, length);
  Check(env, vfio::iommu_map_dma(c.fd, flags, reinterpret_cast<uintptr_t>(va), iova, length), "VFIO_IOMMU_MAP_DMA");
  c.AddArea(0, iova, length, m->region);
}

// The type1 twin of iommufd_exports.cc's IoasUnmapOp: alike in shape, each after its own ioctl's
// rules (here VFIO_DMA_UNMAP_FLAG_ALL empties the whole space).
uint64_t DmaUnmapOp(Napi::Env env, HandleState& c, uint64_t iova, uint64_t length, uint32_t flags) {
  uint64_t unmapped = 0;
  Check(env, vfio::iommu_unmap_dma(c.fd, flags, iova, length, &unmapped), "VFIO_IOMMU_UNMAP_DMA");
  if (flags & abi::VFIO_DMA_UNMAP_FLAG_ALL)
    c.ClearSpace(0);
  else if (unmapped > 0)
    c.RemoveAreas(0, iova, length);
  return unmapped;
}

void RegisterVfio(Napi::Env env, Napi::Object exports) {
  SetFunctions(env, exports,
               {
                   {"deviceGetInfo", DeviceGetInfo},
                   {"deviceGetRegionInfo", DeviceGetRegionInfo},
                   {"regionRead", RegionRead},
                   {"regionWrite", RegionWrite},
                   {"getApiVersion", GetApiVersion},
                   {"checkExtension", CheckExtension},
                   {"setIommu", SetIommu},
                   {"groupGetStatus", GroupGetStatus},
                   {"groupSetContainer", GroupSetContainer},
                   {"groupUnsetContainer", GroupUnsetContainer},
                   {"groupGetDeviceFd", GroupGetDeviceFd},
                   {"iommuGetInfo", IommuGetInfo},
               });
}

}  // namespace dmaiommu::binding
