// The one shape of a struct-argument ioctl (iommufd.cc, vfio.cc): an argument struct built with
// designated initializers (every field not named is zero; the uAPI structs have no implicit padding,
// their layouts are checked in native/abi), its size field set here, passed to the kernel, and read
// back only on success. Returns 0 or -errno (sys::xioctl's convention). No Node-API.
#pragma once

#include <cstring>

#include "sys.h"

namespace dmaiommu::ioctl {

// Sets the leading size field the kernel reads the struct length from: `size` in iommufd's
// structs, `argsz` in VFIO's.
template <typename T>
void set_size(T& v) {
  if constexpr (requires { v.argsz; })
    v.argsz = sizeof v;
  else
    v.size = sizeof v;
}

// A zeroed argument struct with its size set (for callers that build it in place).
template <typename T>
T zeroed() {
  T v;
  std::memset(&v, 0, sizeof v);
  set_size(v);
  return v;
}

// For ioctls with nothing to read back.
constexpr auto kNothing = [](const auto&) {};

// ioctl(fd, request, &a); `read(a)` takes the kernel's outputs when it succeeded.
template <typename T, typename Read = decltype(kNothing)>
int call(int fd, unsigned long request, T a, Read read = kNothing) {
  set_size(a);
  int r = sys::xioctl(fd, request, &a);
  if (r < 0) return r;
  read(a);
  return 0;
}

}  // namespace dmaiommu::ioctl
