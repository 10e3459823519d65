/**
 * `npm run bench -- --profile`: where the time of one 4 KiB map+unmap pair through the simulator
 * goes, layer by layer (the pair of `sim-map-unmap-4k-vs-map`, same pages and IOVAs).
 *
 * Each layer runs in a fresh child process of its own (`node sim-profile.js <layer> <reps>`), so
 * that no call site sees another layer's classes or functions (V8 inlines differently when it
 * does), interleaved there with the bare `Map` set + delete loop of the headline figure. A layer's
 * cost is the median of its per-repetition ns/pair, scaled by how fast that process ran the Map
 * loop against the others (see profileLayers).
 *
 *   page-table  PageTable.tryInsert4K + removeAreaAt: the simulated hardware table (page numbers)
 *   domain      SimDomain.mapPages + unmapPages: + geometry checks, RAM ownership, mapped-page counts
 *   lane        SimulatedBackend.mapPageRun + unmapPageRange: the contract's page-number lane,
 *               which the platform's fast paths call (counters, injection check, domain lookup)
 *   backend     SimulatedBackend.map + unmap with bigints and a runs array (the contract's general
 *               members, what a caller without page numbers pays; not on the platform's path)
 *   core        IommuPlatform over a simulator whose map/unmap do nothing: WDK validation, claims
 *   platform    IommuPlatform.MapLogicalRangeEx + UnmapLogicalRange over the simulator
 *   wdk         the V2 table's bound members (the headline figure's loop)
 *
 * "adds" compares a layer with the one it calls: domain − page-table, lane − domain, backend −
 * domain, platform − lane (the core in place), wdk − platform; core is the core alone. Each layer
 * is compiled by V8 in its own process, with its own inlining decisions (a layer's loop may
 * inline what another's calls), so differences of ~10 ns between neighbouring layers, or a
 * layer measuring below the one it calls, are within that.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DomainTypeTranslate, IoGetIommuInterfaceEx, type IOMMU_MAP_PHYSICAL_ADDRESS, IommuPlatform, SimulatedBackend } from '../lib/index.js';
import { PageTable } from '../lib/backend/simulated/page-table.js';
import { SimDomain } from '../lib/backend/simulated/domain.js';
import { PhysicalMemory } from '../lib/backend/simulated/physical-memory.js';
import { median, note, type Row } from './common.js';

export const LAYERS = ['page-table', 'domain', 'lane', 'backend', 'core', 'platform', 'wdk'] as const;
type Layer = (typeof LAYERS)[number];
/** The layer each one calls (its "adds" is the difference), or null. */
const BELOW: Record<Layer, Layer | null> = { 'page-table': null, domain: 'page-table', lane: 'domain', backend: 'domain', core: null, platform: 'lane', wdk: 'platform' };

const PAGE = 4096;
const K = 1024;
const IOVA_PAGE = 0x40000; // IOVA 1 GiB, as the headline figure

interface LayerResult {
  readonly layer: Layer;
  readonly ns: number;
  readonly mapNs: number;
}

/** A simulator whose map and unmap (and their page-number lane) do nothing: the core's own cost. */
class NoopMapBackend extends SimulatedBackend {
  override map(): void {}
  override unmap(_domain: number, _iova: bigint, length: bigint): bigint {
    return length;
  }
  override mapPageRun(): void {}
  override unmapPageRange(): void {}
}

/** The loop of one layer: `loops` × K pairs; returns ns/pair. */
function layerLoop(layer: Layer): (loops: number) => number {
  const timed = (body: () => void, loops: number): number => {
    const t0 = process.hrtime.bigint();
    for (let l = 0; l < loops; l++) body();
    return Number(process.hrtime.bigint() - t0) / (loops * K);
  };
  if (layer === 'page-table') {
    const t = new PageTable(4, true, true);
    const body = (): void => {
      for (let i = 0; i < K; i++) {
        t.tryInsert4K(IOVA_PAGE + i, 0x100000 + i * PAGE + 3);
        t.removeAreaAt(IOVA_PAGE + i, 1, null);
      }
    };
    return (loops) => timed(body, loops);
  }
  if (layer === 'domain') {
    const phys = new PhysicalMemory([{ start: 0, end: 1 << 30 }]);
    const mem = phys.allocate(BigInt(K * PAGE), {});
    const d = new SimDomain(1, 'translate', { addressWidth: 48, levels: 4, pageSizes: (1n << 12n) | (1n << 21n) | (1n << 30n), allow2M: true, allow1G: true, phys });
    d.addAttachment('1', { reservedRegions: [{ start: 0xfee00000n, last: 0xfeefffffn }] });
    const pfn0 = (mem.pa / PAGE) | 0; // an int32, as alignedPage gives the platform
    const body = (): void => {
      for (let i = 0; i < K; i++) {
        d.mapPages(IOVA_PAGE + i, 1, pfn0 + i, 3);
        d.unmapPages(IOVA_PAGE + i, 1);
      }
    };
    return (loops) => timed(body, loops);
  }
  const platform = new IommuPlatform(layer === 'core' ? new NoopMapBackend() : new SimulatedBackend());
  const iface = IoGetIommuInterfaceEx(2, 0n, { platform });
  if (iface.Version !== 2) throw new Error('expected the V2 table');
  const V2 = iface.V2;
  const pdo = platform.findDevice('0000:00:03.0');
  if (!pdo) throw new Error('no device 0000:00:03.0');
  const domain = V2.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
  V2.AttachDeviceEx(domain, V2.CreateDevice(pdo));
  const mem = platform.allocateDmaMemory(K * PAGE);
  const descs: IOMMU_MAP_PHYSICAL_ADDRESS[] = [];
  const iovas: bigint[] = [];
  for (let i = 0; i < K; i++) {
    descs.push(mem.asContiguousRange(BigInt(i * PAGE), BigInt(PAGE)));
    iovas.push(BigInt((IOVA_PAGE + i) * PAGE));
  }
  if (layer === 'backend' || layer === 'lane') {
    // the backend's own domain and device (the platform's stay idle)
    const b = platform.backend as SimulatedBackend;
    const dev = b.openDevice('0000:00:04.0');
    const dom = b.allocDomain('translate');
    b.attach(dom, dev);
    if (layer === 'lane') {
      const pfn0 = Number(mem.physicalAddress >> 12n) | 0;
      const body = (): void => {
        for (let i = 0; i < K; i++) {
          b.mapPageRun(dom, IOVA_PAGE + i, 1, pfn0 + i, 3);
          b.unmapPageRange(dom, IOVA_PAGE + i, 1);
        }
      };
      return (loops) => timed(body, loops);
    }
    const pas: bigint[] = [];
    for (let i = 0; i < K; i++) pas.push(mem.physicalAddress + BigInt(i * PAGE));
    const body = (): void => {
      for (let i = 0; i < K; i++) {
        b.map(dom, iovas[i], [{ pa: pas[i], length: 4096n }], 3);
        b.unmap(dom, iovas[i], 4096n);
      }
    };
    return (loops) => timed(body, loops);
  }
  if (layer === 'platform') {
    const body = (): void => {
      for (let i = 0; i < K; i++) {
        platform.MapLogicalRangeEx(domain, 3, descs[i], iovas[i]);
        platform.UnmapLogicalRange(domain, iovas[i], 1);
      }
    };
    return (loops) => timed(body, loops);
  }
  // core and wdk: the headline figure's loop
  const body = (): void => {
    for (let i = 0; i < K; i++) {
      V2.MapLogicalRangeEx(domain, 3, descs[i], iovas[i]);
      V2.UnmapLogicalRange(domain, iovas[i], 1);
    }
  };
  return (loops) => timed(body, loops);
}

/** The child: one layer interleaved with the Map loop; prints one JSON line. */
function runChild(layer: Layer, reps: number): void {
  const run = layerLoop(layer);
  const iovas: bigint[] = [];
  const values: object[] = [];
  for (let i = 0; i < K; i++) {
    iovas.push(BigInt((IOVA_PAGE + i) * PAGE));
    values.push({});
  }
  const bare = (loops: number): number => {
    const m = new Map<bigint, object>();
    const t0 = process.hrtime.bigint();
    for (let l = 0; l < loops; l++) {
      for (let i = 0; i < K; i++) {
        m.set(iovas[i], values[i]);
        m.delete(iovas[i]);
      }
    }
    return Number(process.hrtime.bigint() - t0) / (loops * K);
  };
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
  run(100);
  bare(200);
  // ~80 ms per timed run at the layer's warm speed
  const loops = Math.max(20, Math.round(80e6 / (run(20) * K)));
  const ns: number[] = [];
  const mapNs: number[] = [];
  for (let r = 0; r < reps; r++) {
    gc();
    if (r % 2 === 0) {
      ns.push(run(loops));
      gc();
      mapNs.push(bare(loops));
    } else {
      mapNs.push(bare(loops));
      gc();
      ns.push(run(loops));
    }
  }
  const result: LayerResult = { layer, ns: median(ns), mapNs: median(mapNs) };
  console.log(JSON.stringify(result));
}

/**
 * The parent: each layer in its own child process; rows for the table (ns/pair, informational).
 * Processes run at different speeds on a loaded host, so each layer's cost is reported in the
 * units of the Map loop timed beside it: ns/pair × (median Map ns/pair over all layers ÷ its own
 * process's Map ns/pair). The raw figures are in the row's detail.
 */
export function profileLayers(reps: number): Row[] {
  const script = fileURLToPath(import.meta.url);
  const results: LayerResult[] = [];
  for (const layer of LAYERS) {
    note(`profile: ${layer} ...`);
    const r = spawnSync(process.execPath, ['--expose-gc', script, layer, String(reps)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`profile child ${layer} failed (${r.status ?? r.signal}): ${r.stderr}`);
    results.push(JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '') as LayerResult);
  }
  const mapRef = median(results.map((r) => r.mapNs));
  const norm = new Map<Layer, number>(results.map((r) => [r.layer, (r.ns * mapRef) / r.mapNs]));
  return results.map((r) => {
    const b = BELOW[r.layer];
    const v = norm.get(r.layer)!;
    const adds = b === null ? (r.layer === 'core' ? 'the core alone; ' : '') : `adds ${(v - norm.get(b)!).toFixed(1)} ns over ${b}; `;
    return {
      name: `sim-profile-${r.layer}`,
      value: Math.round(v * 10) / 10,
      unit: 'ns/pair',
      detail: `${adds}${(r.mapNs / r.ns).toFixed(3)} × Map; raw ${r.ns.toFixed(1)} ns vs Map ${r.mapNs.toFixed(1)} ns in its process (Map reference ${mapRef.toFixed(1)} ns)`,
    };
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.length >= 3) {
  const layer = process.argv[2] as Layer;
  if (!LAYERS.includes(layer)) throw new Error(`unknown layer '${layer}' (one of ${LAYERS.join(', ')})`);
  runChild(layer, Number(process.argv[3] ?? 11));
}
