/** The guest benchmarks' workloads (bench/native.ts, bench/native-profile.ts, and the C baseline's arguments in native-c.ts). */

export const IOVA = 0x100000000n;
export const PAGES_4K = 256;
export const BYTES_RANGE = 256 * 1024 * 1024;

export interface Workload {
  readonly name: 'map-unmap-4k' | 'reserved-4k' | 'map-256m';
  /** C baseline workload. */
  readonly c: 'map-unmap-4k' | 'map-range';
  readonly ops: number;
  readonly warmup: number;
  /** What a rate counts: pairs, or bytes mapped+unmapped. */
  readonly unit: 'pairs/s' | 'bytes/s';
}

export function workloads(backend: string): Workload[] {
  // Under TCG: C does ~25-70k 4 KiB pairs/s and a 256 MiB map+unmap in ~20 ms. Slices are
  // short (~0.1 s) so that C and TS alternate often on a noisy host.
  const pairs = backend === 'iommufd' ? 2000 : 1000;
  return [
    { name: 'map-unmap-4k', c: 'map-unmap-4k', ops: pairs, warmup: 4000, unit: 'pairs/s' },
    { name: 'reserved-4k', c: 'map-unmap-4k', ops: pairs, warmup: 4000, unit: 'pairs/s' },
    { name: 'map-256m', c: 'map-range', ops: 3, warmup: 10, unit: 'bytes/s' },
  ];
}

