// The zero-argument map/unmap exports (see hot.h for why and for the slot layout). They validate
// what the argument-taking exports validate (ids name live wraps of the right kind, handles are
// open, memory ranges are inside their allocation) and run the same operations.
#include <string>

#include "addon.h"
#include "errors.h"
#include "hot.h"

namespace dmaiommu::binding {
namespace {

using Info = const Napi::CallbackInfo&;

HotRegistry& Hot(Napi::Env env) { return *env.GetInstanceData<Addon>()->hot; }

HandleState& HotHandle(Napi::Env env, HotRegistry& h, const char* name) {
  auto it = h.handles.find(h.u32[kHotHandle]);
  if (it == h.handles.end() || !it->second->state) ThrowTypeError(env, std::string(name) + " must be a native handle (hot slot: unknown id)");
  if (it->second->state->fd < 0) ThrowTypeError(env, std::string(name) + " is closed");
  return *it->second->state;
}

MemoryWrap* HotMemory(Napi::Env env, HotRegistry& h) {
  auto it = h.memory.find(h.u32[kHotMemory]);
  if (it == h.memory.end()) ThrowTypeError(env, "memory must be native memory (hot slot: unknown id)");
  return it->second;
}

// Stores the exact byte count in the result slot and answers whether anything was unmapped.
Napi::Value Unmapped(Napi::Env env, HotRegistry& h, uint64_t n) {
  h.u64[kHotResult] = n;
  return Napi::Boolean::New(env, n != 0);
}

Napi::Value DmaMapHot(Info info) {
  Napi::Env env = info.Env();
  HotRegistry& h = Hot(env);
  HandleState& c = HotHandle(env, h, "container");
  DmaMapOp(env, c, h.u64[kHotIova], HotMemory(env, h), h.u64[kHotOffset], h.u64[kHotLength], h.u32[kHotFlags]);
  return env.Undefined();
}

Napi::Value DmaUnmapHot(Info info) {
  Napi::Env env = info.Env();
  HotRegistry& h = Hot(env);
  HandleState& c = HotHandle(env, h, "container");
  return Unmapped(env, h, DmaUnmapOp(env, c, h.u64[kHotIova], h.u64[kHotLength], h.u32[kHotFlags]));
}

// The IOVA mapped (FIXED_IOVA: the one asked for) is in u64[kHotResult].
Napi::Value IoasMapHot(Info info) {
  Napi::Env env = info.Env();
  HotRegistry& h = Hot(env);
  HandleState& fd = HotHandle(env, h, "iommufd");
  h.u64[kHotResult] =
      IoasMapOp(env, fd, h.u32[kHotIoas], h.u64[kHotIova], HotMemory(env, h), h.u64[kHotOffset], h.u64[kHotLength], h.u32[kHotFlags]);
  return env.Undefined();
}

Napi::Value IoasUnmapHot(Info info) {
  Napi::Env env = info.Env();
  HotRegistry& h = Hot(env);
  HandleState& fd = HotHandle(env, h, "iommufd");
  return Unmapped(env, h, IoasUnmapOp(env, fd, h.u32[kHotIoas], h.u64[kHotIova], h.u64[kHotLength]));
}

}  // namespace

void RegisterHot(Napi::Env env, Napi::Object exports, Addon& addon) {
  Addon* a = &addon;
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, kHotBytes);
  a->hot_slots = Napi::Persistent(ab);
  a->hot->u64 = static_cast<uint64_t*>(ab.Data());
  a->hot->u32 = static_cast<uint32_t*>(ab.Data());
  exports.Set("hotSlots", ab);
  auto fn = [&](const char* name, Napi::Function::Callback cb) { exports.Set(name, Napi::Function::New(env, cb, name)); };
  fn("dmaMapHot", DmaMapHot);
  fn("dmaUnmapHot", DmaUnmapHot);
  fn("ioasMapHot", IoasMapHot);
  fn("ioasUnmapHot", IoasUnmapHot);
}

}  // namespace dmaiommu::binding
