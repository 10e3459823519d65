// Native bookkeeping behind the JS wraps: kernel objects reachable through an fd, the DMA areas
// they hold, and the anonymous memory regions those areas pin. Plain C++ (no JS values), owned
// per environment (worker-safe: nothing here is static).
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>

namespace dmaiommu::binding {

class Addon;

// An anonymous mapping made by allocMemory. Shared by the Memory wrap, its ArrayBuffer's finalizer
// and every DMA area that maps it; unmapped when the last of them lets go, or by an explicit
// free() (refused while pinned), or by the environment's cleanup hook.
struct Region {
  void* addr = nullptr;
  size_t size = 0;
  bool mapped = false;
  bool lazy = false;
  bool accounted = false;  // reported to V8 with AdjustExternalMemory
  // Kernel mappings (Areas) that reference this region: the one record of pins. Memory safety
  // needs it (never unmap memory the kernel still maps: free() is EBUSY while > 0); the JS
  // backend keeps no count of its own and reads it through the wrap's `pins` getter
  // (lib/backend/native/mapping.ts mapCount: free()'s EBUSY and inspect()).
  int pins = 0;
  Addon* owner = nullptr;  // cleared when the environment is torn down
  ~Region();
  void Unmap();
};

// A kernel mapping as far as memory safety needs it, and no further: its extent (to drop the right
// areas when the kernel reports an unmap) and the region it pins (so the memory stays mapped while
// the kernel maps it, and free() is refused). The record of what is mapped, with permissions and
// pieces, is the JS backend's area shadow (lib/backend/native/areas.ts, README "Architecture").
struct Area {
  uint64_t length;
  std::shared_ptr<Region> region;
};

enum class HandleKind { kFile, kIommufd, kDevice, kContainer, kGroup, kKmsg };
const char* KindName(HandleKind k);

// One open file description. `file_refs` models the kernel's view: other objects keep a file
// alive after its fd is closed (a bound device keeps its iommufd context; a group's device fds
// keep the group; groups keep their container). When it reaches 0 the kernel has released the
// object and with it every mapping it held, so the areas (and their pins) go too.
struct HandleState : std::enable_shared_from_this<HandleState> {
  int fd = -1;
  HandleKind kind = HandleKind::kFile;
  std::string path;
  int file_refs = 1;
  // Mappings by address space: iommufd → IOAS id; type1 container → 0.
  std::map<uint32_t, std::map<uint64_t, Area>> areas;
  // device → its iommufd (after BIND) or its group (GET_DEVICE_FD); group → its container.
  std::shared_ptr<HandleState> parent;
  std::shared_ptr<HandleState> container;  // group only
  int groups = 0;                          // container only: groups set into it

  void AddArea(uint32_t space, uint64_t iova, uint64_t length, std::shared_ptr<Region> region);
  // Remove the areas that start in [iova, iova + length) (the kernel removed whole areas only).
  void RemoveAreas(uint32_t space, uint64_t iova, uint64_t length);
  void ClearSpace(uint32_t space);
  void ClearAll();
  size_t AreaCount() const;

  // Close the fd (idempotent). Returns 0 or -errno of close(2).
  int Close();
  // Drop one file reference; at zero, apply what the kernel does on release.
  void Unref();
  // A group was set into `c` / unset from its container.
  void JoinContainer(const std::shared_ptr<HandleState>& c);
  void LeaveContainer();
};

}  // namespace dmaiommu::binding
