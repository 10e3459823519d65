#include "errors.h"

#include <cstring>
#include <string>

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

void ThrowErrno(Napi::Env env, int neg_errno, const char* syscall) {
  int e = neg_errno < 0 ? -neg_errno : neg_errno;
  Napi::Error err = Napi::Error::New(env, std::string(syscall) + ": " + ErrnoName(e));
  err.Set("errno", Napi::Number::New(env, -e));
  err.Set("code", Napi::String::New(env, ErrnoName(e)));
  err.Set("syscall", Napi::String::New(env, syscall));
  throw err;
}

void ThrowTypeError(Napi::Env env, const std::string& message) { throw Napi::TypeError::New(env, message); }

void ThrowRangeError(Napi::Env env, const std::string& message) { throw Napi::RangeError::New(env, message); }

}  // namespace dmaiommu::binding
