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

// The registry of this environment, with its slots zeroed when the call ends (also by a throw).
class HotCall {
 public:
  explicit HotCall(Napi::Env env) : env_(env), h_(*env.GetInstanceData<Addon>()->hot) {}
  ~HotCall() { std::memset(h_.slots, 0, kHotBytes); }
  HotCall(const HotCall&) = delete;
  HotCall& operator=(const HotCall&) = delete;

  HotRegistry& slots() { return h_; }

  HandleState& Handle(const char* name) {
    uint32_t id = h_.u32[kHotHandle];
    if (id == 0) ThrowTypeError(env_, std::string(name) + " must be a native handle (hot slot empty: was the slot buffer detached?)");
    auto it = h_.handles.find(id);
    if (it == h_.handles.end() || !it->second->state) ThrowTypeError(env_, std::string(name) + " must be a native handle (hot slot: unknown id)");
    if (it->second->state->fd < 0) ThrowTypeError(env_, std::string(name) + " is closed");
    return *it->second->state;
  }

  MemoryWrap* Memory() {
    uint32_t id = h_.u32[kHotMemory];
    if (id == 0) ThrowTypeError(env_, "memory must be native memory (hot slot empty: was the slot buffer detached?)");
    auto it = h_.memory.find(id);
    if (it == h_.memory.end()) ThrowTypeError(env_, "memory must be native memory (hot slot: unknown id)");
    return it->second;
  }

 private:
  Napi::Env env_;
  HotRegistry& h_;
};

Napi::Value DmaMapHot(Info info) {
  Napi::Env env = info.Env();
  HotCall call(env);
  HotRegistry& h = call.slots();
  HandleState& c = call.Handle("container");
  DmaMapOp(env, c, h.u64[kHotIova], call.Memory(), h.u64[kHotOffset], h.u64[kHotLength], h.u32[kHotFlags]);
  return env.Undefined();
}

// Whether anything was unmapped.
Napi::Value DmaUnmapHot(Info info) {
  Napi::Env env = info.Env();
  HotCall call(env);
  HotRegistry& h = call.slots();
  HandleState& c = call.Handle("container");
  return Napi::Boolean::New(env, DmaUnmapOp(env, c, h.u64[kHotIova], h.u64[kHotLength], h.u32[kHotFlags]) != 0);
}

Napi::Value IoasMapHot(Info info) {
  Napi::Env env = info.Env();
  HotCall call(env);
  HotRegistry& h = call.slots();
  HandleState& fd = call.Handle("iommufd");
  IoasMapOp(env, fd, h.u32[kHotIoas], h.u64[kHotIova], call.Memory(), h.u64[kHotOffset], h.u64[kHotLength], h.u32[kHotFlags]);
  return env.Undefined();
}

Napi::Value IoasUnmapHot(Info info) {
  Napi::Env env = info.Env();
  HotCall call(env);
  HotRegistry& h = call.slots();
  HandleState& fd = call.Handle("iommufd");
  return Napi::Boolean::New(env, IoasUnmapOp(env, fd, h.u32[kHotIoas], h.u64[kHotIova], h.u64[kHotLength]) != 0);
}

}  // namespace

void RegisterHot(Napi::Env env, Napi::Object exports, Addon& addon) {
  // External view of the registry's own slot memory. The buffer holds a share of the registry, so
  // the slots outlive any JS that can still reach them (even a copy moved to another thread).
  auto* keep = new std::shared_ptr<HotRegistry>(addon.hot);
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
      env, addon.hot->slots, kHotBytes, [](Napi::Env, void*, std::shared_ptr<HotRegistry>* k) { delete k; }, keep);
  exports.Set("hotSlots", ab);
  auto fn = [&](const char* name, Napi::Function::Callback cb) { exports.Set(name, Napi::Function::New(env, cb, name)); };
  fn("dmaMapHot", DmaMapHot);
  fn("dmaUnmapHot", DmaUnmapHot);
  fn("ioasMapHot", IoasMapHot);
  fn("ioasUnmapHot", IoasUnmapHot);
}

}  // namespace dmaiommu::binding
