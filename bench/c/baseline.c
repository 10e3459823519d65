/*
 * C baseline for `npm run bench:vm`: the same kernel operations the dma-iommu addon issues for
 * each benchmark workload, with nothing in between, so that TS ÷ C measures what the library
 * adds on top of the ioctls.
 *
 *   baseline --backend iommufd|type1 --bdf 0000:00:03.0 --workload map-unmap-4k|map-range
 *            [--pages K] [--ops N] [--warmup W] [--bytes B] [--iova 0x100000000] [--serve]
 *
 * Set-up mirrors lib/backend/native:
 *   iommufd: open /dev/iommu; open the device cdev /dev/vfio/devices/vfioN;
 *            VFIO_DEVICE_BIND_IOMMUFD; IOMMU_IOAS_ALLOC; IOMMU_HWPT_ALLOC (flags 0) on the IOAS
 *            (falling back to the IOAS itself); VFIO_DEVICE_ATTACH_IOMMUFD_PT.
 *            map = IOMMU_IOAS_MAP(FIXED_IOVA | READABLE | WRITEABLE); unmap = IOMMU_IOAS_UNMAP.
 *   type1:   open /dev/vfio/vfio (a container per domain); open /dev/vfio/<group>;
 *            VFIO_GROUP_SET_CONTAINER; VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU).
 *            map = VFIO_IOMMU_MAP_DMA(READ | WRITE); unmap = VFIO_IOMMU_UNMAP_DMA.
 * Memory mirrors the addon's allocMemory for a non-lazy allocation: mmap(MAP_PRIVATE |
 * MAP_ANONYMOUS | MAP_NORESERVE | MAP_POPULATE) then mlock (pre-faulted and resident before any
 * timing). Every ioctl argument struct is built zeroed per call, as the addon does.
 *
 * Workloads (timed with CLOCK_MONOTONIC around the loop only):
 *   map-unmap-4k: a K-page buffer; pair i maps page (i mod K) at iova + (i mod K) * 4096, then
 *                 unmaps it. W untimed pairs first, then N timed pairs.
 *   map-range:    a B-byte buffer; each op maps all of it at iova, then unmaps it. W untimed ops
 *                 first, then N timed ops.
 * Output: one JSON line {"ok":true,"workload":...,"ops":N,"ns":...,"bytes":...}. With --serve the
 * set-up and warm-up happen once, then each stdin line "run N" times N more operations and
 * answers with such a line (so the caller can interleave short slices with its own).
 *
 * The build machine's headers (linux-libc-dev 6.1) have no linux/iommufd.h and none of the VFIO
 * cdev ioctls: the ABI comes from native/abi/uapi.h, checked at compile time against the
 * kernel's values (the addon's typed C++ copy in native/abi/ is checked against the same values).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* The VFIO/iommufd uAPI, shared with the guest tests' DMA probe (checked against the kernel's values). */
#include "../../native/abi/uapi.h"

/* ---- helpers --------------------------------------------------------------------------------- */
static void die(const char* what) {
  int e = errno;
  printf("{\"ok\":false,\"error\":\"%s: %s\",\"errno\":%d}\n", what, strerror(e), e);
  fflush(stdout);
  exit(1);
}

static int xioctl(int fd, unsigned long req, void* arg) {
  int r;
  do r = ioctl(fd, req, arg);
  while (r < 0 && errno == EINTR);
  return r;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the two kernel paths -------------------------------------------------------------------- */
static int g_iommufd = -1, g_ioas = 0, g_container = -1;
static int g_iommufd_mode = 0;

static void setup_iommufd(const char* bdf) {
  char path[512];
  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/vfio-dev", bdf);
  DIR* d = opendir(path);
  if (!d) die("opendir vfio-dev (is the device bound to vfio-pci with VFIO_DEVICE_CDEV?)");
  char node[300] = "";
  struct dirent* e;
  while ((e = readdir(d)) != NULL)
    if (strncmp(e->d_name, "vfio", 4) == 0) snprintf(node, sizeof node, "/dev/vfio/devices/%s", e->d_name);
  closedir(d);
  if (!node[0]) die("no vfioN under vfio-dev");
  g_iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
  if (g_iommufd < 0) die("open /dev/iommu");
  int dev = open(node, O_RDWR | O_CLOEXEC);
  if (dev < 0) die("open device cdev");
  struct vfio_device_bind_iommufd bind;
  memset(&bind, 0, sizeof bind);
  bind.argsz = sizeof bind;
  bind.iommufd = g_iommufd;
  if (xioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind) < 0) die("VFIO_DEVICE_BIND_IOMMUFD");
  struct iommu_ioas_alloc a;
  memset(&a, 0, sizeof a);
  a.size = sizeof a;
  if (xioctl(g_iommufd, IOMMU_IOAS_ALLOC, &a) < 0) die("IOMMU_IOAS_ALLOC");
  g_ioas = (int)a.out_ioas_id;
  uint32_t pt = a.out_ioas_id;
  struct iommu_hwpt_alloc h;
  memset(&h, 0, sizeof h);
  h.size = sizeof h;
  h.dev_id = bind.out_devid;
  h.pt_id = a.out_ioas_id;
  if (xioctl(g_iommufd, IOMMU_HWPT_ALLOC, &h) == 0) pt = h.out_hwpt_id;
  struct vfio_device_attach_iommufd_pt at;
  memset(&at, 0, sizeof at);
  at.argsz = sizeof at;
  at.pt_id = pt;
  if (xioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at) < 0) die("VFIO_DEVICE_ATTACH_IOMMUFD_PT");
  g_iommufd_mode = 1;
}

static void setup_type1(const char* bdf) {
  char path[512], link[512];
  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/iommu_group", bdf);
  ssize_t n = readlink(path, link, sizeof link - 1);
  if (n < 0) die("readlink iommu_group");
  link[n] = 0;
  const char* slash = strrchr(link, '/');
  int group = atoi(slash ? slash + 1 : link);
  g_container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
  if (g_container < 0) die("open /dev/vfio/vfio");
  snprintf(path, sizeof path, "/dev/vfio/%d", group);
  int gfd = open(path, O_RDWR | O_CLOEXEC);
  if (gfd < 0) die("open group");
  struct vfio_group_status st;
  memset(&st, 0, sizeof st);
  st.argsz = sizeof st;
  if (xioctl(gfd, VFIO_GROUP_GET_STATUS, &st) < 0) die("VFIO_GROUP_GET_STATUS");
  if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
    errno = EBUSY;
    die("group not viable");
  }
  if (xioctl(gfd, VFIO_GROUP_SET_CONTAINER, &g_container) < 0) die("VFIO_GROUP_SET_CONTAINER");
  if (ioctl(g_container, VFIO_SET_IOMMU, (unsigned long)VFIO_TYPE1v2_IOMMU) < 0) die("VFIO_SET_IOMMU");
}

/* The argument structs are built with designated initializers (every other byte zero; the uAPI
 * structs have no implicit padding), as the addon does (native/ioctl/call.h). */
static inline int do_map(uint64_t iova, void* va, uint64_t length) {
  uint64_t user_va = (uint64_t)(uintptr_t)va;
  if (g_iommufd_mode) {
    struct iommu_ioas_map m = {.size = sizeof m, .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
                               .ioas_id = (uint32_t)g_ioas, .user_va = user_va, .length = length, .iova = iova};
    return xioctl(g_iommufd, IOMMU_IOAS_MAP, &m);
  }
  struct vfio_iommu_type1_dma_map m = {.argsz = sizeof m, .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE, .vaddr = user_va, .iova = iova, .size = length};
  return xioctl(g_container, VFIO_IOMMU_MAP_DMA, &m);
}

static inline int do_unmap(uint64_t iova, uint64_t length) {
  if (g_iommufd_mode) {
    struct iommu_ioas_unmap u = {.size = sizeof u, .ioas_id = (uint32_t)g_ioas, .iova = iova, .length = length};
    return xioctl(g_iommufd, IOMMU_IOAS_UNMAP, &u);
  }
  struct vfio_iommu_type1_dma_unmap u = {.argsz = sizeof u, .iova = iova, .size = length};
  return xioctl(g_container, VFIO_IOMMU_UNMAP_DMA, &u);
}

static void* alloc_locked(size_t size) {
  void* p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) die("mmap");
  if (mlock(p, size) < 0) die("mlock");
  return p;
}

/* n operations of the workload: 4 KiB pairs cycling through the buffer's pages, or whole-range
 * map+unmap. Returns -1 on the first failing ioctl (errno set). */
static int run_ops(int range, uint8_t* buf, uint64_t pages, uint64_t bytes, uint64_t iova, uint64_t n, uint64_t* next) {
  if (range) {
    for (uint64_t i = 0; i < n; i++) {
      if (do_map(iova, buf, bytes) < 0) return -1;
      if (do_unmap(iova, bytes) < 0) return -1;
    }
    return 0;
  }
  uint64_t p = *next;
  for (uint64_t i = 0; i < n; i++) {
    if (do_map(iova + p * 4096, buf + p * 4096, 4096) < 0) return -1;
    if (do_unmap(iova + p * 4096, 4096) < 0) return -1;
    if (++p == pages) p = 0;
  }
  *next = p;
  return 0;
}

static void report(const char* backend, const char* workload, uint64_t ops, uint64_t ns, uint64_t moved) {
  printf("{\"ok\":true,\"backend\":\"%s\",\"workload\":\"%s\",\"ops\":%llu,\"ns\":%llu,\"bytes\":%llu}\n", backend, workload,
         (unsigned long long)ops, (unsigned long long)ns, (unsigned long long)moved);
  fflush(stdout);
}

int main(int argc, char** argv) {
  const char* backend = "iommufd";
  const char* bdf = "0000:00:03.0";
  const char* workload = "map-unmap-4k";
  uint64_t pages = 256, ops = 1000, warmup = 100, bytes = 256ull << 20, iova = 0x100000000ull;
  int serve = 0;
  for (int i = 1; i < argc; i += 2) {
    const char* k = argv[i];
    if (!strcmp(k, "--serve")) {
      serve = 1;
      i--;
      continue;
    }
    if (i + 1 >= argc) {
      errno = EINVAL;
      die(k);
    }
    const char* v = argv[i + 1];
    if (!strcmp(k, "--backend")) backend = v;
    else if (!strcmp(k, "--bdf")) bdf = v;
    else if (!strcmp(k, "--workload")) workload = v;
    else if (!strcmp(k, "--pages")) pages = strtoull(v, NULL, 0);
    else if (!strcmp(k, "--ops")) ops = strtoull(v, NULL, 0);
    else if (!strcmp(k, "--warmup")) warmup = strtoull(v, NULL, 0);
    else if (!strcmp(k, "--bytes")) bytes = strtoull(v, NULL, 0);
    else if (!strcmp(k, "--iova")) iova = strtoull(v, NULL, 0);
    else {
      errno = EINVAL;
      die(k);
    }
  }
  if (!strcmp(backend, "iommufd")) setup_iommufd(bdf);
  else if (!strcmp(backend, "type1") || !strcmp(backend, "vfio-type1")) setup_type1(bdf);
  else {
    errno = EINVAL;
    die("--backend");
  }

  /* set up the workload's memory (pre-faulted and locked before any timing) */
  int range = 0;
  uint8_t* buf;
  if (!strcmp(workload, "map-unmap-4k")) buf = alloc_locked(pages * 4096);
  else if (!strcmp(workload, "map-range")) {
    range = 1;
    buf = alloc_locked(bytes);
  } else {
    errno = EINVAL;
    die("--workload");
  }
  uint64_t next = 0; /* map-unmap-4k: the next pair's page (continues across runs) */
  if (run_ops(range, buf, pages, bytes, iova, warmup, &next) < 0) die("warm-up");
  if (!serve) {
    uint64_t t0 = now_ns();
    if (run_ops(range, buf, pages, bytes, iova, ops, &next) < 0) die("map/unmap");
    uint64_t t1 = now_ns();
    report(backend, workload, ops, t1 - t0, range ? ops * bytes : ops * 4096);
    return 0;
  }
  /* --serve: "run N" on stdin → N more timed operations, one JSON line each; EOF or "quit" ends */
  printf("{\"ok\":true,\"ready\":true}\n");
  fflush(stdout);
  char line[128];
  while (fgets(line, sizeof line, stdin)) {
    unsigned long long n = 0;
    if (sscanf(line, "run %llu", &n) != 1) break;
    uint64_t t0 = now_ns();
    if (run_ops(range, buf, pages, bytes, iova, n, &next) < 0) die("map/unmap");
    uint64_t t1 = now_ns();
    report(backend, workload, n, t1 - t0, range ? n * bytes : n * 4096);
  }
  return 0;
}
