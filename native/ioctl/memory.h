// Anonymous DMA memory and /proc/self/pagemap. No Node-API.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dmaiommu::mem {

enum : uint32_t {
  kHugePages = 1u << 0,  // MAP_HUGETLB (2 MiB pages from the hugetlb pool)
  kPopulate = 1u << 1,   // MAP_POPULATE: pre-fault every page now
  kLock = 1u << 2,       // mlock the whole mapping after creating it (pages stay resident)
};

size_t page_size();
// mmap(MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE [| MAP_HUGETLB | MAP_POPULATE]). `size` must
// be a multiple of the page size (2 MiB with kHugePages). Returns 0 or -errno.
int map_anonymous(size_t size, uint32_t flags, void** out);
int unmap(void* addr, size_t size);
// mlock(2) a sub-range (faults the pages in and keeps them resident).
int lock(void* addr, size_t size);
// Raw pagemap entries of `count` 4 KiB pages starting at `addr` (bit 63 present, bits 0-54 PFN;
// the PFN reads as 0 without CAP_SYS_ADMIN). Returns 0 or -errno.
int pagemap_read(const void* addr, size_t count, uint64_t* out);

}  // namespace dmaiommu::mem
