// iommufd and VFIO-cdev exports: thin, synchronous, one per ioctl.
#include "../abi/iommufd.h"
#include "../ioctl/iommufd.h"
#include "../ioctl/vfio.h"
#include "addon.h"
#include "args.h"

namespace dmaiommu::binding {
namespace {

using Info = const Napi::CallbackInfo&;

Napi::Value IoasAlloc(Info info) {
  HandleState& h = ArgOpenHandle(info, 0, "iommufd");
  uint32_t id = 0;
  Check(info.Env(), iommufd::ioas_alloc(h.fd, &id), "IOMMU_IOAS_ALLOC");
  return Napi::Number::New(info.Env(), id);
}

Napi::Value Destroy(Info info) {
  HandleState& h = ArgOpenHandle(info, 0, "iommufd");
  uint32_t id = ArgU32(info, 1, "id");
  Check(info.Env(), iommufd::destroy(h.fd, id), "IOMMU_DESTROY");
  h.ClearSpace(id);  // a destroyed IOAS drops its areas (no-op for other object types)
  return info.Env().Undefined();
}

Napi::Value IoasIovaRanges(Info info) {
  Napi::Env env = info.Env();
  HandleState& h = ArgOpenHandle(info, 0, "iommufd");
  uint32_t ioas = ArgU32(info, 1, "ioasId");
  std::vector<iommufd::IovaRange> ranges;
  uint64_t alignment = 0;
  Check(env, iommufd::ioas_iova_ranges(h.fd, ioas, &ranges, &alignment), "IOMMU_IOAS_IOVA_RANGES");
  Napi::Array arr = Napi::Array::New(env, ranges.size());
  for (size_t i = 0; i < ranges.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("start", U64(env, ranges[i].start));
    o.Set("last", U64(env, ranges[i].last));
    arr.Set(static_cast<uint32_t>(i), o);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("ranges", arr);
  out.Set("alignment", U64(env, alignment));
  return out;
}

Napi::Value HwptAlloc(Info info) {
  HandleState& h = ArgOpenHandle(info, 0, "iommufd");
  uint32_t dev_id = ArgU32(info, 1, "devId");
  uint32_t pt_id = ArgU32(info, 2, "ptId");
  uint32_t flags = ArgU32(info, 3, "flags");
  uint32_t out = 0;
  Check(info.Env(), iommufd::hwpt_alloc(h.fd, dev_id, pt_id, flags, &out), "IOMMU_HWPT_ALLOC");
  return Napi::Number::New(info.Env(), out);
}

Napi::Value GetHwInfo(Info info) {
  Napi::Env env = info.Env();
  HandleState& h = ArgOpenHandle(info, 0, "iommufd");
  uint32_t dev_id = ArgU32(info, 1, "devId");
  iommufd::HwInfo hw{};
  Check(env, iommufd::get_hw_info(h.fd, dev_id, &hw), "IOMMU_GET_HW_INFO");
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", hw.data_type);
  o.Set("maxPasidLog2", hw.max_pasid_log2);
  o.Set("capabilities", U64(env, hw.capabilities));
  o.Set("data", Napi::Buffer<uint8_t>::Copy(env, hw.data.data(), hw.data.size()));
  return o;
}

// ---- VFIO device cdev --------------------------------------------------------------------------

Napi::Value DeviceBindIommufd(Info info) {
  HandleWrap* dw = ArgHandle(info, 0, "device");
  HandleWrap* iw = ArgHandle(info, 1, "iommufd");
  int dfd = dw->FdOrThrow(info.Env());
  int ifd = iw->FdOrThrow(info.Env());
  uint32_t dev_id = 0;
  Check(info.Env(), vfio::device_bind_iommufd(dfd, ifd, &dev_id), "VFIO_DEVICE_BIND_IOMMUFD");
  // A bound device keeps the iommufd context (and the IOAS mappings in it) alive in the kernel.
  if (!dw->state->parent) {
    dw->state->parent = iw->state;
    iw->state->file_refs++;
  }
  return Napi::Number::New(info.Env(), dev_id);
}

Napi::Value DeviceAttachPt(Info info) {
  HandleState& d = ArgOpenHandle(info, 0, "device");
  uint32_t pt = ArgU32(info, 1, "ptId");
  uint32_t out = 0;
  Check(info.Env(), vfio::device_attach_iommufd_pt(d.fd, pt, &out), "VFIO_DEVICE_ATTACH_IOMMUFD_PT");
  return Napi::Number::New(info.Env(), out);
}

Napi::Value DeviceDetachPt(Info info) {
  HandleState& d = ArgOpenHandle(info, 0, "device");
  Check(info.Env(), vfio::device_detach_iommufd_pt(d.fd), "VFIO_DEVICE_DETACH_IOMMUFD_PT");
  return info.Env().Undefined();
}

}  // namespace

// The user VA is never taken from JS: it is the memory's address + offset, bounds-checked.
void IoasMapOp(Napi::Env env, HandleState& h, uint32_t ioas, uint64_t iova, MemoryWrap* m, uint64_t offset, uint64_t length, uint32_t flags) {
  uint8_t* va = m->Span(env, offset, length);
  Check(env, iommufd::ioas_map(h.fd, ioas, flags, reinterpret_cast<uintptr_t>(va), length, &iova), "IOMMU_IOAS_MAP");
  h.AddArea(ioas, iova, length, m->region);
}

uint64_t IoasUnmapOp(Napi::Env env, HandleState& h, uint32_t ioas, uint64_t iova, uint64_t length) {
  uint64_t unmapped = 0;
  Check(env, iommufd::ioas_unmap(h.fd, ioas, iova, length, &unmapped), "IOMMU_IOAS_UNMAP");
  h.RemoveAreas(ioas, iova, length);
  return unmapped;
}

// This unit's export table (one row per export, the names of lib/backend/native/addon-types.ts): a
// table like the other units' (SetFunctions is the shared code); the unmap op above is the
// iommufd twin of DmaUnmapOp, each after its own ioctl's rules.
void RegisterIommufd(Napi::Env env, Napi::Object exports) {
  SetFunctions(env, exports,
               {
                   {"ioasAlloc", IoasAlloc},
                   {"destroy", Destroy},
                   {"ioasIovaRanges", IoasIovaRanges},
                   {"hwptAlloc", HwptAlloc},
                   {"getHwInfo", GetHwInfo},
                   {"deviceBindIommufd", DeviceBindIommufd},
                   {"deviceAttachPt", DeviceAttachPt},
                   {"deviceDetachPt", DeviceDetachPt},
               });
}

}  // namespace dmaiommu::binding
