/*
 * dma-probe: drive one QEMU `edu` device through the Linux IOMMU user-space API and report what the
 * kernel did, as JSON on stdout. A stand-in for the native addon's ioctl layer in the guest tests of
 * `dma-iommu vm` (test/vm/guest); built on the host by lib/vm/helper.ts, run inside the guest.
 *
 *   dma-probe --api type1|iommufd --bdf 0000:00:03.0 [--iova 0x100000] [--length 2048] [--no-dma]
 *
 * Sequence: open the device (type1: container + group; iommufd: /dev/iommu + VFIO device cdev), read
 * the IOVA ranges, map a 2 MiB buffer at --iova, set bus master, check the edu id, DMA --length bytes
 * RAM->edu->RAM (iova -> 0x40000 -> iova+0x2000) and compare, unmap, then DMA edu->RAM to the now
 * unmapped iova+0x2000: the IOMMU must block it (memory unchanged; the guest kernel logs a DMAR fault).
 *
 * The ABI comes from native/abi/uapi.h (the build host's linux-libc-dev 6.1 has no linux/iommufd.h and
 * no VFIO cdev ioctls); its layouts are checked at compile time against the kernel's uapi values.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* ---- ABI: VFIO and iommufd, shared with the benchmarks' C baseline -------------------------------- */
#include "../../native/abi/uapi.h"

/* ---- edu (QEMU hw/misc/edu.c) ------------------------------------------------------------------- */
#define EDU_ID 0x00
#define EDU_LIVENESS 0x04
#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_COUNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_DMA_START 0x1
#define EDU_DMA_TO_RAM 0x2
#define EDU_BUFFER 0x40000
/* QEMU 7.2 aborts the whole VM on a transfer that touches the end of the 4 KiB buffer: stay well inside. */
#define EDU_MAX_LENGTH 2048

#define MAP_SIZE (2u << 20)
#define DST_OFFSET 0x2000u

/* ---- output ------------------------------------------------------------------------------------- */
static char json[16384];
static size_t json_len;

static void out(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(json + json_len, sizeof json - json_len, fmt, ap);
  va_end(ap);
  if (n > 0) json_len += (size_t)n < sizeof json - json_len ? (size_t)n : sizeof json - json_len - 1;
}

static void fail(const char *step, int err, const char *detail) {
  /* Close the JSON object being built: everything so far, then the failure. */
  out("\"ok\":false,\"step\":\"%s\",\"errno\":%d,\"error\":\"%s\"", step, err, err ? strerror(err) : detail);
  if (err && detail) out(",\"detail\":\"%s\"", detail);
  out("}\n");
  fputs(json, stdout);
  exit(1);
}
#define CHECK(cond, step) do { if (!(cond)) fail(step, errno, NULL); } while (0)

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- device access ------------------------------------------------------------------------------ */
static int device_fd = -1;
static uint64_t bar0_offset, config_offset;

static uint32_t bar_read32(uint32_t reg) {
  uint32_t v = 0;
  if (pread(device_fd, &v, 4, (off_t)(bar0_offset + reg)) != 4) fail("bar0 read", errno, NULL);
  return v;
}

static void bar_write32(uint32_t reg, uint32_t v) {
  if (pwrite(device_fd, &v, 4, (off_t)(bar0_offset + reg)) != 4) fail("bar0 write", errno, NULL);
}

static void region_info(uint32_t index, struct vfio_region_info *ri, const char *step) {
  memset(ri, 0, sizeof *ri);
  ri->argsz = sizeof *ri;
  ri->index = index;
  CHECK(ioctl(device_fd, VFIO_DEVICE_GET_REGION_INFO, ri) == 0, step);
}

static void set_bus_master(void) {
  uint16_t cmd = 0;
  if (pread(device_fd, &cmd, 2, (off_t)(config_offset + 4)) != 2) fail("config read", errno, NULL);
  cmd |= 0x4;
  if (pwrite(device_fd, &cmd, 2, (off_t)(config_offset + 4)) != 2) fail("config write", errno, NULL);
}

/* Start one edu DMA and wait (bounded) for it to finish. Returns microseconds taken, or fails. */
static uint64_t edu_dma(uint64_t src, uint64_t dst, uint32_t count, uint32_t cmd, const char *step) {
  bar_write32(EDU_DMA_SRC, (uint32_t)src);
  bar_write32(EDU_DMA_DST, (uint32_t)dst);
  bar_write32(EDU_DMA_COUNT, count);
  uint64_t t0 = now_us();
  bar_write32(EDU_DMA_CMD, cmd | EDU_DMA_START);
  while (bar_read32(EDU_DMA_CMD) & EDU_DMA_START) {
    if (now_us() - t0 > 20u * 1000000u) fail(step, 0, "edu DMA did not complete within 20 s");
    usleep(1000);
  }
  return now_us() - t0;
}

/* ---- sysfs -------------------------------------------------------------------------------------- */
static int sysfs_group(const char *bdf) {
  char path[PATH_MAX], link[PATH_MAX];
  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/iommu_group", bdf);
  ssize_t n = readlink(path, link, sizeof link - 1);
  if (n < 0) return -1;
  link[n] = 0;
  const char *slash = strrchr(link, '/');
  return atoi(slash ? slash + 1 : link);
}

static int sysfs_vfio_dev(const char *bdf, char *name, size_t len) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/vfio-dev", bdf);
  DIR *d = opendir(path);
  if (!d) return -1;
  struct dirent *e;
  int found = -1;
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, "vfio", 4) == 0) {
      snprintf(name, len, "%s", e->d_name);
      found = 0;
      break;
    }
  }
  closedir(d);
  return found;
}

/* ---- the two back ends -------------------------------------------------------------------------- */
struct backend {
  int (*map)(uint64_t vaddr, uint64_t iova, uint64_t size);
  int (*unmap)(uint64_t iova, uint64_t size, uint64_t *unmapped);
};

static int container_fd = -1, group_fd = -1, iommufd = -1;
static uint32_t ioas_id;

static int type1_map(uint64_t vaddr, uint64_t iova, uint64_t size) {
  struct vfio_iommu_type1_dma_map m = {
      .argsz = sizeof m, .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
      .vaddr = vaddr, .iova = iova, .size = size};
  return ioctl(container_fd, VFIO_IOMMU_MAP_DMA, &m);
}

static int type1_unmap(uint64_t iova, uint64_t size, uint64_t *unmapped) {
  struct vfio_iommu_type1_dma_unmap u = {.argsz = sizeof u, .iova = iova, .size = size};
  int r = ioctl(container_fd, VFIO_IOMMU_UNMAP_DMA, &u);
  *unmapped = u.size;
  return r;
}

static int iommufd_map(uint64_t vaddr, uint64_t iova, uint64_t size) {
  struct iommu_ioas_map m = {
      .size = sizeof m,
      .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
      .ioas_id = ioas_id, .user_va = vaddr, .length = size, .iova = iova};
  return ioctl(iommufd, IOMMU_IOAS_MAP, &m);
}

static int iommufd_unmap(uint64_t iova, uint64_t size, uint64_t *unmapped) {
  struct iommu_ioas_unmap u = {.size = sizeof u, .ioas_id = ioas_id, .iova = iova, .length = size};
  int r = ioctl(iommufd, IOMMU_IOAS_UNMAP, &u);
  *unmapped = u.length;
  return r;
}

static void open_type1(const char *bdf) {
  int group = sysfs_group(bdf);
  if (group < 0) fail("iommu_group", errno, "device has no IOMMU group");
  out("\"group\":%d,", group);
  container_fd = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
  CHECK(container_fd >= 0, "open /dev/vfio/vfio");
  int api = ioctl(container_fd, VFIO_GET_API_VERSION);
  if (api != VFIO_API_VERSION) fail("VFIO_GET_API_VERSION", errno, "unexpected API version");
  if (ioctl(container_fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0)
    fail("VFIO_CHECK_EXTENSION", errno, "no TYPE1v2 IOMMU");
  char path[64];
  snprintf(path, sizeof path, "/dev/vfio/%d", group);
  group_fd = open(path, O_RDWR | O_CLOEXEC);
  CHECK(group_fd >= 0, "open group");
  struct vfio_group_status st = {.argsz = sizeof st};
  CHECK(ioctl(group_fd, VFIO_GROUP_GET_STATUS, &st) == 0, "VFIO_GROUP_GET_STATUS");
  if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) fail("VFIO_GROUP_GET_STATUS", 0, "group not viable");
  CHECK(ioctl(group_fd, VFIO_GROUP_SET_CONTAINER, &container_fd) == 0, "VFIO_GROUP_SET_CONTAINER");
  CHECK(ioctl(container_fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == 0, "VFIO_SET_IOMMU");

  /* GET_INFO: the first call tells how big the capability chain is. */
  struct vfio_iommu_type1_info probe = {.argsz = sizeof probe};
  CHECK(ioctl(container_fd, VFIO_IOMMU_GET_INFO, &probe) == 0, "VFIO_IOMMU_GET_INFO");
  uint32_t argsz = probe.argsz > sizeof probe ? probe.argsz : (uint32_t)sizeof probe;
  struct vfio_iommu_type1_info *info = calloc(1, argsz);
  if (!info) fail("calloc", ENOMEM, NULL);
  info->argsz = argsz;
  CHECK(ioctl(container_fd, VFIO_IOMMU_GET_INFO, info) == 0, "VFIO_IOMMU_GET_INFO");
  if (info->flags & VFIO_IOMMU_INFO_PGSIZES) out("\"pageSizes\":\"0x%" PRIx64 "\",", info->iova_pgsizes);
  out("\"iovaRanges\":[");
  if ((info->flags & VFIO_IOMMU_INFO_CAPS) && info->cap_offset) {
    uint32_t off = info->cap_offset;
    while (off && off + sizeof(struct vfio_info_cap_header) <= argsz) {
      struct vfio_info_cap_header *h = (void *)((char *)info + off);
      if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
        struct vfio_iommu_type1_info_cap_iova_range *c = (void *)h;
        for (uint32_t i = 0; i < c->nr_iovas; i++)
          out("%s{\"start\":\"0x%" PRIx64 "\",\"last\":\"0x%" PRIx64 "\"}", i ? "," : "",
              c->iova_ranges[i].start, c->iova_ranges[i].end);
      }
      off = h->next;
    }
  }
  out("],");
  free(info);
  device_fd = ioctl(group_fd, VFIO_GROUP_GET_DEVICE_FD, bdf);
  CHECK(device_fd >= 0, "VFIO_GROUP_GET_DEVICE_FD");
}

static void open_iommufd(const char *bdf) {
  char name[256], path[300];
  out("\"group\":%d,", sysfs_group(bdf));
  if (sysfs_vfio_dev(bdf, name, sizeof name) != 0) fail("vfio-dev", errno, "no vfio-dev/vfioN for the device");
  out("\"vfioDevice\":\"%s\",", name);
  iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
  CHECK(iommufd >= 0, "open /dev/iommu");
  snprintf(path, sizeof path, "/dev/vfio/devices/%s", name);
  device_fd = open(path, O_RDWR | O_CLOEXEC);
  CHECK(device_fd >= 0, "open vfio cdev");
  struct vfio_device_bind_iommufd bind = {.argsz = sizeof bind, .iommufd = iommufd};
  CHECK(ioctl(device_fd, VFIO_DEVICE_BIND_IOMMUFD, &bind) == 0, "VFIO_DEVICE_BIND_IOMMUFD");
  out("\"devId\":%u,", bind.out_devid);
  struct iommu_ioas_alloc alloc = {.size = sizeof alloc};
  CHECK(ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc) == 0, "IOMMU_IOAS_ALLOC");
  ioas_id = alloc.out_ioas_id;
  out("\"ioasId\":%u,", ioas_id);
  uint8_t hw[64] = {0};
  struct iommu_hw_info hi = {.size = sizeof hi, .dev_id = bind.out_devid, .data_len = sizeof hw,
                                .data_uptr = (uintptr_t)hw};
  CHECK(ioctl(iommufd, IOMMU_GET_HW_INFO, &hi) == 0, "IOMMU_GET_HW_INFO");
  out("\"hwInfo\":{\"type\":%u,\"length\":%u,\"capabilities\":\"0x%" PRIx64 "\"},", hi.out_data_type,
      hi.data_len, hi.out_capabilities);
  struct vfio_device_attach_iommufd_pt at = {.argsz = sizeof at, .pt_id = ioas_id};
  CHECK(ioctl(device_fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at) == 0, "VFIO_DEVICE_ATTACH_IOMMUFD_PT");
  out("\"hwptId\":%u,", at.pt_id);
  struct iommu_iova_range ranges[16];
  struct iommu_ioas_iova_ranges rq = {.size = sizeof rq, .ioas_id = ioas_id, .num_iovas = 16,
                                         .allowed_iovas = (uintptr_t)ranges};
  CHECK(ioctl(iommufd, IOMMU_IOAS_IOVA_RANGES, &rq) == 0, "IOMMU_IOAS_IOVA_RANGES");
  out("\"iovaAlignment\":\"0x%" PRIx64 "\",\"iovaRanges\":[", rq.out_iova_alignment);
  for (uint32_t i = 0; i < rq.num_iovas && i < 16; i++)
    out("%s{\"start\":\"0x%" PRIx64 "\",\"last\":\"0x%" PRIx64 "\"}", i ? "," : "", ranges[i].start,
        ranges[i].last);
  out("],");
}

static void usage(void) {
  fputs("usage: dma-probe --api type1|iommufd --bdf DDDD:BB:DD.F [--iova ADDR] [--length N<=2048] [--no-dma]\n",
        stderr);
  exit(2);
}

int main(int argc, char **argv) {
  const char *api = NULL, *bdf = NULL;
  uint64_t iova = 0x100000;
  uint32_t length = EDU_MAX_LENGTH;
  int do_dma = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--api") && i + 1 < argc) api = argv[++i];
    else if (!strcmp(argv[i], "--bdf") && i + 1 < argc) bdf = argv[++i];
    else if (!strcmp(argv[i], "--iova") && i + 1 < argc) iova = strtoull(argv[++i], NULL, 0);
    else if (!strcmp(argv[i], "--length") && i + 1 < argc) length = (uint32_t)strtoul(argv[++i], NULL, 0);
    else if (!strcmp(argv[i], "--no-dma")) do_dma = 0;
    else usage();
  }
  if (!api || !bdf || (strcmp(api, "type1") && strcmp(api, "iommufd"))) usage();
  if (length == 0 || length > EDU_MAX_LENGTH) usage();
  /* edu's DMA mask is 28 bits: the IOVA and everything it touches must stay below 256 MiB. */
  if (iova & 0xfff || iova + MAP_SIZE > (1u << 28)) usage();

  out("{\"api\":\"%s\",\"bdf\":\"%s\",", api, bdf);
  struct backend be;
  if (!strcmp(api, "type1")) {
    open_type1(bdf);
    be = (struct backend){type1_map, type1_unmap};
  } else {
    open_iommufd(bdf);
    be = (struct backend){iommufd_map, iommufd_unmap};
  }

  struct vfio_device_info di = {.argsz = sizeof di};
  CHECK(ioctl(device_fd, VFIO_DEVICE_GET_INFO, &di) == 0, "VFIO_DEVICE_GET_INFO");
  struct vfio_region_info bar0, cfg;
  region_info(VFIO_PCI_BAR0_REGION_INDEX, &bar0, "VFIO_DEVICE_GET_REGION_INFO(BAR0)");
  region_info(VFIO_PCI_CONFIG_REGION_INDEX, &cfg, "VFIO_DEVICE_GET_REGION_INFO(CONFIG)");
  bar0_offset = bar0.offset;
  config_offset = cfg.offset;
  out("\"device\":{\"regions\":%u,\"irqs\":%u,\"bar0Size\":\"0x%" PRIx64 "\"},", di.num_regions, di.num_irqs,
      bar0.size);
  uint32_t id = bar_read32(EDU_ID);
  bar_write32(EDU_LIVENESS, 0x12345678u);
  uint32_t live = bar_read32(EDU_LIVENESS);
  out("\"edu\":{\"id\":\"0x%08x\",\"liveness\":%s},", id, live == ~0x12345678u ? "true" : "false");
  if ((id & 0xff) != 0xed) fail("edu id", 0, "BAR0 does not look like an edu device");

  if (!do_dma) {
    out("\"ok\":true}\n");
    fputs(json, stdout);
    return 0;
  }

  uint8_t *buf = mmap(NULL, MAP_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (buf == MAP_FAILED) fail("mmap", errno, NULL);
  uint32_t seed = (uint32_t)now_us() | 1u;
  for (uint32_t i = 0; i < length; i++) {
    seed = seed * 1103515245u + 12345u;
    buf[i] = (uint8_t)(seed >> 16);
  }
  memset(buf + DST_OFFSET, 0, length);
  CHECK(be.map((uintptr_t)buf, iova, MAP_SIZE) == 0, "map");
  out("\"map\":{\"iova\":\"0x%" PRIx64 "\",\"size\":\"0x%x\"},", iova, MAP_SIZE);
  set_bus_master();

  uint64_t t1 = edu_dma(iova, EDU_BUFFER, length, 0, "dma to device");
  uint64_t t2 = edu_dma(EDU_BUFFER, iova + DST_OFFSET, length, EDU_DMA_TO_RAM, "dma to memory");
  long mismatch = -1;
  for (uint32_t i = 0; i < length; i++)
    if (buf[DST_OFFSET + i] != buf[i]) { mismatch = (long)i; break; }
  out("\"roundTrip\":{\"length\":%u,\"srcIova\":\"0x%" PRIx64 "\",\"dstIova\":\"0x%" PRIx64
      "\",\"equal\":%s,\"firstMismatch\":%ld,\"toDeviceUs\":%" PRIu64 ",\"toMemoryUs\":%" PRIu64 "},",
      length, iova, iova + DST_OFFSET, mismatch < 0 ? "true" : "false", mismatch, t1, t2);

  uint64_t unmapped = 0;
  CHECK(be.unmap(iova, MAP_SIZE, &unmapped) == 0, "unmap");
  out("\"unmap\":{\"bytes\":\"0x%" PRIx64 "\"},", unmapped);

  /* The blocked DMA: edu -> RAM at an IOVA that is no longer mapped. */
  memset(buf + DST_OFFSET, 0xa5, length);
  uint64_t t3 = edu_dma(EDU_BUFFER, iova + DST_OFFSET, length, EDU_DMA_TO_RAM, "blocked dma");
  long changed = -1;
  for (uint32_t i = 0; i < length; i++)
    if (buf[DST_OFFSET + i] != 0xa5) { changed = (long)i; break; }
  out("\"blocked\":{\"iova\":\"0x%" PRIx64 "\",\"length\":%u,\"completed\":true,\"unchanged\":%s,"
      "\"firstChanged\":%ld,\"us\":%" PRIu64 "},",
      iova + DST_OFFSET, length, changed < 0 ? "true" : "false", changed, t3);

  int ok = mismatch < 0 && changed < 0 && unmapped == MAP_SIZE;
  out("\"ok\":%s}\n", ok ? "true" : "false");
  fputs(json, stdout);
  return ok ? 0 : 1;
}
