/**
 * Runs INSIDE a `dma-iommu vm` guest started with at least 5 edu devices (`bench/vm.ts --profile`
 * starts it): the 4 KiB map+unmap pair of `native-map-unmap-4k-vs-c` measured layer by layer, every
 * layer set up at once on its own edu device (its own IOMMU group and domain) and the layers'
 * slices interleaved (rotating order), so that all of them see the same host load:
 *
 *   c          the C baseline (bench/c/baseline.c --serve): the two ioctls, nothing else
 *   napi       the same two ioctls as two Node-API calls from JS: the addon's hot calls
 *              (lib/backend/native/hot.ts) on a raw set-up (container/group, or iommufd + IOAS +
 *              HWPT), no library code
 *   backend    the backend contract: IommuBackend.map(domain, iova, span) + unmap, the span being
 *              the allocation + offset the platform passes for DmaMemory's ranges
 *   backend-pa the same with the page's physical run (the PA → allocation index path, what a
 *              caller-built description takes)
 *   wdk        the public interface: MapLogicalRangeEx (ContiguousRange from DmaMemory) +
 *              UnmapLogicalRange: what native-map-unmap-4k-vs-c measures
 *   wdk-base   (with --base DIR) the same on another build of the library (e.g. main's
 *              dist/), loaded into the same process: a before/after A/B under the same load
 *
 *   node dist/bench/native-profile.js --backend iommufd|vfio-type1 --baseline PATH
 *        [--devices "bdf …"] [--base DIR] [--layers c,napi,…] [--reps N] [--json]
 *
 * --layers picks layers (c always runs). The layers share this build's code, so a layer that
 * calls the backend with both kinds of map source (backend, backend-pa) makes V8's view of the
 * shared functions polymorphic for the others: for a fair A/B of wdk against wdk-base (whose code
 * is its own), run `--layers c,wdk,wdk-base`.
 *
 * Each layer uses page i mod 256 of its own 1 MiB buffer at IOVA 4 GiB + 4 KiB·(i mod 256), as
 * the benchmark does. Prints µs/pair per layer (median of the slices) and what each layer adds.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { IommuBackend, MemorySpan, PhysicalRun } from '../lib/backend/contract.js';
import type { NativeAddon, NativeHandle, NativeMemory } from '../lib/backend/native/addon-types.js';
import { HotCalls } from '../lib/backend/native/hot.js';
import { loadNative } from '../lib/backend/native/loader.js';
import * as lib from '../lib/index.js';
import { type Sample, hasFlag, median, note, nowNs, option } from './common.js';
import { CBaseline } from './native-c.js';
import { IOVA, PAGES_4K, workloads } from './native-workloads.js';

type Backend = 'iommufd' | 'vfio-type1';

interface Layer {
  readonly name: string;
  run(n: number): Sample | Promise<Sample>;
  close(): void | Promise<void>;
}

const PAGE = 4096n;
const iovas = Array.from({ length: PAGES_4K }, (_, p) => IOVA + BigInt(p) * PAGE);
const offsets = Array.from({ length: PAGES_4K }, (_, p) => BigInt(p) * PAGE);

/** A loop over the 256 pages: `pair(p)` is one map+unmap of page p. */
function pairs(pair: (p: number) => void): (n: number) => Sample {
  let next = 0;
  return (n) => {
    let p = next;
    const t0 = nowNs();
    for (let i = 0; i < n; i++) {
      pair(p);
      if (++p === PAGES_4K) p = 0;
    }
    const ns = nowNs() - t0;
    next = p;
    return { ops: n, ns };
  };
}

function groupOf(bdf: string): number {
  return Number(readlinkSync(`/sys/bus/pci/devices/${bdf}/iommu_group`).split('/').pop());
}

/** The addon's hot calls on a raw kernel set-up of `bdf`: two Node-API calls per pair, no library. */
function napiLayer(backend: Backend, bdf: string): Layer {
  const a = (loadNative() as { addon: NativeAddon }).addon;
  const c = a.constants;
  const hot = new HotCalls(a);
  const m: NativeMemory = a.allocMemory(BigInt(PAGES_4K) * PAGE, c.MEM_POPULATE | c.MEM_LOCK, true);
  const close: Array<() => void> = [];
  let run: (n: number) => Sample;
  if (backend === 'vfio-type1') {
    const container = a.open('/dev/vfio/vfio', c.O_RDWR, 'container');
    const group = a.open(`/dev/vfio/${groupOf(bdf)}`, c.O_RDWR, 'group');
    a.groupSetContainer(group, container);
    a.setIommu(container, c.VFIO_TYPE1v2_IOMMU);
    const dev = a.groupGetDeviceFd(group, bdf);
    const flags = c.VFIO_DMA_MAP_FLAG_READ | c.VFIO_DMA_MAP_FLAG_WRITE;
    run = pairs((p) => {
      hot.dmaMap(container, iovas[p]!, m, offsets[p]!, PAGE, flags);
      hot.dmaUnmap(container, iovas[p]!, PAGE, 0);
    });
    close.push(() => dev.close(), () => a.groupUnsetContainer(group), () => group.close(), () => container.close());
  } else {
    const fd: NativeHandle = a.open('/dev/iommu', c.O_RDWR, 'iommufd');
    const ioas = a.ioasAlloc(fd);
    const vfioN = readdirSync(`/sys/bus/pci/devices/${bdf}/vfio-dev`)[0] as string;
    const dev = a.open(`/dev/vfio/devices/${vfioN}`, c.O_RDWR, 'device');
    const devId = a.deviceBindIommufd(dev, fd);
    const hwpt = a.hwptAlloc(fd, devId, ioas, 0);
    a.deviceAttachPt(dev, hwpt);
    const flags = c.IOMMU_IOAS_MAP_FIXED_IOVA | c.IOMMU_IOAS_MAP_READABLE | c.IOMMU_IOAS_MAP_WRITEABLE;
    run = pairs((p) => {
      hot.ioasMap(fd, ioas, iovas[p]!, m, offsets[p]!, PAGE, flags);
      hot.ioasUnmap(fd, ioas, iovas[p]!, PAGE);
    });
    close.push(() => a.deviceDetachPt(dev), () => a.destroy(fd, hwpt), () => a.destroy(fd, ioas), () => dev.close(), () => fd.close());
  }
  return {
    name: 'napi',
    run: (n) => run(n),
    close(): void {
      for (const f of close) f();
      m.free();
    },
  };
}

/** The backend contract's map/unmap on `bdf`: by span (identity) or by physical run. */
function backendLayer(backend: Backend, bdf: string, by: 'span' | 'pa'): Layer {
  const platform = lib.openPlatform({ backend });
  const b: IommuBackend = platform.backend;
  const dev = b.openDevice(bdf);
  const dom = b.allocDomain('translate');
  b.attach(dom, dev);
  b.geometry(dom);
  const mem = b.allocateMemory(BigInt(PAGES_4K) * PAGE);
  const spans: MemorySpan[] = offsets.map((offset) => ({ memory: mem, offset, length: PAGE }));
  const runs: PhysicalRun[][] = offsets.map((offset) => mem.runs(offset, PAGE));
  const run =
    by === 'span'
      ? pairs((p) => {
          b.map(dom, iovas[p]!, spans[p]!, 3);
          b.unmap(dom, iovas[p]!, PAGE);
        })
      : pairs((p) => {
          b.map(dom, iovas[p]!, runs[p]!, 3);
          b.unmap(dom, iovas[p]!, PAGE);
        });
  return {
    name: by === 'span' ? 'backend' : 'backend-pa',
    run,
    close(): void {
      b.detach(dev);
      b.freeDomain(dom);
      b.closeDevice(dev);
      mem.free();
      platform.close();
    },
  };
}

/** The public interface of a build of the library (this one, or --base's). */
function wdkLayer(name: string, l: typeof lib, backend: Backend, bdf: string): Layer {
  const platform = l.openPlatform({ backend });
  const iface = l.IoGetIommuInterfaceEx(l.DMA_IOMMU_INTERFACE_EX_VERSION_2, 0n, { platform });
  if (iface.Version !== 2) throw new Error('expected the V2 table');
  const V2 = iface.V2;
  const pdo = platform.findDevice(bdf);
  if (!pdo) throw new Error(`no device ${bdf}`);
  const dev = V2.CreateDevice(pdo);
  const dom = V2.CreateDomainEx(l.DomainTypeTranslate, 0n, null, null);
  V2.AttachDeviceEx(dom, dev);
  const mem = platform.allocateDmaMemory(BigInt(PAGES_4K) * PAGE);
  const descs = offsets.map((o) => mem.asContiguousRange(o, PAGE));
  return {
    name,
    run: pairs((p) => {
      V2.MapLogicalRangeEx(dom, 3, descs[p]!, iovas[p]!);
      V2.UnmapLogicalRange(dom, iovas[p]!, 1);
    }),
    close(): void {
      mem.free();
      V2.DetachDeviceEx(dev);
      V2.DeleteDomain(dom);
      V2.DeleteDevice(dev);
      platform.close();
    },
  };
}

function cLayer(baseline: string, backend: Backend, bdf: string): Layer & { ready(): Promise<unknown> } {
  const w = workloads(backend).find((x) => x.name === 'map-unmap-4k')!;
  const c = new CBaseline(baseline, backend, bdf, w);
  return { name: 'c', ready: () => c.ready(), run: (n) => c.run(n, w), close: () => c.close() };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const backend = option(argv, '--backend') as Backend;
  if (backend !== 'iommufd' && backend !== 'vfio-type1') throw new Error('--backend iommufd|vfio-type1');
  const baseline = option(argv, '--baseline');
  if (!baseline) throw new Error('--baseline PATH (the C baseline binary)');
  const devices = (option(argv, '--devices') ?? process.env.DMA_IOMMU_VM_EDU ?? '').split(/[ ,]/).filter(Boolean);
  const base = option(argv, '--base');
  const need = base ? 6 : 5; // device i serves one layer (fixed slots, whichever layers run)
  if (devices.length < need) throw new Error(`--profile needs ${need} edu devices (vm run --devices ${need}); have ${devices.length}: ${devices.join(' ')}`);
  const reps = Number(option(argv, '--reps') ?? 15);
  const ops = backend === 'iommufd' ? 2000 : 1000;
  const warmMs = Number(option(argv, '--warm-ms') ?? 3000);

  const want = new Set((option(argv, '--layers') ?? 'c,napi,backend,backend-pa,wdk,wdk-base').split(','));
  const c = cLayer(baseline, backend, devices[1]!);
  const layers: Layer[] = [c];
  if (want.has('napi')) layers.push(napiLayer(backend, devices[2]!));
  if (want.has('backend')) layers.push(backendLayer(backend, devices[3]!, 'span'));
  if (want.has('backend-pa')) layers.push(backendLayer(backend, devices[4]!, 'pa'));
  if (want.has('wdk')) layers.push(wdkLayer('wdk', lib, backend, devices[0]!));
  if (base && want.has('wdk-base')) {
    const baseLib = (await import(pathToFileURL(join(resolve(base), 'dist', 'lib', 'index.js')).href)) as typeof lib;
    layers.push(wdkLayer('wdk-base', baseLib, backend, devices[5]!));
  }
  const times = new Map<string, number[]>(layers.map((l) => [l.name, []]));
  try {
    await c.ready();
    await c.run(4000);
    for (const l of layers.slice(1)) {
      const t0 = nowNs();
      let done = 0;
      while (done < 4000 || nowNs() - t0 < warmMs * 1e6) {
        await l.run(250);
        done += 250;
      }
    }
    for (let r = 0; r < reps; r++) {
      // rotate the order so no layer always runs right after another
      for (let k = 0; k < layers.length; k++) {
        const l = layers[(k + r) % layers.length]!;
        const s = await l.run(ops);
        times.get(l.name)!.push(s.ns / s.ops / 1000);
      }
    }
  } finally {
    for (const l of layers.reverse()) await l.close();
  }
  const us = Object.fromEntries([...times].map(([k, v]) => [k, median(v)]));
  const order = ['c', 'napi', 'backend', 'backend-pa', 'wdk', 'wdk-base'].filter((k) => k in us);
  note(`${backend} 4 KiB map+unmap, µs/pair (median of ${reps} interleaved slices of ${ops} pairs):`);
  for (const k of order) {
    const v = us[k]!;
    const over = us.napi === undefined ? ['C', us.c!] : ['napi', us.napi];
    const adds = k === 'c' ? '' : k === 'napi' ? ` (+${(v - us.c!).toFixed(1)} over C)` : k === 'wdk-base' ? (us.wdk === undefined ? '' : ` (base ÷ this build's wdk, time: ${(v / us.wdk).toFixed(3)})`) : ` (+${(v - (over[1] as number)).toFixed(1)} over ${over[0] as string})`;
    note(`  ${k.padEnd(10)} ${v.toFixed(1).padStart(6)}  C ÷ layer ${(us.c! / v).toFixed(3)}${adds}`);
  }
  if (us.napi !== undefined && us.wdk !== undefined) {
    note(`  the library over two Node-API calls: wdk ÷ napi = ${(us.wdk / us.napi).toFixed(3)} (${(us.wdk - us.napi).toFixed(1)} µs); ceiling for any one-call-per-WDK-call design: C ÷ napi = ${(us.c! / us.napi).toFixed(3)}`);
  }
  if (hasFlag(argv, '--json')) console.log(JSON.stringify({ backend, reps, ops, usPerPair: us, slices: Object.fromEntries(times) }));
}

await main();
