// Plain system calls used by the bindings (no Node-API here). Every function returns a
// non-negative value on success or -errno.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace dmaiommu::sys {

// open(2) with O_CLOEXEC added. Returns the fd or -errno.
int open_fd(const char* path, int flags);
// close(2); returns 0 or -errno (EINTR is treated as closed, as Linux always releases the fd).
int close_fd(int fd);
// ioctl(2) with EINTR retry; returns the ioctl's result or -errno.
int xioctl(int fd, unsigned long request, void* arg);
int xioctl_int(int fd, unsigned long request, unsigned long arg);
// pread/pwrite of exactly `size` bytes (1, 2, 4 or 8) at `offset`: one access of that width.
int pread_exact(int fd, void* buf, size_t size, uint64_t offset);
int pwrite_exact(int fd, const void* buf, size_t size, uint64_t offset);

// /dev/kmsg opened non-blocking and positioned at the end (only records logged from now on).
int kmsg_open_at_end();
// One record of /dev/kmsg into *out. Returns 1 when a record was read, 0 when none is pending
// (EAGAIN) or at end of file, -errno on error. EPIPE (records overwritten before we read them) is skipped.
int kmsg_read_record(int fd, std::string* out);

}  // namespace dmaiommu::sys
