// Entry point of the `dma_iommu` addon: per-environment state (Napi::Addon), the env cleanup hook
// and the export table. Everything Node-API lives here and in binding/; the kernel calls are in
// ioctl/ (no napi.h there).
#include <napi.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "binding/addon.h"
#include "binding/errors.h"
#include "ioctl/memory.h"

namespace dmaiommu::binding {

Addon::Addon(Napi::Env env, Napi::Object exports) {
  handle_ctor = Napi::Persistent(HandleWrap::Define(env));
  memory_ctor = Napi::Persistent(MemoryWrap::Define(env));
  RegisterIommufd(env, exports);
  RegisterVfio(env, exports);
  RegisterMisc(env, exports);
  RegisterNotify(env, exports);
  RegisterHot(env, exports, *this);
  env.AddCleanupHook([this]() { Cleanup(); });
}

Addon::~Addon() { Cleanup(); }

Napi::Object Addon::NewHandle(Napi::Env env, std::shared_ptr<HandleState> state) {
  handles_.remove_if([](const std::weak_ptr<HandleState>& w) { return w.expired(); });
  handles_.push_back(state);
  // The wrap constructor refuses to run unless handed this token, so JS cannot build one.
  Napi::Object obj = handle_ctor.New({Napi::External<void>::New(env, this)});
  HandleWrap* w = HandleWrap::Unwrap(obj);
  w->state = std::move(state);
  w->JoinRegistry(env, obj, hot);
  return obj;
}

namespace {
// The finalize hint of a Memory view. napi_create_external_arraybuffer may run the finalizer
// itself when it fails (Node 20 makes a Buffer and frees it at once above buffer.constants
// .MAX_LENGTH, 4 GiB), and node-addon-api's ArrayBuffer::New then frees its own finalizer data a
// second time: the double free that aborted 4 GiB + 4 KiB allocations. So the call is made raw and
// the hint tells a failed creation (`live` still false: we keep ownership) from a real finalize.
struct ViewHint {
  std::shared_ptr<Region> region;
  bool live = false;
};

void FinalizeView(napi_env env, void*, void* hint) {
  auto* h = static_cast<ViewHint*>(hint);
  if (!h->live) return;  // creation failed: NewMemory still owns the hint
  Region& r = *h->region;
  if (r.accounted && r.owner && !r.owner->torn_down()) {
    r.owner->AdjustExternal(Napi::Env(env), -static_cast<int64_t>(r.size));
    r.accounted = false;
  }
  delete h;
}
}  // namespace

Napi::Object Addon::NewMemory(Napi::Env env, std::shared_ptr<Region> region, bool view) {
  napi_value ab = nullptr;
  if (view) {
    // The ArrayBuffer's finalizer holds a share of the region: the bytes stay mapped as long as
    // any JS view can reach them, even if the Memory object itself is collected first.
    auto* hint = new ViewHint{region};
    napi_status st = napi_create_external_arraybuffer(env, region->addr, region->size, FinalizeView, hint, &ab);
    if (st != napi_ok) {
      delete hint;
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value ignored;
        napi_get_and_clear_last_exception(env, &ignored);
      }
      ThrowErrno(env, -ENOMEM, "mmap", "no ArrayBuffer of " + std::to_string(region->size) + " bytes can be made in this Node.js (allocate lazily, or less)");
    }
    hint->live = true;
  }
  Napi::Object obj = memory_ctor.New({Napi::External<void>::New(env, this)});
  MemoryWrap* w = MemoryWrap::Unwrap(obj);
  if (view) {
    w->buffer = Napi::Persistent(Napi::ArrayBuffer(env, ab));
    region->accounted = true;
    AdjustExternal(env, static_cast<int64_t>(region->size));
  }
  w->region = std::move(region);
  w->JoinRegistry(env, obj, hot);
  return obj;
}

void Addon::AdjustExternal(Napi::Env env, int64_t delta) {
  if (torn_down_) return;
  external_bytes_ += delta;
  Napi::MemoryManagement::AdjustExternalMemory(env, delta);
}

Napi::Value Addon::Stats(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  uint32_t open = 0, areas = 0;
  for (auto& w : handles_)
    if (auto s = w.lock()) {
      if (s->fd >= 0) open++;
      areas += static_cast<uint32_t>(s->AreaCount());
    }
  uint32_t mapped = 0, pinned = 0;
  for (Region* r : regions_) {
    if (r->mapped) mapped++;
    if (r->pins > 0) pinned++;
  }
  o.Set("openHandles", open);
  o.Set("areas", areas);
  o.Set("mappedRegions", mapped);
  o.Set("pinnedRegions", pinned);
  o.Set("externalBytes", Napi::Number::New(env, static_cast<double>(external_bytes_)));
  return o;
}

void Addon::Cleanup() {
  if (torn_down_) return;
  torn_down_ = true;
  std::vector<std::shared_ptr<HandleState>> live;
  for (auto& w : handles_)
    if (auto s = w.lock()) live.push_back(s);
  handles_.clear();
  auto rank = [](HandleKind k) {
    switch (k) {
      case HandleKind::kDevice: return 0;  // stop DMA first
      case HandleKind::kKmsg:
      case HandleKind::kFile: return 1;
      case HandleKind::kGroup: return 2;
      case HandleKind::kContainer:
      case HandleKind::kIommufd: return 3;
    }
    return 3;
  };
  std::stable_sort(live.begin(), live.end(),
                   [&](const auto& a, const auto& b) { return rank(a->kind) < rank(b->kind); });
  for (auto& s : live) s->Close();
  for (auto& s : live) s->ClearAll();
  // No JS runs in this environment any more, so no view can touch the bytes: unmap them all.
  for (Region* r : regions_) {
    r->Unmap();
    r->owner = nullptr;
  }
  regions_.clear();
}

}  // namespace dmaiommu::binding

using DmaIommuAddon = dmaiommu::binding::Addon;
NODE_API_NAMED_ADDON(dma_iommu, DmaIommuAddon)
