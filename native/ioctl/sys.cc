#include "sys.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace dmaiommu::sys {

namespace {
// The one EINTR loop: runs `call` (a system call returning < 0 with errno on failure) until it is
// not interrupted, and returns its result or -errno.
template <typename Call>
auto retry(Call call) -> decltype(call()) {
  decltype(call()) r;
  do {
    r = call();
  } while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : r;
}

// A pread/pwrite result: 0 when exactly `size` bytes moved, -EIO when fewer, else the -errno.
int exact(ssize_t r, size_t size) {
  if (r < 0) return static_cast<int>(r);
  return static_cast<size_t>(r) == size ? 0 : -EIO;
}
}  // namespace

int open_fd(const char* path, int flags) {
  return retry([&] { return ::open(path, flags | O_CLOEXEC); });
}

int close_fd(int fd) {
  if (fd < 0) return -EBADF;
  int r = ::close(fd);
  if (r < 0 && errno != EINTR) return -errno;
  return 0;
}

int xioctl(int fd, unsigned long request, void* arg) {
  return retry([&] { return ::ioctl(fd, request, arg); });
}

int xioctl_int(int fd, unsigned long request, unsigned long arg) {
  return retry([&] { return ::ioctl(fd, request, arg); });
}

int pread_exact(int fd, void* buf, size_t size, uint64_t offset) {
  return exact(retry([&] { return ::pread(fd, buf, size, static_cast<off_t>(offset)); }), size);
}

int pwrite_exact(int fd, const void* buf, size_t size, uint64_t offset) {
  return exact(retry([&] { return ::pwrite(fd, buf, size, static_cast<off_t>(offset)); }), size);
}

int kmsg_open_at_end() {
  int fd = open_fd("/dev/kmsg", O_RDONLY | O_NONBLOCK);
  if (fd < 0) return fd;
  if (::lseek(fd, 0, SEEK_END) < 0) {
    int e = errno;
    ::close(fd);
    return -e;
  }
  return fd;
}

int kmsg_read_record(int fd, std::string* out) {
  // A kmsg record is at most ~8 KiB (PRINTK_MESSAGE_MAX); read() returns exactly one record.
  char buf[8192];
  for (;;) {
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r == 0) return 0;  // end of file: not /dev/kmsg (which never ends), nothing more to read
    if (r > 0) {
      out->assign(buf, static_cast<size_t>(r));
      return 1;
    }
    if (errno == EINTR || errno == EPIPE) continue;  // EPIPE: we were overrun; next read resyncs
    if (errno == EAGAIN) return 0;
    return -errno;
  }
}

}  // namespace dmaiommu::sys
