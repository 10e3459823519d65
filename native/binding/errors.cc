#include "errors.h"

#include <cstring>
#include <string>

#include "addon.h"

namespace dmaiommu::binding {

static std::string ErrnoName(int e) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char* n = ::strerrorname_np(e);
  if (n) return n;
#endif
  std::string s("E");
  s += std::to_string(e);
  return s;
}

void ThrowErrno(Napi::Env env, int neg_errno, const char* syscall, const std::string& detail) {
  int e = neg_errno < 0 ? -neg_errno : neg_errno;
  Addon* a = env.GetInstanceData<Addon>();
  if (a && !a->error_class.IsEmpty()) {
    // A JS exception thrown by the class's constructor propagates instead (Napi::Error).
    Napi::Value d = detail.empty() ? env.Undefined() : Napi::Value(Napi::String::New(env, detail));
    Napi::Object err = a->error_class.New({Napi::Number::New(env, -e), Napi::String::New(env, syscall), d});
    throw Napi::Error(env, err);
  }
  std::string msg = std::string(syscall) + ": " + ErrnoName(e);
  if (!detail.empty()) msg += ": " + detail;
  Napi::Error err = Napi::Error::New(env, msg);
  err.Set("errno", Napi::Number::New(env, -e));
  err.Set("code", Napi::String::New(env, ErrnoName(e)));
  err.Set("syscall", Napi::String::New(env, syscall));
  throw err;
}

void ThrowTypeError(Napi::Env env, const std::string& message) { throw Napi::TypeError::New(env, message); }

void ThrowRangeError(Napi::Env env, const std::string& message) { throw Napi::RangeError::New(env, message); }

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) ThrowTypeError(env, "errorClass must be a constructor (errno, syscall, detail?)");
  env.GetInstanceData<Addon>()->error_class = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

}  // namespace dmaiommu::binding
