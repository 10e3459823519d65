#include "memory.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sys.h"

namespace dmaiommu::mem {

size_t page_size() {
  static const size_t ps = static_cast<size_t>(::sysconf(_SC_PAGESIZE));  // immutable: safe to share
  return ps;
}

int map_anonymous(size_t size, uint32_t flags, void** out) {
  if (size == 0) return -EINVAL;
  int mflags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  if (flags & kHugePages) mflags |= MAP_HUGETLB;
  if (flags & kPopulate) mflags |= MAP_POPULATE;
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, mflags, -1, 0);
  if (p == MAP_FAILED) return -errno;
  if (flags & kLock) {
    if (::mlock(p, size) < 0) {
      int e = errno;
      ::munmap(p, size);
      return -e;
    }
  }
  *out = p;
  return 0;
}

int unmap(void* addr, size_t size) { return ::munmap(addr, size) < 0 ? -errno : 0; }

int lock(void* addr, size_t size) { return ::mlock(addr, size) < 0 ? -errno : 0; }

int pagemap_read(const void* addr, size_t count, uint64_t* out) {
  int fd = sys::open_fd("/proc/self/pagemap", O_RDONLY);
  if (fd < 0) return fd;
  uint64_t first = reinterpret_cast<uintptr_t>(addr) / 4096;
  size_t done = 0;
  int result = 0;
  while (done < count) {
    ssize_t r = ::pread(fd, out + done, (count - done) * 8, static_cast<off_t>((first + done) * 8));
    if (r < 0) {
      if (errno == EINTR) continue;
      result = -errno;
      break;
    }
    if (r == 0 || r % 8 != 0) {
      result = -EIO;
      break;
    }
    done += static_cast<size_t>(r) / 8;
  }
  ::close(fd);
  return result;
}

}  // namespace dmaiommu::mem
