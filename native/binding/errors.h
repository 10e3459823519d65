// The one way native failures reach JS. A kernel/system call that failed throws the backend's error
// class (BackendError in lib/errors.ts, handed over once at load with `setErrorClass`) constructed
// as `new ErrorClass(errno, syscall, detail?)`: errno negative (Node convention), syscall the bare
// name every backend uses ('IOMMU_IOAS_MAP', 'VFIO_IOMMU_MAP_DMA', 'mmap', 'open'). Before a class
// is set (raw addon use) it is a plain Error with `errno`, `code` ('EEXIST') and `syscall`.
// Misuse from JS (wrong type, closed handle, out-of-range number) is a TypeError / RangeError.
#pragma once

#include <napi.h>

#include <string>

namespace dmaiommu::binding {

[[noreturn]] void ThrowErrno(Napi::Env env, int neg_errno, const char* syscall, const std::string& detail = {});
[[noreturn]] void ThrowTypeError(Napi::Env env, const std::string& message);
[[noreturn]] void ThrowRangeError(Napi::Env env, const std::string& message);

// The errno check of every call into native/ioctl (which return >= 0 or -errno): `r` when it
// succeeded, else the error above.
inline int Check(Napi::Env env, int r, const char* syscall, const std::string& detail = {}) {
  if (r < 0) ThrowErrno(env, r, syscall, detail);
  return r;
}

// setErrorClass(cls): the class ThrowErrno constructs from now on in this environment.
Napi::Value SetErrorClass(const Napi::CallbackInfo& info);

}  // namespace dmaiommu::binding
