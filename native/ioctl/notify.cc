#include "notify.h"

#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sys.h"

namespace dmaiommu::notify {
namespace {

// <linux/vfio.h>: VFIO_DEVICE_GET_IRQ_INFO = _IO(';', 100 + 9), VFIO_DEVICE_SET_IRQS = _IO(';', 100 + 10).
constexpr unsigned long kGetIrqInfo = _IO(';', 100 + 9);
constexpr unsigned long kSetIrqs = _IO(';', 100 + 10);
static_assert(kGetIrqInfo == 0x3b6d);
static_assert(kSetIrqs == 0x3b6e);

struct vfio_irq_info {
  uint32_t argsz;
  uint32_t flags;
  uint32_t index;
  uint32_t count;
};
static_assert(sizeof(vfio_irq_info) == 16);

// struct vfio_irq_set followed by one __s32 eventfd (the data of DATA_EVENTFD, count 1).
struct vfio_irq_set_one_fd {
  uint32_t argsz;
  uint32_t flags;
  uint32_t index;
  uint32_t start;
  uint32_t count;
  int32_t fd;
};
static_assert(sizeof(vfio_irq_set_one_fd) == 24);

constexpr uint32_t kDataEventfd = 1u << 2;    // VFIO_IRQ_SET_DATA_EVENTFD
constexpr uint32_t kActionTrigger = 1u << 5;  // VFIO_IRQ_SET_ACTION_TRIGGER

}  // namespace

int eventfd_create() {
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  return fd < 0 ? -errno : fd;
}

int eventfd_drain(int fd, uint64_t* count) {
  for (;;) {
    uint64_t v = 0;
    ssize_t n = ::read(fd, &v, sizeof v);
    if (n == static_cast<ssize_t>(sizeof v)) {
      *count = v;
      return 1;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return 0;
    return n < 0 ? -errno : -EIO;
  }
}

int device_irq_count(int device_fd, uint32_t index) {
  vfio_irq_info info;
  std::memset(&info, 0, sizeof info);
  info.argsz = sizeof info;
  info.index = index;
  int r = sys::xioctl(device_fd, kGetIrqInfo, &info);
  return r < 0 ? r : static_cast<int>(info.count);
}

int device_set_req_trigger(int device_fd, int event_fd) {
  vfio_irq_set_one_fd s;
  std::memset(&s, 0, sizeof s);
  s.argsz = sizeof s;
  s.flags = kDataEventfd | kActionTrigger;
  s.index = kVfioPciReqIrqIndex;
  s.start = 0;
  s.count = 1;
  s.fd = event_fd;
  int r = sys::xioctl(device_fd, kSetIrqs, &s);
  return r < 0 ? r : 0;
}

}  // namespace dmaiommu::notify
