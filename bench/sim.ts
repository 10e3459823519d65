/**
 * `npm run bench`: the simulator through the public interface, on the host (no root needed).
 *
 *   sim-map-unmap-4k-vs-map  4 KiB MapLogicalRangeEx + UnmapLogicalRange pairs per second ÷ a
 *                            bare JS Map set + delete loop over the same keys (the IOVAs) and
 *                            values (the descriptors).
 *   sim-scaling-1m-vs-1k     the same pairs, at random free pages of a domain holding 1,000,000
 *                            live 4 KiB mappings ÷ one holding 1,000.
 *   sim-buddy-map-20k-vs-explicit
 *                            20,000 4 KiB MapLogicalRangeEx into an empty Buddy-allocator domain
 *                            (the OS picks each address) per second ÷ 20,000 explicit-address
 *                            ones into an empty plain domain: the allocator's cost as its domain fills.
 *   sim-bytes-per-mapping    heap (V8 heap + external) growth per live 4 KiB mapping, 1,000,000
 *                            mappings (a fresh child process).
 *   sim-rss-1tib-2m          VmRSS of a process holding 1 TiB of IOVA mapped as 524,288 2 MiB
 *                            mappings of lazily allocated simulated RAM (a fresh child process).
 *
 * Options: --json (last line is the machine-readable result), --reps N (default 11),
 * --quick (smaller sizes, for a smoke run; the figures are then not the named ones' sizes),
 * --only a,b (run the figures whose names contain a or b, e.g. --only buddy),
 * --profile (only the layer-by-layer cost of the 4 KiB pair, ns/pair: bench/sim-profile.ts).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  DMA_IOMMU_INTERFACE_EX_VERSION_2,
  DomainTypeTranslate,
  type IOMMU_MAP_PHYSICAL_ADDRESS,
  IoGetIommuInterfaceEx,
  type IommuPlatform,
  IommuDmaLogicalAllocatorBuddy,
  openPlatform,
} from '../lib/index.js';
import { type Row, type Sample, compare, fmtRate, fullGc, hasFlag, note, nowNs, option, printJson, printTable, ratioRow } from './common.js';
import { type Lab, openLab } from './lab.js';
import { profileLayers } from './sim-profile.js';

const PAGE = 4096;

/** Run `fn(loops)` with loops doubled until one run takes ≥ `ms`; returns the loop count. */
function calibrate(fn: (loops: number) => Sample, ms: number): number {
  let loops = 1;
  for (;;) {
    const s = fn(loops);
    if (s.ns >= ms * 1e6 || loops >= 1 << 24) return loops;
    loops *= s.ns < (ms * 1e6) / 8 ? 4 : 2;
  }
}

/** The measured loop of the map/unmap figures: descs[i] mapped at iovas[i] and unmapped again, for each i, `loops` times. */
function mapUnmapPairs({ V2, domain }: Pick<Lab, 'V2' | 'domain'>, descs: IOMMU_MAP_PHYSICAL_ADDRESS[], iovas: bigint[]): (loops: number) => Sample {
  const n = descs.length;
  return (loops) => {
    const t0 = nowNs();
    for (let l = 0; l < loops; l++) {
      for (let i = 0; i < n; i++) {
        V2.MapLogicalRangeEx(domain, 3, descs[i], iovas[i]);
        V2.UnmapLogicalRange(domain, iovas[i], 1);
      }
    }
    return { ops: loops * n, ns: nowNs() - t0 };
  };
}

// ---- sim-map-unmap-4k-vs-map ---------------------------------------------------------------

function mapUnmapVsMap(reps: number): Row[] {
  const K = 1024;
  const lab = openLab('0000:00:03.0');
  const { V2, domain } = lab;
  const mem = lab.platform.allocateDmaMemory(K * PAGE);
  const descs: IOMMU_MAP_PHYSICAL_ADDRESS[] = [];
  const iovas: bigint[] = [];
  for (let i = 0; i < K; i++) {
    descs.push(mem.asContiguousRange(BigInt(i * PAGE), BigInt(PAGE)));
    iovas.push(0x40000000n + BigInt(i * PAGE));
  }
  const sim = mapUnmapPairs(lab, descs, iovas);
  const bare = (loops: number): Sample => {
    const m = new Map<bigint, IOMMU_MAP_PHYSICAL_ADDRESS>();
    const t0 = nowNs();
    for (let l = 0; l < loops; l++) {
      for (let i = 0; i < K; i++) {
        m.set(iovas[i], descs[i]);
        m.delete(iovas[i]);
      }
    }
    return { ops: loops * K, ns: nowNs() - t0 };
  };
  // warm both (JIT), then size the runs
  sim(20);
  bare(200);
  const loops = calibrate(sim, 80);
  const c = compare(reps, () => sim(loops), () => bare(loops), fullGc);
  lab.platform.close();
  return [
    ratioRow('sim-map-unmap-4k-vs-map', c.ratio, 0.33, `sim ${fmtRate(c.a, 'pairs/s')} (${(1e9 / c.a).toFixed(0)} ns/pair) vs Map ${fmtRate(c.b, 'pairs/s')} (${(1e9 / c.b).toFixed(0)} ns/pair); ${reps} reps × ${loops * K} pairs`),
    { name: 'sim-map-unmap-4k-pairs-per-s', value: Math.round(c.a), unit: 'pairs/s' },
    { name: 'sim-map-unmap-4k-baseline-map-pairs-per-s', value: Math.round(c.b), unit: 'pairs/s' },
  ];
}

// ---- sim-scaling-1m-vs-1k -------------------------------------------------------------------

/** xorshift32: a fixed, seedable sequence (the same slots every run). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

interface ScalingDomain {
  run(loops: number): Sample;
}

/**
 * A domain with `live` 4 KiB mappings at the even pages of [base, base + 2·live) pages, each
 * of its own page of lazily allocated RAM; the measured pairs map and unmap `M` odd (free)
 * pages chosen at random across that region, in a random order.
 */
function scalingDomain(platform: IommuPlatform, bdf: string, live: number, M: number, seed: number): ScalingDomain {
  const { V2, domain } = openLab(bdf, platform);
  const basePage = 0x100000; // IOVA 4 GiB
  const bg = platform.allocateDmaMemory(BigInt(live) * BigInt(PAGE), { lazy: true });
  const bgBase = bg.physicalAddress;
  for (let j = 0; j < live; j++) {
    const desc: IOMMU_MAP_PHYSICAL_ADDRESS = { MapType: 1, ContiguousRange: { Base: bgBase + BigInt(j * PAGE), Size: 4096n } };
    V2.MapLogicalRangeEx(domain, 3, desc, BigInt((basePage + 2 * j) * PAGE));
  }
  const fg = platform.allocateDmaMemory(BigInt(M * PAGE));
  const random = rng(seed);
  const chosen = new Set<number>();
  while (chosen.size < Math.min(M, live)) chosen.add(Math.floor(random() * live));
  const slots = [...chosen];
  for (let i = slots.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [slots[i], slots[j]] = [slots[j], slots[i]];
  }
  const descs = slots.map((_, i) => fg.asContiguousRange(BigInt(i * PAGE), BigInt(PAGE)));
  const iovas = slots.map((s) => BigInt((basePage + 2 * s + 1) * PAGE));
  return { run: mapUnmapPairs({ V2, domain }, descs, iovas) };
}

function scaling(reps: number, big: number): Row[] {
  const M = 1000;
  const platform = openPlatform({ backend: 'simulated' });
  const t0 = nowNs();
  const large = scalingDomain(platform, '0000:00:03.0', big, M, 0x9e3779b9);
  note(`scaling: ${big} live mappings set up in ${((nowNs() - t0) / 1e9).toFixed(1)} s`);
  const small = scalingDomain(platform, '0000:00:04.0', 1000, M, 0x85ebca6b);
  large.run(20);
  small.run(20);
  const loops = calibrate((l) => large.run(l), 80);
  const c = compare(reps, () => large.run(loops), () => small.run(loops), fullGc);
  platform.close();
  const name = big === 1_000_000 ? 'sim-scaling-1m-vs-1k' : `sim-scaling-${big}-vs-1k`;
  return [
    ratioRow(name, c.ratio, 0.5, `${big} live: ${fmtRate(c.a, 'pairs/s')} vs 1000 live: ${fmtRate(c.b, 'pairs/s')}; ${reps} reps × ${loops * M} pairs at random free pages`),
  ];
}

// ---- sim-buddy-map-20k-vs-explicit ----------------------------------------------------------

/**
 * One timed run fills an empty domain with N 4 KiB maps (one page of the buffer each) and the
 * untimed rest of the run unmaps them again, so every repetition starts from an empty domain.
 */
function buddyVsExplicit(reps: number, N: number): Row[] {
  const platform = openPlatform({ backend: 'simulated' });
  const iface = IoGetIommuInterfaceEx(DMA_IOMMU_INTERFACE_EX_VERSION_2, 0n, { platform });
  if (iface.Version !== 2) throw new Error('expected the V2 table');
  const V2 = iface.V2;
  const open = (bdf: string, buddy: boolean) => {
    const pdo = platform.findDevice(bdf);
    if (!pdo) throw new Error(`no device ${bdf}`);
    const dev = V2.CreateDevice(pdo);
    const config = buddy ? { LogicalAllocatorType: IommuDmaLogicalAllocatorBuddy, BuddyAllocatorConfig: { AddressWidth: 39 } } : null;
    const domain = V2.CreateDomainEx(DomainTypeTranslate, 0n, config, null);
    V2.AttachDeviceEx(domain, dev);
    return domain;
  };
  const buddyDomain = open('0000:00:03.0', true);
  const plainDomain = open('0000:00:04.0', false);
  const mem = platform.allocateDmaMemory(N * PAGE);
  const descs: IOMMU_MAP_PHYSICAL_ADDRESS[] = [];
  const explicit: bigint[] = [];
  for (let i = 0; i < N; i++) {
    descs.push(mem.asContiguousRange(BigInt(i * PAGE), BigInt(PAGE)));
    explicit.push(0x40000000n + BigInt(i * PAGE));
  }
  const placed: bigint[] = new Array<bigint>(N);
  const buddy = (): Sample => {
    const t0 = nowNs();
    for (let i = 0; i < N; i++) placed[i] = V2.MapLogicalRangeEx(buddyDomain, 3, descs[i], null, null, null);
    const s = { ops: N, ns: nowNs() - t0 };
    for (let i = 0; i < N; i++) V2.UnmapLogicalRange(buddyDomain, placed[i], 1n);
    return s;
  };
  const plain = (): Sample => {
    const t0 = nowNs();
    for (let i = 0; i < N; i++) V2.MapLogicalRangeEx(plainDomain, 3, descs[i], explicit[i], null, null);
    const s = { ops: N, ns: nowNs() - t0 };
    for (let i = 0; i < N; i++) V2.UnmapLogicalRange(plainDomain, explicit[i], 1n);
    return s;
  };
  buddy();
  plain();
  const c = compare(reps, buddy, plain, fullGc);
  platform.close();
  const name = N === 20_000 ? 'sim-buddy-map-20k-vs-explicit' : `sim-buddy-map-${N}-vs-explicit`;
  return [
    ratioRow(name, c.ratio, 0.5, `Buddy ${fmtRate(c.a, 'maps/s')} (${(N / c.a).toFixed(3)} s per ${N}) vs explicit ${fmtRate(c.b, 'maps/s')} (${(N / c.b).toFixed(3)} s); ${reps} reps into an empty domain`),
  ];
}

// ---- memory (child processes) -------------------------------------------------------------

interface ChildResult {
  readonly mode: string;
  readonly mappings: number;
  readonly heapBefore: number;
  readonly heapAfter: number;
  readonly rssBefore: number;
  readonly rssAfter: number;
  readonly seconds: number;
}

function child(mode: string, count: number): ChildResult {
  const script = fileURLToPath(new URL('./sim-memory.js', import.meta.url));
  const r = spawnSync(process.execPath, ['--expose-gc', script, mode, String(count)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`${mode} child failed (${r.status ?? r.signal}): ${r.stderr}`);
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(last) as ChildResult;
}

function memory(big: number): Row[] {
  const rows: Row[] = [];
  const m = child('mappings', big);
  const perMapping = (m.heapAfter - m.heapBefore) / m.mappings;
  rows.push({
    name: big === 1_000_000 ? 'sim-bytes-per-mapping' : `sim-bytes-per-mapping-${big}`,
    value: Math.round(perMapping * 10) / 10,
    unit: 'bytes',
    target: '≤ 256',
    met: perMapping <= 256,
    detail: `heap+external ${(m.heapBefore / 2 ** 20).toFixed(1)} → ${(m.heapAfter / 2 ** 20).toFixed(1)} MiB for ${m.mappings} 4 KiB mappings; RSS ${(m.rssBefore / 2 ** 20).toFixed(0)} → ${(m.rssAfter / 2 ** 20).toFixed(0)} MiB; mapped in ${m.seconds.toFixed(1)} s`,
  });
  const t = child('tib', 0);
  const rssMiB = t.rssAfter / 2 ** 20;
  rows.push({
    name: 'sim-rss-1tib-2m',
    value: Math.round(rssMiB * 10) / 10,
    unit: 'MiB',
    target: '≤ 200',
    met: rssMiB <= 200,
    detail: `${t.mappings} × 2 MiB MapLogicalRangeEx of 1 TiB lazy sim RAM; RSS ${(t.rssBefore / 2 ** 20).toFixed(0)} MiB before mapping; heap+external ${((t.heapAfter - t.heapBefore) / t.mappings).toFixed(0)} B/mapping; mapped in ${t.seconds.toFixed(1)} s`,
  });
  return rows;
}

// ---- main ---------------------------------------------------------------------------------

function main(): void {
  const argv = process.argv.slice(2);
  const json = hasFlag(argv, '--json');
  const quick = hasFlag(argv, '--quick');
  const reps = Number(option(argv, '--reps') ?? (quick ? 5 : 11));
  const big = quick ? 100_000 : 1_000_000;
  const started = nowNs();
  if (!(globalThis as { gc?: unknown }).gc) note('run with --expose-gc for a full GC before each timed run (npm run bench does)');
  const only = option(argv, '--only');
  const want = (name: string): boolean => only === undefined || only.split(',').some((o) => name.includes(o));
  const rows: Row[] = [];
  if (hasFlag(argv, '--profile')) {
    note('layer-by-layer profile of the 4 KiB pair (a child process per layer) ...');
    rows.push(...profileLayers(reps));
    printTable(`dma-iommu simulator: one 4 KiB map+unmap pair, layer by layer (node ${process.version}, ${reps} interleaved reps vs Map, medians)`, rows);
    if (json) printJson(rows);
    return;
  }
  if (want('sim-map-unmap-4k-vs-map')) {
    note('sim-map-unmap-4k-vs-map ...');
    rows.push(...mapUnmapVsMap(reps));
  }
  if (want('sim-scaling')) {
    note('sim-scaling ...');
    rows.push(...scaling(reps, big));
  }
  if (want('sim-buddy-map')) {
    note('sim-buddy-map-20k-vs-explicit ...');
    rows.push(...buddyVsExplicit(reps, quick ? 5_000 : 20_000));
  }
  if (want('sim-bytes-per-mapping') || want('sim-rss')) {
    note('memory (child processes) ...');
    rows.push(...memory(big));
  }
  const secs = (nowNs() - started) / 1e9;
  printTable(`dma-iommu simulator benchmarks (node ${process.version}, ${reps} interleaved reps, medians; ${secs.toFixed(0)} s)`, rows);
  if (json) printJson(rows);
}

main();
