// The one way native failures reach JS: an Error carrying `errno` (negative, Node convention),
// `code` ('EEXIST') and `syscall` ('ioctl(IOMMU_IOAS_MAP)'). The TypeScript side turns it into a
// BackendError; C++ formats no user-facing text beyond the syscall name.
#pragma once

#include <napi.h>

namespace dmaiommu::binding {

[[noreturn]] void ThrowErrno(Napi::Env env, int neg_errno, const char* syscall);
[[noreturn]] void ThrowTypeError(Napi::Env env, const std::string& message);
[[noreturn]] void ThrowRangeError(Napi::Env env, const std::string& message);

}  // namespace dmaiommu::binding
