#include "sys.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace dmaiommu::sys {

int open_fd(const char* path, int flags) {
  int fd;
  do {
    fd = ::open(path, flags | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  return fd < 0 ? -errno : fd;
}

int close_fd(int fd) {
  if (fd < 0) return -EBADF;
  int r = ::close(fd);
  if (r < 0 && errno != EINTR) return -errno;
  return 0;
}

int xioctl(int fd, unsigned long request, void* arg) {
  int r;
  do {
    r = ::ioctl(fd, request, arg);
  } while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : r;
}

int xioctl_int(int fd, unsigned long request, unsigned long arg) {
  int r;
  do {
    r = ::ioctl(fd, request, arg);
  } while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : r;
}

int pread_exact(int fd, void* buf, size_t size, uint64_t offset) {
  ssize_t r;
  do {
    r = ::pread(fd, buf, size, static_cast<off_t>(offset));
  } while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  if (static_cast<size_t>(r) != size) return -EIO;
  return 0;
}

int pwrite_exact(int fd, const void* buf, size_t size, uint64_t offset) {
  ssize_t r;
  do {
    r = ::pwrite(fd, buf, size, static_cast<off_t>(offset));
  } while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  if (static_cast<size_t>(r) != size) return -EIO;
  return 0;
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
