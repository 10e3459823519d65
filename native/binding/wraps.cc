// The Handle and Memory wraps.
#include <cstring>

#include "../ioctl/memory.h"
#include "addon.h"
#include "args.h"
#include "errors.h"

namespace dmaiommu::binding {

// Type tags (random 128-bit values): every unwrap checks them so foreign objects are rejected.
const napi_type_tag HandleWrap::kTag = {0x6d1e3a0f5c2b4a71ULL, 0x9f0c2d7e41b85a36ULL};
const napi_type_tag MemoryWrap::kTag = {0x2b7f9c1d3e5a4b60ULL, 0x81d4e6f0a3c2597bULL};

constexpr uint32_t kMaxPagemapPages = 1u << 20;

static void RequireToken(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal() ||
      info[0].As<Napi::External<void>>().Data() != info.Env().GetInstanceData<Addon>())
    ThrowTypeError(info.Env(), "Illegal constructor");
}

// A value carrying `tag`, unwrapped: napi_typeof (objects only: the tag check would box a
// primitive), the tag check, napi_unwrap. Raw calls: the checked As<>() conversions of
// node-addon-api cost a napi_typeof each. nullptr when anything fails.
static void* UnwrapTagged(napi_env env, napi_value v, const napi_type_tag* tag) {
  napi_valuetype t;
  bool tagged = false;
  void* p = nullptr;
  if (v == nullptr || napi_typeof(env, v, &t) != napi_ok || t != napi_object) return nullptr;
  if (napi_check_object_type_tag(env, v, tag, &tagged) != napi_ok || !tagged) return nullptr;
  if (napi_unwrap(env, v, &p) != napi_ok) return nullptr;
  return p;
}

template <typename W>
TaggedWrap<W>::TaggedWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<W>(info) {
  RequireToken(info);
  info.This().As<Napi::Object>().TypeTag(&W::kTag);
}
template class TaggedWrap<HandleWrap>;
template class TaggedWrap<MemoryWrap>;

// Every getter and method of both wraps is registered through these: the receiver (`this`) is
// unwrapped with the type-tag check above, so a getter or method borrowed onto another object
// (the other wrap, a plain object, a primitive) is a TypeError, never a stray pointer. (ObjectWrap's
// own InstanceAccessor / InstanceMethod unwrap `this` unchecked.)
template <typename W, Napi::Value (W::*M)(const Napi::CallbackInfo&)>
static napi_value Guarded(napi_env env, napi_callback_info cbinfo) {
  return Napi::details::WrapCallback(env, [&]() -> napi_value {
    Napi::CallbackInfo info(env, cbinfo);
    W* self = static_cast<W*>(UnwrapTagged(env, info.This(), &W::kTag));
    if (!self) ThrowTypeError(env, std::string("Illegal invocation: this is not a ") + W::kClassName);
    return (self->*M)(info);
  });
}

template <typename W, Napi::Value (W::*M)(const Napi::CallbackInfo&)>
static Napi::ClassPropertyDescriptor<W> Getter(const char* name) {
  return napi_property_descriptor{name, nullptr, nullptr, Guarded<W, M>, nullptr, nullptr, napi_default, nullptr};
}

template <typename W, Napi::Value (W::*M)(const Napi::CallbackInfo&)>
static Napi::ClassPropertyDescriptor<W> Method(const char* name) {
  return napi_property_descriptor{name, nullptr, Guarded<W, M>, nullptr, nullptr, nullptr, napi_default, nullptr};
}

// ---- Handle ------------------------------------------------------------------------------------
// (Each wrap's Define is its property table, alike in shape to the other's; Getter/Method are the
// shared code.)

Napi::Function HandleWrap::Define(Napi::Env env) {
  using W = HandleWrap;
  return DefineClass(env, kClassName,
                     {
                         Getter<W, &W::GetFd>("fd"),
                         Getter<W, &W::GetClosed>("closed"),
                         Getter<W, &W::GetKind>("kind"),
                         Getter<W, &W::GetAreas>("areas"),
                         Method<W, &W::Close>("close"),
                     });
}

HandleWrap::~HandleWrap() {
  if (state) state->Close();
}

int HandleWrap::FdOrThrow(Napi::Env env) const {
  if (!state || state->fd < 0) ThrowTypeError(env, "handle is closed");
  return state->fd;
}

Napi::Value HandleWrap::GetFd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), state ? state->fd : -1);
}

Napi::Value HandleWrap::GetClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !state || state->fd < 0);
}

Napi::Value HandleWrap::GetKind(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), state ? KindName(state->kind) : "file");
}

Napi::Value HandleWrap::GetAreas(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), state ? static_cast<double>(state->AreaCount()) : 0);
}

Napi::Value HandleWrap::Close(const Napi::CallbackInfo& info) {
  if (state && state->fd >= 0) {
    Check(info.Env(), state->Close(), "close");
  }
  return info.Env().Undefined();
}

HandleWrap* ArgHandle(const Napi::CallbackInfo& info, size_t i, const char* name) {
  // ObjectWrap<T> wraps `this` as a T* (what HandleWrap::Unwrap casts back)
  HandleWrap* w = static_cast<HandleWrap*>(UnwrapTagged(info.Env(), info[i], &HandleWrap::kTag));
  if (!w || !w->state) ThrowTypeError(info.Env(), std::string(name) + " must be a native handle");
  return w;
}

HandleState& ArgOpenHandle(const Napi::CallbackInfo& info, size_t i, const char* name) {
  HandleWrap* w = ArgHandle(info, i, name);
  if (w->state->fd < 0) ThrowTypeError(info.Env(), std::string(name) + " is closed");
  return *w->state;
}

// ---- Memory ------------------------------------------------------------------------------------

Napi::Function MemoryWrap::Define(Napi::Env env) {
  using W = MemoryWrap;
  return DefineClass(env, kClassName,
                     {
                         Getter<W, &W::GetAddress>("address"),
                         Getter<W, &W::GetSize>("size"),
                         Getter<W, &W::GetPins>("pins"),
                         Getter<W, &W::GetFreed>("freed"),
                         Getter<W, &W::GetBuffer>("buffer"),
                         Method<W, &W::Read>("read"),
                         Method<W, &W::Write>("write"),
                         Method<W, &W::Lock>("lock"),
                         Method<W, &W::Pagemap>("pagemap"),
                         Method<W, &W::Free>("free"),
                     });
}

uint8_t* MemoryWrap::Span(Napi::Env env, uint64_t offset, uint64_t length) const {
  if (freed || !region || !region->mapped) ThrowTypeError(env, "memory is freed");
  if (offset > region->size || length > region->size - offset) ThrowRangeError(env, "range outside the allocation");
  return static_cast<uint8_t*>(region->addr) + offset;
}

Napi::Value MemoryWrap::GetAddress(const Napi::CallbackInfo& info) {
  return U64(info.Env(), region ? reinterpret_cast<uintptr_t>(region->addr) : 0);
}

Napi::Value MemoryWrap::GetSize(const Napi::CallbackInfo& info) { return U64(info.Env(), region ? region->size : 0); }

Napi::Value MemoryWrap::GetPins(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), region ? region->pins : 0);
}

Napi::Value MemoryWrap::GetFreed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), freed); }

Napi::Value MemoryWrap::GetBuffer(const Napi::CallbackInfo& info) {
  if (freed || buffer.IsEmpty()) return info.Env().Null();
  return buffer.Value();
}

Napi::Value MemoryWrap::Read(const Napi::CallbackInfo& info) {
  uint64_t offset = ArgU64(info, 0, "offset");
  uint32_t length = ArgU32(info, 1, "length");
  uint8_t* p = Span(info.Env(), offset, length);
  return Napi::Buffer<uint8_t>::Copy(info.Env(), p, length);
}

Napi::Value MemoryWrap::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t offset = ArgU64(info, 0, "offset");
  if (info.Length() < 2 || !info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    ThrowTypeError(env, "data must be a Uint8Array");
  Napi::Uint8Array data = info[1].As<Napi::Uint8Array>();
  if (data.ArrayBuffer().IsDetached()) ThrowTypeError(env, "data is detached");
  size_t n = data.ByteLength();
  uint8_t* p = Span(env, offset, n);
  if (n) std::memmove(p, data.Data(), n);
  return env.Undefined();
}

Napi::Value MemoryWrap::Lock(const Napi::CallbackInfo& info) {
  uint64_t offset = ArgU64(info, 0, "offset");
  uint64_t length = ArgU64(info, 1, "length");
  uint8_t* p = Span(info.Env(), offset, length);
  size_t ps = mem::page_size();
  uintptr_t lo = reinterpret_cast<uintptr_t>(p) & ~(ps - 1);
  uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + length + ps - 1) & ~(ps - 1);
  if (hi > lo) {
    Check(info.Env(), mem::lock(reinterpret_cast<void*>(lo), hi - lo), "mlock");
  }
  return info.Env().Undefined();
}

Napi::Value MemoryWrap::Pagemap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t first = ArgU32(info, 0, "firstPage");
  uint32_t count = ArgU32(info, 1, "count");
  // The entries go into a new BigUint64Array, and V8 aborts the process (not throws) when it
  // cannot allocate one: keep each call's array small (callers page through larger ranges).
  if (count > kMaxPagemapPages) ThrowRangeError(env, "count must be at most 2^20 pages per call");
  uint8_t* p = Span(env, static_cast<uint64_t>(first) * 4096, static_cast<uint64_t>(count) * 4096);
  Napi::BigUint64Array out = Napi::BigUint64Array::New(env, count);
  if (count) {
    Check(env, mem::pagemap_read(p, count, out.Data()), "pread", "/proc/self/pagemap");
  }
  return out;
}

Napi::Value MemoryWrap::Free(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (freed || !region) return env.Undefined();
  if (region->pins > 0) ThrowErrno(env, -EBUSY, "munmap");
  freed = true;
  bool can_unmap = true;
  if (!buffer.IsEmpty()) {
    Napi::ArrayBuffer ab = buffer.Value();
    if (!ab.IsDetached()) {
      napi_status st = napi_detach_arraybuffer(env, ab);
      if (st != napi_ok) {
        // Not detachable: a view may still read the bytes, so leave the unmap to the buffer's
        // finalizer rather than leave a dangling view.
        can_unmap = false;
      }
    }
    buffer.Reset();
  }
  if (region->accounted && can_unmap) {
    region->accounted = false;
    if (Addon* a = env.GetInstanceData<Addon>()) a->AdjustExternal(env, -static_cast<int64_t>(region->size));
  }
  if (can_unmap) region->Unmap();
  region.reset();
  return env.Undefined();
}

MemoryWrap* ArgMemory(const Napi::CallbackInfo& info, size_t i, const char* name) {
  MemoryWrap* w = static_cast<MemoryWrap*>(UnwrapTagged(info.Env(), info[i], &MemoryWrap::kTag));
  if (!w) ThrowTypeError(info.Env(), std::string(name) + " must be native memory");
  return w;
}

}  // namespace dmaiommu::binding
