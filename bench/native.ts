/**
 * Runs INSIDE a `dma-iommu vm` guest (root, real IOMMU): the public interface on the native
 * backend against the C baseline (bench/c/baseline.c) doing the same kernel operations, one
 * repetition of each at a time, interleaved (TS C, C TS, ...). Started by bench/vm.ts.
 *
 *   node dist/bench/native.js --backend iommufd|vfio-type1 --baseline PATH
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
 * TS sets up once per workload on the edu at --bdf (0000:00:03.0), warms up (≥ 3 s: V8 under
 * TCG needs thousands of calls to reach optimized code) and then times `ops` operations per
 * repetition; the C baseline runs as a fresh process per repetition on the twin edu at --c-bdf
 * (0000:00:04.0: the same device model in its own IOMMU group and domain), sets up, warms up and
 * times the same loop. Only the loops are timed.
 */
import { type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT, type IOMMU_MAP_PHYSICAL_ADDRESS, openPlatform } from '../lib/index.js';
import { openLab } from './lab.js';
import { CBaseline } from './native-c.js';
import { BYTES_RANGE, IOVA, PAGES_4K, type Workload, workloads } from './native-workloads.js';
import { type Sample, hasFlag, median, note, nowNs, option, rate } from './common.js';

/**
 * The TS side of one workload: set up once (platform, device, domain, memory, descriptors), then
 * `run(n)` times n operations. One set-up per workload keeps V8's optimized code and feedback
 * across repetitions (under TCG, reaching optimized code takes seconds).
 */
interface TsSide {
  run(n: number): Sample;
  close(): void;
}

function tsSide(backend: 'iommufd' | 'vfio-type1', bdf: string, w: Workload): TsSide {
  const { platform, V2, domain: dom, device: dev } = openLab(bdf, openPlatform({ backend }));
  const teardown = (): void => {
    V2.DetachDeviceEx(dev);
    V2.DeleteDomain(dom);
    V2.DeleteDevice(dev);
    platform.close();
  };
  if (w.name === 'map-256m') {
    const mem = platform.allocateDmaMemory(BYTES_RANGE);
    const desc = mem.asMdl();
    const pages = BYTES_RANGE / 4096;
    return {
      run(n: number): Sample {
        const t0 = nowNs();
        for (let i = 0; i < n; i++) {
          V2.MapLogicalRangeEx(dom, 3, desc, IOVA);
          V2.UnmapLogicalRange(dom, IOVA, pages);
        }
        return { ops: n * BYTES_RANGE, ns: nowNs() - t0 };
      },
      close(): void {
        mem.free();
        teardown();
      },
    };
  }
  const mem = platform.allocateDmaMemory(PAGES_4K * 4096);
  const descs: IOMMU_MAP_PHYSICAL_ADDRESS[] = [];
  const iovas: bigint[] = [];
  const offsets: bigint[] = [];
  for (let p = 0; p < PAGES_4K; p++) {
    descs.push(mem.asContiguousRange(BigInt(p * 4096), 4096n));
    iovas.push(IOVA + BigInt(p * 4096));
    offsets.push(BigInt(p * 4096));
  }
  let next = 0; // the next pair's page (continues across runs, as in the C baseline)
  if (w.name === 'map-unmap-4k') {
    return {
      run(n: number): Sample {
        let p = next;
        const t0 = nowNs();
        for (let i = 0; i < n; i++) {
          V2.MapLogicalRangeEx(dom, 3, descs[p], iovas[p]);
          V2.UnmapLogicalRange(dom, iovas[p], 1);
          if (++p === PAGES_4K) p = 0;
        }
        const ns = nowNs() - t0;
        next = p;
        return { ops: n, ns };
      },
      close(): void {
        mem.free();
        teardown();
      },
    };
  }
  const token = V2.ReserveLogicalAddressRange(dom, BigInt(PAGES_4K * 4096), IOVA);
  return {
    run(n: number): Sample {
      let p = next;
      const t0 = nowNs();
      for (let i = 0; i < n; i++) {
        const seg: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT = V2.MapReservedLogicalRange(token, offsets[p], 3, descs[p]);
        V2.UnmapReservedLogicalRange(seg);
        if (++p === PAGES_4K) p = 0;
      }
      const ns = nowNs() - t0;
      next = p;
      return { ops: n, ns };
    },
    close(): void {
      V2.FreeReservedLogicalAddressRange(token);
      mem.free();
      teardown();
    },
  };
}

/** Warm the TS side up: at least `minOps` operations and `minMs` of running (TCG tier-up). */
function warmUp(side: TsSide, w: Workload, minMs: number): void {
  const t0 = nowNs();
  let done = 0;
  while (done < w.warmup || nowNs() - t0 < minMs * 1e6) {
    side.run(w.name === 'map-256m' ? 1 : 250);
    done += w.name === 'map-256m' ? 1 : 250;
  }
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

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const backend = option(argv, '--backend') as 'iommufd' | 'vfio-type1';
  if (backend !== 'iommufd' && backend !== 'vfio-type1') throw new Error('--backend iommufd|vfio-type1');
  const baseline = option(argv, '--baseline');
  if (!baseline) throw new Error('--baseline PATH (the C baseline binary)');
  const bdf = option(argv, '--bdf') ?? '0000:00:03.0';
  // the C baseline runs on the twin edu (its own IOMMU group and domain) while TS holds --bdf
  const cBdf = option(argv, '--c-bdf') ?? '0000:00:04.0';
  const warmMs = Number(option(argv, '--warm-ms') ?? 3000);
  const reps = Number(option(argv, '--reps') ?? 15);
  const only = option(argv, '--only');
  const out: WorkloadResult[] = [];
  for (const w of workloads(backend)) {
    if (only && !only.split(',').includes(w.name)) continue;
    const t = nowNs();
    const side = tsSide(backend, bdf, w);
    const c = new CBaseline(baseline, backend, cBdf, w);
    const ts: number[] = [];
    const cs: number[] = [];
    const ratios: number[] = [];
    try {
      await c.ready();
      warmUp(side, w, warmMs);
      await c.run(w.ops, w); // untimed, like the TS warm-up
      for (let r = 0; r < reps; r++) {
        let a: Sample;
        let b: Sample;
        // No forced GC between slices here: under TCG a full (compacting) GC moves V8's code and
        // objects and the next slice pays for retranslating it (3-4x slower TS slices).
        if (r % 2 === 0) {
          a = side.run(w.ops);
          b = await c.run(w.ops, w);
        } else {
          b = await c.run(w.ops, w);
          a = side.run(w.ops);
        }
        ts.push(rate(a));
        cs.push(rate(b));
        ratios.push(rate(a) / rate(b));
      }
    } finally {
      side.close();
      await c.close();
    }
    const res: WorkloadResult = { name: w.name, unit: w.unit, ratio: median(ratios), ratios, ts: median(ts), c: median(cs), ops: w.ops, reps };
    note(`${backend} ${w.name}: TS ÷ C = ${res.ratio.toFixed(3)} [${ratios.map((x) => x.toFixed(3)).join(' ')}] (TS ${res.ts.toFixed(0)} ${w.unit}, C ${res.c.toFixed(0)} ${w.unit}) in ${((nowNs() - t) / 1e9).toFixed(1)} s`);
    out.push(res);
  }
  if (hasFlag(argv, '--json')) console.log(JSON.stringify({ backend, bdf, workloads: out }));
}

await main();
