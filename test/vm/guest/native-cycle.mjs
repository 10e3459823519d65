// One native lifetime cycle through the public API, shared by the lifetime guest test and its child
// processes (native-holder-child.mjs). Plain JS over the built package (dist/), so a child runs with
// bare `node`. Inside a `dma-iommu vm` guest only (root, edu devices bound to vfio-pci).
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const lib = await import(`${root}dist/lib/index.js`);
export const { openPlatform, EduDevice, IommuError, DomainTypeTranslate, IOMMU_ACCESS_READ, IOMMU_ACCESS_WRITE } = lib;

export const IOVA = 0x100000n;
export const DMA_BYTES = 2048;

/** Open fds of this process (/proc/self/fd, minus the one readdir itself holds). */
export function openFds() {
  return readdirSync('/proc/self/fd').length - 1;
}

/** VmLck / VmPin of this process, in kB (/proc/self/status). */
export function vmStatus() {
  const s = readFileSync('/proc/self/status', 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return { VmLck: kb('VmLck'), VmPin: kb('VmPin') };
}

/** A fresh pattern for cycle `n` (never all-zero, never the same twice in a row). */
export function pattern(n, length = DMA_BYTES) {
  const b = new Uint8Array(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + n * 7 + 1) & 0xff || 0x5a;
  return b;
}

/**
 * RAM → edu → RAM through the IOMMU: the device reads `length` bytes at `iova` and writes them
 * back at `iova + half`. Returns the index of the first wrong byte, or -1.
 */
export async function eduRoundTrip(platform, dev, mem, n, iova = IOVA, length = DMA_BYTES) {
  const half = mem.size / 2n;
  const src = pattern(n, length);
  mem.bytes.set(src, 0);
  mem.bytes.fill(0, Number(half), Number(half) + length);
  const edu = new EduDevice(platform.deviceRegions(dev));
  edu.enableBusMaster();
  await edu.dmaToDevice(iova, length, 0);
  await edu.dmaFromDevice(iova + half, length, 0);
  const got = mem.bytes.subarray(Number(half), Number(half) + length);
  for (let i = 0; i < length; i++) if (got[i] !== src[i]) return i;
  return -1;
}

/**
 * Create → attach → map → (DMA) → unmap → detach → delete on `platform`, with `mem` (≥ 2 pages,
 * allocated once by the caller). Returns the first wrong byte of the DMA (-1: all right; null: no DMA).
 */
export async function cycle(platform, pdo, mem, n, dma) {
  const dev = platform.CreateDevice(pdo);
  try {
    const dom = platform.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
    try {
      platform.AttachDeviceEx(dom, dev);
      try {
        const iova = platform.MapLogicalRangeEx(dom, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, mem.asMdl(), IOVA, null, null);
        try {
          return dma ? await eduRoundTrip(platform, dev, mem, n, iova) : null;
        } finally {
          platform.UnmapLogicalRange(dom, iova, mem.size / 4096n);
        }
      } finally {
        platform.DetachDeviceEx(dev);
      }
    } finally {
      platform.DeleteDomain(dom);
    }
  } finally {
    platform.DeleteDevice(dev);
  }
}
