// The zero-argument map/unmap exports (see hot.h for why, for the slot layout and for why every
// call zeroes the slots). They check that ids name live wraps of the right kind, that handles are
// open and that memory ranges are inside their allocation, then run the map/unmap operations.
#include <cstring>
#include <string>

#include "addon.h"
#include "errors.h"
#include "hot.h"

namespace dmaiommu::binding {
namespace {

using Info = const Napi::CallbackInfo&;

// The slots of this environment's registry, zeroed when the call ends (also by a throw, including
// one from HotCall's own constructor: members already built are destroyed).
struct ZeroSlotsOnExit {
  HotRegistry& h;
  ~ZeroSlotsOnExit() { std::memset(h.slots, 0, kHotBytes); }
};

// One hot call: its environment, the registry's slots, and the open handle the slots name.
class HotCall {
 public:
  HotCall(Info info, const char* handle_name)
      : env(info.Env()), h(*env.GetInstanceData<Addon>()->hot), zero_{h}, handle(FindHandle(handle_name)) {}
  HotCall(const HotCall&) = delete;
  HotCall& operator=(const HotCall&) = delete;

  Napi::Env env;
  HotRegistry& h;

 private:
  ZeroSlotsOnExit zero_;

  HandleState& FindHandle(const char* name) {
    uint32_t id = h.u32[kHotHandle];
    if (id == 0) ThrowTypeError(env, std::string(name) + " must be a native handle (hot slot empty: was the slot buffer detached?)");
    auto it = h.handles.find(id);
    if (it == h.handles.end() || !it->second->state) ThrowTypeError(env, std::string(name) + " must be a native handle (hot slot: unknown id)");
    if (it->second->state->fd < 0) ThrowTypeError(env, std::string(name) + " is closed");
    return *it->second->state;
  }

 public:
  HandleState& handle;

  MemoryWrap* Memory() {
    uint32_t id = h.u32[kHotMemory];
    if (id == 0) ThrowTypeError(env, "memory must be native memory (hot slot empty: was the slot buffer detached?)");
    auto it = h.memory.find(id);
    if (it == h.memory.end()) ThrowTypeError(env, "memory must be native memory (hot slot: unknown id)");
    return it->second;
  }
};

Napi::Value DmaMapHot(Info info) {
  HotCall c(info, "container");
  DmaMapOp(c.env, c.handle, c.h.u64[kHotIova], c.Memory(), c.h.u64[kHotOffset], c.h.u64[kHotLength], c.h.u32[kHotFlags]);
  return c.env.Undefined();
}

// Whether anything was unmapped.
Napi::Value DmaUnmapHot(Info info) {
  HotCall c(info, "container");
  return Napi::Boolean::New(c.env, DmaUnmapOp(c.env, c.handle, c.h.u64[kHotIova], c.h.u64[kHotLength], c.h.u32[kHotFlags]) != 0);
}

Napi::Value IoasMapHot(Info info) {
  HotCall c(info, "iommufd");
  IoasMapOp(c.env, c.handle, c.h.u32[kHotIoas], c.h.u64[kHotIova], c.Memory(), c.h.u64[kHotOffset], c.h.u64[kHotLength], c.h.u32[kHotFlags]);
  return c.env.Undefined();
}

Napi::Value IoasUnmapHot(Info info) {
  HotCall c(info, "iommufd");
  return Napi::Boolean::New(c.env, IoasUnmapOp(c.env, c.handle, c.h.u32[kHotIoas], c.h.u64[kHotIova], c.h.u64[kHotLength]) != 0);
}

}  // namespace

void RegisterHot(Napi::Env env, Napi::Object exports, Addon& addon) {
  // External view of the registry's own slot memory. The buffer holds a share of the registry, so
  // the slots outlive any JS that can still reach them (even a copy moved to another thread).
  auto* keep = new std::shared_ptr<HotRegistry>(addon.hot);
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
      env, addon.hot->slots, kHotBytes, [](Napi::Env, void*, std::shared_ptr<HotRegistry>* k) { delete k; }, keep);
  exports.Set("hotSlots", ab);
  SetFunctions(env, exports,
               {
                   {"dmaMapHot", DmaMapHot},
                   {"dmaUnmapHot", DmaUnmapHot},
                   {"ioasMapHot", IoasMapHot},
                   {"ioasUnmapHot", IoasUnmapHot},
               });
}

}  // namespace dmaiommu::binding
