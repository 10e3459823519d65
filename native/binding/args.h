// Argument helpers: validate types and ranges in C++ too (TypeError / RangeError, never a crash).
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

#include "errors.h"

namespace dmaiommu::binding {

// Hot path (every map/unmap): one Node-API call per argument. napi_get_value_bigint_uint64 and
// napi_get_value_double check the type themselves (napi_bigint_expected / napi_number_expected,
// no JS exception), so the former IsBigInt()/IsNumber() + checked As<>() round trips are gone.
inline uint64_t ArgU64(const Napi::CallbackInfo& info, size_t i, const char* name) {
  bool lossless = false;
  uint64_t v = 0;
  if (info.Length() <= i || napi_get_value_bigint_uint64(info.Env(), info[i], &v, &lossless) != napi_ok)
    ThrowTypeError(info.Env(), std::string(name) + " must be a bigint");
  if (!lossless) ThrowRangeError(info.Env(), std::string(name) + " must be in [0, 2^64)");
  return v;
}

inline double ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* name) {
  double d = 0;
  if (info.Length() <= i || napi_get_value_double(info.Env(), info[i], &d) != napi_ok)
    ThrowTypeError(info.Env(), std::string(name) + " must be a number");
  return d;
}

inline uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  double d = ArgNumber(info, i, name);
  if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint64_t>(d)))
    ThrowRangeError(info.Env(), std::string(name) + " must be an integer in [0, 2^32)");
  return static_cast<uint32_t>(d);
}

inline int32_t ArgI32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  double d = ArgNumber(info, i, name);
  if (!(d >= -2147483648.0 && d <= 2147483647.0) || d != static_cast<double>(static_cast<int64_t>(d)))
    ThrowRangeError(info.Env(), std::string(name) + " must be a 32-bit integer");
  return static_cast<int32_t>(d);
}

inline std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString()) ThrowTypeError(info.Env(), std::string(name) + " must be a string");
  std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos) ThrowTypeError(info.Env(), std::string(name) + " must not contain NUL");
  return s;
}

inline Napi::BigInt U64(Napi::Env env, uint64_t v) { return Napi::BigInt::New(env, v); }

}  // namespace dmaiommu::binding
