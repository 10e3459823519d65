// Event notification from the kernel: an eventfd, and the VFIO request notifier wired to it
// (VFIO_DEVICE_SET_IRQS on VFIO_PCI_REQ_IRQ_INDEX: vfio-pci signals the eventfd when the kernel
// wants the device back, e.g. on hot-unplug, and repeats every 10 s until user space lets go).
// Plain C++; 0 / non-negative on success, -errno on failure. No Node-API.
#pragma once

#include <cstdint>

namespace dmaiommu::notify {

// eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK): the fd or -errno.
int eventfd_create();
// Read (and so reset) the eventfd's counter: 1 with *count set, 0 when nothing was signalled
// (EAGAIN), -errno otherwise.
int eventfd_drain(int fd, uint64_t* count);
// The number of interrupts of `index` the device has (VFIO_DEVICE_GET_IRQ_INFO), or -errno.
int device_irq_count(int device_fd, uint32_t index);
// Route the device's request notifier to `event_fd`; -1 unregisters it.
int device_set_req_trigger(int device_fd, int event_fd);

constexpr uint32_t kVfioPciReqIrqIndex = 4;  // VFIO_PCI_REQ_IRQ_INDEX

}  // namespace dmaiommu::notify
