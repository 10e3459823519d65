// Per-environment addon state (Napi::Addon: one instance per main thread / worker) and the two
// type-tagged wraps: Handle (an fd the addon opened) and Memory (an anonymous mapping).
#pragma once

#include <napi.h>

#include <initializer_list>
#include <list>
#include <memory>
#include <unordered_set>

#include "hot.h"
#include "state.h"

namespace dmaiommu::binding {

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports);
  ~Addon();

  Napi::Object NewHandle(Napi::Env env, std::shared_ptr<HandleState> state);
  // A Memory wrap over `region`; with `view`, also an external ArrayBuffer over its bytes (throws
  // ENOMEM, region untouched, when this Node cannot make an ArrayBuffer that large).
  Napi::Object NewMemory(Napi::Env env, std::shared_ptr<Region> region, bool view);
  void TrackRegion(Region* r) { regions_.insert(r); }
  void ForgetRegion(Region* r) { regions_.erase(r); }
  void AdjustExternal(Napi::Env env, int64_t delta);
  Napi::Value Stats(Napi::Env env);
  bool torn_down() const { return torn_down_; }

  // Close every fd (devices first, then event fds, groups, containers and iommufd contexts) and
  // unmap every region. Runs at process exit and worker termination; JS never runs afterwards.
  void Cleanup();

  Napi::FunctionReference handle_ctor;
  Napi::FunctionReference memory_ctor;
  Napi::FunctionReference error_class;  // setErrorClass (errors.h); empty until the loader sets it
  std::shared_ptr<HotRegistry> hot = std::make_shared<HotRegistry>();

 private:
  std::list<std::weak_ptr<HandleState>> handles_;
  std::unordered_set<Region*> regions_;
  int64_t external_bytes_ = 0;
  bool torn_down_ = false;
};

// What both wraps share (CRTP over Napi::ObjectWrap): construction only from the addon (its token
// as the first argument, else "Illegal constructor"), the type tag `W::kTag` set on every instance,
// and the wrap's entry in the hot registry (its read-only `hotId`), left when the wrap is finalized.
template <typename W>
class TaggedWrap : public Napi::ObjectWrap<W> {
 public:
  explicit TaggedWrap(const Napi::CallbackInfo& info);  // wraps.cc
  ~TaggedWrap() override {
    if (hot) W::HotTable(*hot).erase(hot_id);
  }
  // Enters the wrap behind `obj` in `registry` and defines `obj.hotId`.
  void JoinRegistry(Napi::Env env, Napi::Object obj, const std::shared_ptr<HotRegistry>& registry) {
    hot = registry;
    hot_id = registry->next_id++;
    W::HotTable(*registry)[hot_id] = static_cast<W*>(this);
    obj.DefineProperty(Napi::PropertyDescriptor::Value("hotId", Napi::Number::New(env, hot_id), napi_enumerable));
  }

  std::shared_ptr<HotRegistry> hot;  // set by JoinRegistry
  uint32_t hot_id = 0;
};

// The two wraps' declarations stay alike in shape (tag, class name, registry table, Define): what
// they share is TaggedWrap; what is left is each class's own members.
class HandleWrap : public TaggedWrap<HandleWrap> {
 public:
  static const napi_type_tag kTag;
  static constexpr const char* kClassName = "NativeHandle";
  static auto& HotTable(HotRegistry& r) { return r.handles; }
  static Napi::Function Define(Napi::Env env);
  using TaggedWrap::TaggedWrap;
  ~HandleWrap() override;  // last-resort close of a leaked fd (no JS access)

  std::shared_ptr<HandleState> state;
  // The fd, or a TypeError when the handle is closed.
  int FdOrThrow(Napi::Env env) const;

 private:
  Napi::Value GetFd(const Napi::CallbackInfo& info);
  Napi::Value GetClosed(const Napi::CallbackInfo& info);
  Napi::Value GetKind(const Napi::CallbackInfo& info);
  Napi::Value GetAreas(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
};

class MemoryWrap : public TaggedWrap<MemoryWrap> {
 public:
  static const napi_type_tag kTag;
  static constexpr const char* kClassName = "NativeMemory";
  static auto& HotTable(HotRegistry& r) { return r.memory; }
  static Napi::Function Define(Napi::Env env);
  using TaggedWrap::TaggedWrap;

  std::shared_ptr<Region> region;
  Napi::Reference<Napi::ArrayBuffer> buffer;
  bool freed = false;
  // Pointer to [offset, offset + length) of a live region, or a RangeError / TypeError.
  uint8_t* Span(Napi::Env env, uint64_t offset, uint64_t length) const;

 private:
  Napi::Value GetAddress(const Napi::CallbackInfo& info);
  Napi::Value GetSize(const Napi::CallbackInfo& info);
  Napi::Value GetPins(const Napi::CallbackInfo& info);
  Napi::Value GetFreed(const Napi::CallbackInfo& info);
  Napi::Value GetBuffer(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value Lock(const Napi::CallbackInfo& info);
  Napi::Value Pagemap(const Napi::CallbackInfo& info);
  Napi::Value Free(const Napi::CallbackInfo& info);
};

// Unwrap with a type-tag check: anything else (plain objects, the other wrap, primitives) is a
// TypeError, never a crash.
HandleWrap* ArgHandle(const Napi::CallbackInfo& info, size_t i, const char* name);
HandleState& ArgOpenHandle(const Napi::CallbackInfo& info, size_t i, const char* name);
MemoryWrap* ArgMemory(const Napi::CallbackInfo& info, size_t i, const char* name);

// The one way a translation unit registers its exports: each function set on `exports` under its
// own name, with `data` (napi callback data) when given.
struct Export {
  const char* name;
  Napi::Function::Callback callback;
};
inline void SetFunctions(Napi::Env env, Napi::Object exports, std::initializer_list<Export> fns, void* data = nullptr) {
  for (const Export& f : fns) exports.Set(f.name, Napi::Function::New(env, f.callback, f.name, data));
}

// Exports defined in the per-area translation units.
void RegisterIommufd(Napi::Env env, Napi::Object exports);
void RegisterVfio(Napi::Env env, Napi::Object exports);
void RegisterMisc(Napi::Env env, Napi::Object exports);
void RegisterNotify(Napi::Env env, Napi::Object exports);  // notify_exports.cc

// The map/unmap operations behind the hot exports (hot.h); the unmaps return the bytes unmapped.
void DmaMapOp(Napi::Env env, HandleState& container, uint64_t iova, MemoryWrap* m, uint64_t offset, uint64_t length, uint32_t flags);
uint64_t DmaUnmapOp(Napi::Env env, HandleState& container, uint64_t iova, uint64_t length, uint32_t flags);
void IoasMapOp(Napi::Env env, HandleState& iommufd, uint32_t ioas, uint64_t iova, MemoryWrap* m, uint64_t offset, uint64_t length, uint32_t flags);
uint64_t IoasUnmapOp(Napi::Env env, HandleState& iommufd, uint32_t ioas, uint64_t iova, uint64_t length);

}  // namespace dmaiommu::binding
