/**
 * Child process of `npm run bench` (run with --expose-gc): memory of live simulated mappings,
 * measured in a fresh process so nothing else sits on the heap.
 *
 *   sim-memory.js mappings N   N 4 KiB mappings at consecutive IOVAs, each of its own page of
 *                              lazily allocated RAM: heap (V8 heap + external) and VmRSS before
 *                              and after.
 *   sim-memory.js tib          1 TiB of IOVA mapped as 524,288 separate 2 MiB MapLogicalRangeEx
 *                              calls over one lazy 1 TiB allocation (hugePages: 2 MiB aligned),
 *                              48-bit domain: VmRSS after.
 * Prints one JSON line. Descriptors are built per call and dropped (they are the caller's).
 */
import { openPlatform } from '../lib/index.js';
import { fullGc, nowNs, vmRss } from './common.js';
import { type Lab, openLab } from './lab.js';

/** Holds what is measured: without it the platform is garbage once the loop is done. */
export const keep: unknown[] = [];

function heap(): number {
  fullGc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/** Maps `n` consecutive `size`-byte pieces of memory at `pa` to IOVAs from `iova`, and prints the heap and VmRSS around it. */
function measure(mode: string, lab: Lab, pa: bigint, iova: bigint, n: number, size: bigint): void {
  const { platform, V2, domain } = lab;
  const heapBefore = heap();
  const rssBefore = vmRss();
  const t0 = nowNs();
  for (let i = 0; i < n; i++) {
    const off = BigInt(i) * size;
    V2.MapLogicalRangeEx(domain, 3, { MapType: 1, ContiguousRange: { Base: pa + off, Size: size } }, iova + off);
  }
  const seconds = (nowNs() - t0) / 1e9;
  const heapAfter = heap();
  const rssAfter = vmRss();
  if (platform.closed) throw new Error('platform closed');
  console.log(JSON.stringify({ mode, mappings: n, heapBefore, heapAfter, rssBefore, rssAfter, seconds }));
}

function main(): void {
  const mode = process.argv[2];
  const count = Number(process.argv[3] ?? 0);
  if (mode === 'mappings') {
    const lab = openLab('0000:00:03.0');
    const { platform, V2, domain } = lab;
    keep.push(platform, V2, domain);
    const mem = platform.allocateDmaMemory(BigInt(count) * 4096n, { lazy: true });
    const pa = mem.physicalAddress;
    const iova = 0x100000000n;
    // one warm-up mapping so the first table allocations and the JIT are not counted
    V2.MapLogicalRangeEx(domain, 3, { MapType: 1, ContiguousRange: { Base: pa, Size: 4096n } }, iova);
    V2.UnmapLogicalRange(domain, iova, 1);
    measure(mode, lab, pa, iova, count, 4096n);
    return;
  }
  if (mode === 'tib') {
    const TIB = 1n << 40n;
    const TWO_M = 2n << 20n;
    const platform = openPlatform({ backend: 'simulated', simulator: { addressWidth: 48, ramSize: 2n * TIB } });
    const lab = openLab('0000:00:03.0', platform);
    keep.push(platform, lab.V2, lab.domain);
    const mem = platform.allocateDmaMemory(TIB, { lazy: true, hugePages: true });
    measure(mode, lab, mem.physicalAddress, TIB, Number(TIB / TWO_M), TWO_M);
    return;
  }
  throw new Error(`unknown mode ${String(mode)}`);
}

main();
