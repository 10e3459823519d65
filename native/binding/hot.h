// The hot path of map and unmap, the calls a driver makes per I/O. Handles and memory are named by
// small integer ids (each wrap's read-only `hotId`), and the arguments travel through a slot array
// shared with JS (one ArrayBuffer per environment, viewed as 64-bit and 32-bit slots), so a hot
// call takes no arguments: nothing to convert, no type tag to check, nothing to unwrap. Under an
// emulator that is most of what a Node-API call costs beyond the transition itself.
//
// Slot layout (lib/backend/native/hot.ts mirrors it):
//   u64[0] iova   u64[1] offset in the memory   u64[2] length   (u64[3] unused)
//   u32[8] handle id (container or iommufd)   u32[9] memory id   u32[10] flags   u32[11] IOAS id
// (u32 indices count 32-bit slots from the start of the buffer: u32[8] is byte 32.)
//
// Every hot call zeroes all slots when it returns or throws. Id 0 names nothing, so a value left
// from an earlier call can never act: if JS's writes stop reaching the slots (the buffer was
// detached or transferred away), the next call finds id 0 and throws a TypeError instead of
// running on the previous call's handle or memory. The slot memory is owned here, not by V8, and
// the loader marks the buffer untransferable (worker_threads.markAsUntransferable).
#pragma once

#include <napi.h>

#include <cstdint>
#include <cstring>
#include <unordered_map>

namespace dmaiommu::binding {

class Addon;
class HandleWrap;
class MemoryWrap;

constexpr size_t kHotBytes = 48;
enum HotU64 : size_t { kHotIova = 0, kHotOffset = 1, kHotLength = 2 };
enum HotU32 : size_t { kHotHandle = 8, kHotMemory = 9, kHotFlags = 10, kHotIoas = 11 };

// Live wraps by id, per environment. Shared (shared_ptr) by the Addon and every registered wrap, so
// a wrap finalized after the Addon still has a registry to leave. Ids are never reused.
struct HotRegistry {
  std::unordered_map<uint32_t, HandleWrap*> handles;
  std::unordered_map<uint32_t, MemoryWrap*> memory;
  uint32_t next_id = 1;
  // The slot memory (8-byte aligned); the exported ArrayBuffer is an external view of it holding a
  // share of this registry, so the slots stay valid whatever JS does to the buffer.
  alignas(8) uint8_t slots[kHotBytes] = {};
  uint64_t* u64 = reinterpret_cast<uint64_t*>(slots);
  uint32_t* u32 = reinterpret_cast<uint32_t*>(slots);
};

// Exports `hotSlots` (the ArrayBuffer) and dmaMapHot, dmaUnmapHot, ioasMapHot, ioasUnmapHot.
// Called from the Addon's constructor (before the environment's instance data is set).
void RegisterHot(Napi::Env env, Napi::Object exports, Addon& addon);

}  // namespace dmaiommu::binding
