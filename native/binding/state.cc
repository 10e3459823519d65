#include "state.h"

#include "../ioctl/memory.h"
#include "../ioctl/sys.h"
#include "addon.h"

namespace dmaiommu::binding {

Region::~Region() {
  Unmap();
  if (owner) owner->ForgetRegion(this);
}

void Region::Unmap() {
  if (mapped) {
    mem::unmap(addr, size);
    mapped = false;
  }
}

const char* KindName(HandleKind k) {
  switch (k) {
    case HandleKind::kIommufd: return "iommufd";
    case HandleKind::kDevice: return "device";
    case HandleKind::kContainer: return "container";
    case HandleKind::kGroup: return "group";
    case HandleKind::kKmsg: return "kmsg";
    case HandleKind::kFile: break;
  }
  return "file";
}

void HandleState::AddArea(uint32_t space, uint64_t iova, uint64_t length, std::shared_ptr<Region> region) {
  region->pins++;
  areas[space][iova] = Area{length, std::move(region)};
}

void HandleState::RemoveAreas(uint32_t space, uint64_t iova, uint64_t length) {
  auto s = areas.find(space);
  if (s == areas.end()) return;
  uint64_t end = iova + length;
  if (end < iova) end = UINT64_MAX;  // unmap-all (length U64_MAX) wraps
  auto& m = s->second;
  for (auto it = m.lower_bound(iova); it != m.end() && it->first < end;) {
    it->second.region->pins--;
    it = m.erase(it);
  }
  if (m.empty()) areas.erase(s);
}

void HandleState::ClearSpace(uint32_t space) {
  auto s = areas.find(space);
  if (s == areas.end()) return;
  for (auto& kv : s->second) kv.second.region->pins--;
  areas.erase(s);
}

void HandleState::ClearAll() {
  for (auto& s : areas)
    for (auto& kv : s.second) kv.second.region->pins--;
  areas.clear();
}

size_t HandleState::AreaCount() const {
  size_t n = 0;
  for (auto& s : areas) n += s.second.size();
  return n;
}

int HandleState::Close() {
  if (fd < 0) return 0;
  int r = sys::close_fd(fd);
  fd = -1;
  Unref();
  return r;
}

void HandleState::Unref() {
  if (file_refs <= 0) return;
  if (--file_refs > 0) return;
  // The kernel released the file: what it held goes with it.
  auto self = shared_from_this();  // keep alive while we unlink
  switch (kind) {
    case HandleKind::kGroup:
      LeaveContainer();
      break;
    default:
      break;
  }
  ClearAll();
  if (parent) {
    auto p = std::move(parent);
    p->Unref();
  }
}

void HandleState::JoinContainer(const std::shared_ptr<HandleState>& c) {
  container = c;
  c->groups++;
  c->file_refs++;  // a group keeps its container's kernel object alive
}

void HandleState::LeaveContainer() {
  if (!container) return;
  auto c = std::move(container);
  container.reset();
  if (--c->groups == 0) c->ClearAll();  // type1: the last group out tears down every mapping
  c->Unref();
}

}  // namespace dmaiommu::binding
