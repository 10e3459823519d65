/**
 * Runs INSIDE a `dma-iommu vm` guest (root, real IOMMU): the public interface on the native
 * backend against the C baseline (bench/c/baseline.c) doing the same kernel operations, one
 * repetition of each at a time, interleaved (TS C, C TS, ...). Started by bench/vm.ts.
 *
 *   node --expose-gc dist/bench/native.js --backend iommufd|vfio-type1 --baseline PATH
 *        [--bdf 0000:00:03.0] [--reps N] [--json]
 *
 * Workloads (the same IOVAs, sizes, flags and pre-faulted, locked memory on both sides):
 *   map-unmap-4k     MapLogicalRangeEx (ContiguousRange of one page, explicit IOVA, read+write)
 *                    + UnmapLogicalRange (1 page); pair i uses page i mod 256 of a 1 MiB buffer
 *                    at IOVA 4 GiB + 4 KiB·(i mod 256).
 *   reserved-4k      the reserved-range fast path: one ReserveLogicalAddressRange of 1 MiB at
 *                    IOVA 4 GiB (untimed), then MapReservedLogicalRange (offset 4 KiB·(i mod 256))
 *                    + UnmapReservedLogicalRange pairs: the same kernel operations as map-unmap-4k.
 *   map-256m         MapLogicalRangeEx of a pre-faulted 256 MiB buffer (its MDL, as a driver
 *                    would describe it) at IOVA 4 GiB, then UnmapLogicalRange of its 65536 pages.
 * Each side sets up its own device/domain/memory per repetition (untimed), warms up, and times
 * the loop only. The device is the edu at --bdf, attached to the domain.
 */
import { spawnSync } from 'node:child_process';
import {
  DMA_IOMMU_INTERFACE_EX_VERSION_2,
  DomainTypeTranslate,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT,
  type IOMMU_MAP_PHYSICAL_ADDRESS,
  IoGetIommuInterfaceEx,
  openPlatform,
} from '../lib/index.js';
import { type Sample, fullGc, hasFlag, median, note, nowNs, option, rate } from './common.js';

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
  // TCG is slow: ~25-70k C pairs/s; a 256 MiB map+unmap takes a good fraction of a second.
  const pairs = backend === 'iommufd' ? 6000 : 3000;
  return [
    { name: 'map-unmap-4k', c: 'map-unmap-4k', ops: pairs, warmup: 500, unit: 'pairs/s' },
    { name: 'reserved-4k', c: 'map-unmap-4k', ops: pairs, warmup: 500, unit: 'pairs/s' },
    { name: 'map-256m', c: 'map-range', ops: 2, warmup: 1, unit: 'bytes/s' },
  ];
}

/** One repetition through the public interface. Returns ops (pairs or bytes) and time. */
function runTs(backend: 'iommufd' | 'vfio-type1', bdf: string, w: Workload): Sample {
  const platform = openPlatform({ backend });
  try {
    const iface = IoGetIommuInterfaceEx(DMA_IOMMU_INTERFACE_EX_VERSION_2, 0n, { platform });
    if (iface.Version !== 2) throw new Error('expected the V2 table');
    const V2 = iface.V2;
    const pdo = platform.findDevice(bdf);
    if (!pdo) throw new Error(`no device ${bdf}`);
    const dev = V2.CreateDevice(pdo);
    const dom = V2.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
    V2.AttachDeviceEx(dom, dev);
    let sample: Sample;
    if (w.name === 'map-256m') {
      const mem = platform.allocateDmaMemory(BYTES_RANGE);
      const desc = mem.asMdl();
      const pages = BYTES_RANGE / 4096;
      for (let i = 0; i < w.warmup; i++) {
        V2.MapLogicalRangeEx(dom, 3, desc, IOVA);
        V2.UnmapLogicalRange(dom, IOVA, pages);
      }
      fullGc();
      const t0 = nowNs();
      for (let i = 0; i < w.ops; i++) {
        V2.MapLogicalRangeEx(dom, 3, desc, IOVA);
        V2.UnmapLogicalRange(dom, IOVA, pages);
      }
      sample = { ops: w.ops * BYTES_RANGE, ns: nowNs() - t0 };
      mem.free();
    } else {
      const mem = platform.allocateDmaMemory(PAGES_4K * 4096);
      const descs: IOMMU_MAP_PHYSICAL_ADDRESS[] = [];
      const iovas: bigint[] = [];
      const offsets: bigint[] = [];
      for (let p = 0; p < PAGES_4K; p++) {
        descs.push(mem.asContiguousRange(BigInt(p * 4096), 4096n));
        iovas.push(IOVA + BigInt(p * 4096));
        offsets.push(BigInt(p * 4096));
      }
      if (w.name === 'map-unmap-4k') {
        const loop = (n: number): void => {
          for (let i = 0; i < n; i++) {
            const p = i % PAGES_4K;
            V2.MapLogicalRangeEx(dom, 3, descs[p], iovas[p]);
            V2.UnmapLogicalRange(dom, iovas[p], 1);
          }
        };
        loop(w.warmup);
        fullGc();
        const t0 = nowNs();
        loop(w.ops);
        sample = { ops: w.ops, ns: nowNs() - t0 };
      } else {
        const token = V2.ReserveLogicalAddressRange(dom, BigInt(PAGES_4K * 4096), IOVA);
        const loop = (n: number): void => {
          for (let i = 0; i < n; i++) {
            const p = i % PAGES_4K;
            const seg: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT = V2.MapReservedLogicalRange(token, offsets[p], 3, descs[p]);
            V2.UnmapReservedLogicalRange(seg);
          }
        };
        loop(w.warmup);
        fullGc();
        const t0 = nowNs();
        loop(w.ops);
        sample = { ops: w.ops, ns: nowNs() - t0 };
        V2.FreeReservedLogicalAddressRange(token);
      }
      mem.free();
    }
    V2.DetachDeviceEx(dev);
    V2.DeleteDomain(dom);
    V2.DeleteDevice(dev);
    return sample;
  } finally {
    platform.close();
  }
}

function runC(baseline: string, backend: string, bdf: string, w: Workload): Sample {
  const args = ['--backend', backend === 'vfio-type1' ? 'type1' : backend, '--bdf', bdf, '--workload', w.c, '--ops', String(w.ops), '--warmup', String(w.warmup), '--iova', `0x${IOVA.toString(16)}`];
  if (w.c === 'map-unmap-4k') args.push('--pages', String(PAGES_4K));
  else args.push('--bytes', String(BYTES_RANGE));
  const r = spawnSync(baseline, args, { encoding: 'utf8' });
  const line = (r.stdout ?? '').trim().split('\n').at(-1) ?? '';
  let out: { ok?: boolean; ns?: number; ops?: number; bytes?: number; error?: string } = {};
  try {
    out = JSON.parse(line) as typeof out;
  } catch {
    /* reported below */
  }
  if (r.status !== 0 || !out.ok) throw new Error(`C baseline failed (${r.status ?? r.signal}): ${out.error ?? line} ${r.stderr ?? ''}`);
  return { ops: w.unit === 'bytes/s' ? (out.bytes as number) : (out.ops as number), ns: out.ns as number };
}

export interface WorkloadResult {
  readonly name: string;
  readonly unit: string;
  readonly ratio: number;
  readonly ratios: number[];
  readonly ts: number;
  readonly c: number;
  readonly ops: number;
  readonly reps: number;
}

function main(): void {
  const argv = process.argv.slice(2);
  const backend = option(argv, '--backend') as 'iommufd' | 'vfio-type1';
  if (backend !== 'iommufd' && backend !== 'vfio-type1') throw new Error('--backend iommufd|vfio-type1');
  const baseline = option(argv, '--baseline');
  if (!baseline) throw new Error('--baseline PATH (the C baseline binary)');
  const bdf = option(argv, '--bdf') ?? '0000:00:03.0';
  const reps = Number(option(argv, '--reps') ?? 5);
  const only = option(argv, '--only');
  const out: WorkloadResult[] = [];
  for (const w of workloads(backend)) {
    if (only && !only.split(',').includes(w.name)) continue;
    const t = nowNs();
    const ts: number[] = [];
    const cs: number[] = [];
    const ratios: number[] = [];
    for (let r = 0; r < reps; r++) {
      let a: Sample;
      let b: Sample;
      if (r % 2 === 0) {
        a = runTs(backend, bdf, w);
        b = runC(baseline, backend, bdf, w);
      } else {
        b = runC(baseline, backend, bdf, w);
        a = runTs(backend, bdf, w);
      }
      ts.push(rate(a));
      cs.push(rate(b));
      ratios.push(rate(a) / rate(b));
    }
    const res: WorkloadResult = { name: w.name, unit: w.unit, ratio: median(ratios), ratios, ts: median(ts), c: median(cs), ops: w.ops, reps };
    note(`${backend} ${w.name}: TS ÷ C = ${res.ratio.toFixed(3)} [${ratios.map((x) => x.toFixed(3)).join(' ')}] (TS ${res.ts.toFixed(0)} ${w.unit}, C ${res.c.toFixed(0)} ${w.unit}) in ${((nowNs() - t) / 1e9).toFixed(1)} s`);
    out.push(res);
  }
  if (hasFlag(argv, '--json')) console.log(JSON.stringify({ backend, bdf, workloads: out }));
}

main();
