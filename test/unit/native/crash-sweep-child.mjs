// One child process of the addon crash sweep (crash-sweep.ts runs it; see there). Loads the raw
// addon from argv[2], builds a pool of hostile values (wrong types, NaN, fractions, negatives,
// 2^32+4096, 2^53, 2^64-1, 2^64, closed handles, freed memory, the other wrap, plain objects) and
// real objects (on a VM guest: real iommufd / container / group / device handles, some with kernel
// mappings), then runs one group of cases (argv[3]): every export with every hostile value in every
// argument position, every getter and method of both wraps on every receiver, the hot calls with
// hostile slots and a detached/transferred slot buffer. Before each case its name goes to stderr
// (so a crash names the case that killed the process); each outcome goes to stdout as a JSON line:
// { name, outcome } with outcome 'ok' or the thrown value's class ('TypeError', 'RangeError',
// 'KernelError' = an error carrying errno + syscall, anything else by its constructor name).
// Plain JS on purpose: it runs with bare `node`, on the host and inside the guest.
import { writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { MessageChannel } from 'node:worker_threads';

const [addonPath, group, mode = 'host', ...bdfs] = process.argv.slice(2);
const a = createRequire(import.meta.url)(addonPath);
const c = a.constants;

/** What the loader hands the addon (lib/errors.ts BackendError's constructor shape). */
class KernelError extends Error {
  constructor(errno, syscall, detail) {
    super(detail ? `${syscall}: ${errno}: ${detail}` : `${syscall}: ${errno}`);
    this.errno = errno;
    this.syscall = syscall;
  }
}
if (group !== 'raw-errors') a.setErrorClass(KernelError);

function classify(e) {
  if (e instanceof TypeError) return 'TypeError';
  if (e instanceof RangeError) return 'RangeError';
  if (e && typeof e === 'object' && typeof e.errno === 'number' && e.errno < 0 && typeof e.syscall === 'string' && e instanceof Error) return 'KernelError';
  return `other:${e?.constructor?.name ?? typeof e}:${String(e?.message ?? e)}`;
}

function run(name, fn) {
  writeSync(2, `${name}\n`);
  let outcome = 'ok';
  try {
    fn();
  } catch (e) {
    outcome = classify(e);
  }
  writeSync(1, `${JSON.stringify({ name, outcome })}\n`);
}

function label(v) {
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'symbol') return 'Symbol()';
  if (typeof v === 'function') return 'function';
  if (v && typeof v === 'object') return labels.get(v) ?? (Array.isArray(v) ? 'array' : 'object');
  return String(v);
}
const labels = new WeakMap();
function tag(o, l) {
  labels.set(o, l);
  return o;
}

// ---- real objects --------------------------------------------------------------------------------
const tryOpen = (path, kind) => {
  try {
    return tag(a.open(path, c.O_RDWR, kind), `${kind}:${path}`);
  } catch {
    return null;
  }
};
const handles = [];
for (const kind of ['iommufd', 'device', 'container', 'group', 'file']) handles.push(tag(a.open('/dev/null', c.O_RDWR, kind), `${kind}:/dev/null`));
const closed = tag(a.open('/dev/null', c.O_RDONLY, 'file'), 'closed handle');
closed.close();
const mem = tag(a.allocMemory(0x4000n, c.MEM_POPULATE, true), 'memory');
const lazy = tag(a.allocMemory(1n << 40n, 0, false), 'lazy 1 TiB memory');
const freed = tag(a.allocMemory(0x1000n, 0, true), 'freed memory');
freed.free();

if (mode === 'guest') {
  // Real kernel objects: whichever of the two interfaces this kernel offers.
  const iommufd = tryOpen('/dev/iommu', 'iommufd');
  if (iommufd) {
    handles.push(iommufd);
    const ioas = a.ioasAlloc(iommufd);
    const { readdirSync } = await import('node:fs');
    const vfioN = readdirSync(`/sys/bus/pci/devices/${bdfs[0]}/vfio-dev`)[0];
    const dev = tryOpen(`/dev/vfio/devices/${vfioN}`, 'device');
    if (dev) {
      handles.push(dev);
      a.deviceBindIommufd(dev, iommufd);
      a.deviceAttachPt(dev, ioas);
      // a live kernel mapping of `mem` (pinned: free() must refuse)
      const u64 = new BigUint64Array(a.hotSlots, 0, 3);
      const u32 = new Uint32Array(a.hotSlots, 0, 12);
      u64.set([0x100000n, 0n, 0x2000n]);
      u32.set([iommufd.hotId, mem.hotId, c.IOMMU_IOAS_MAP_FIXED_IOVA | c.IOMMU_IOAS_MAP_READABLE | c.IOMMU_IOAS_MAP_WRITEABLE, ioas], 8);
      a.ioasMapHot();
    }
  }
  const container = tryOpen('/dev/vfio/vfio', 'container');
  if (container) {
    handles.push(container);
    const { readlinkSync } = await import('node:fs');
    const n = readlinkSync(`/sys/bus/pci/devices/${bdfs[1] ?? bdfs[0]}/iommu_group`).split('/').pop();
    const g = tryOpen(`/dev/vfio/${n}`, 'group');
    if (g) {
      handles.push(g);
      try {
        a.groupSetContainer(g, container);
        a.setIommu(container, c.VFIO_TYPE1v2_IOMMU);
        const dev = a.groupGetDeviceFd(g, bdfs[1] ?? bdfs[0]);
        handles.push(tag(dev, 'type1 device'));
        const u64 = new BigUint64Array(a.hotSlots, 0, 3);
        const u32 = new Uint32Array(a.hotSlots, 0, 12);
        u64.set([0x100000n, 0x2000n, 0x2000n]);
        u32.set([container.hotId, mem.hotId, 3], 8);
        a.dmaMapHot();
      } catch {
        /* the iommufd kernel may refuse the legacy path: the handles still go into the pool */
      }
    }
  }
}

const hostile = [
  undefined, null, true, 0, 1, -1, 1.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 32 + 4096, 2 ** 53, -(2 ** 53),
  0n, 1n, -1n, 4096n, 2n ** 32n + 4096n, 2n ** 53n, 2n ** 64n - 1n, 2n ** 64n, -(2n ** 63n),
  '', 'x', 'a\0b', 'iommufd', Symbol('s'), {}, [], [1, 2], () => 0, tag({ hotId: 1, fd: 0 }, 'fake handle'),
  new Uint8Array(8), new ArrayBuffer(8), tag(new Proxy({}, { get() { throw new Error('trap'); } }), 'throwing proxy'),
  ...handles, closed, mem, lazy, freed, tag(Object.create(Object.getPrototypeOf(mem)), 'Object.create(Memory.prototype)'),
  tag(Object.create(Object.getPrototypeOf(closed)), 'Object.create(Handle.prototype)'),
];

// A working argument list per export (what `hostile` is substituted into, one position at a time).
// Side effects stay inside this throwaway process; paths are relative to its temporary cwd.
const H = handles[0];
const baseline = {
  open: ['x', 0, 'file'],
  allocMemory: [4096n, 0, true],
  kmsgOpen: [],
  kmsgRead: [H, 1],
  stats: [],
  setErrorClass: [KernelError],
  ioasAlloc: [H],
  destroy: [H, 1],
  ioasIovaRanges: [H, 1],
  hwptAlloc: [H, 1, 1, 0],
  getHwInfo: [H, 1],
  deviceBindIommufd: [H, H],
  deviceAttachPt: [H, 1],
  deviceDetachPt: [H],
  deviceGetInfo: [H],
  deviceGetRegionInfo: [H, 0],
  regionRead: [H, 0n, 4],
  regionWrite: [H, 0n, 4, 0],
  getApiVersion: [H],
  checkExtension: [H, 3],
  setIommu: [H, 3],
  groupGetStatus: [H],
  groupSetContainer: [H, H],
  groupUnsetContainer: [H],
  groupGetDeviceFd: [H, 'x'],
  iommuGetInfo: [H],
  dmaMapHot: [],
  dmaUnmapHot: [],
  ioasMapHot: [],
  ioasUnmapHot: [],
  notifierOpen: [() => 0],
  notifierClose: [1],
  deviceSetReqTrigger: [H, 0],
  deviceReqIrqCount: [H],
};

const exportsGroup = (names) => () => {
  for (const name of names) {
    const fn = a[name];
    const base = baseline[name];
    if (!base) throw new Error(`no baseline for export ${name}: add it to crash-sweep-child.mjs`);
    run(`${name}(baseline)`, () => fn(...base));
    run(`${name}(no arguments)`, () => fn());
    for (let i = 0; i < Math.max(base.length, 1) + 1; i++) {
      for (const v of hostile) {
        const args = [...base];
        args[i] = v;
        run(`${name}(arg ${i} = ${label(v)})`, () => fn(...args));
      }
    }
    // restore a usable error class for the groups after this export's own sweep
    if (name === 'setErrorClass' && group !== 'raw-errors') a.setErrorClass(KernelError);
  }
};

const fnNames = Object.keys(a).filter((k) => typeof a[k] === 'function').sort();
const missing = fnNames.filter((k) => !(k in baseline));
if (missing.length) throw new Error(`exports without a sweep baseline: ${missing.join(', ')}`);
const half = Math.ceil(fnNames.length / 2);

function members(proto) {
  return Object.entries(Object.getOwnPropertyDescriptors(proto)).filter(([k]) => k !== 'constructor');
}

const groups = {
  'exports-1': exportsGroup(fnNames.slice(0, half)),
  'exports-2': exportsGroup(fnNames.slice(half)),
  'raw-errors': exportsGroup(['open', 'ioasAlloc', 'regionRead', 'getApiVersion']),
  wraps: () => {
    const receivers = [...hostile.filter((v) => typeof v !== 'symbol'), Symbol('r')];
    for (const proto of [Object.getPrototypeOf(H), Object.getPrototypeOf(mem)]) {
      for (const [key, d] of members(proto)) {
        for (const r of receivers) {
          if (d.get) run(`get ${key} on ${label(r)}`, () => String(d.get.call(r)));
          if (typeof d.value === 'function') {
            for (const v of [undefined, 0n, 4096n, 2n ** 64n - 1n, -1n, 2 ** 32 - 1, 2 ** 20 + 1, mem.buffer ? new Uint8Array(16) : null]) {
              run(`${key}.call(${label(r)}, ${label(v)}, ${label(v)})`, () => d.value.call(r, v, v));
            }
          }
        }
      }
      const Ctor = proto.constructor;
      run(`new ${Ctor.name}()`, () => new Ctor());
      run(`new ${Ctor.name}({})`, () => new Ctor({}));
      run(`${Ctor.name}() without new`, () => Ctor());
      run(`new (class extends ${Ctor.name})()`, () => new (class extends Ctor {})());
      run(`Reflect.construct(${Ctor.name}, [], Object)`, () => Reflect.construct(Ctor, [], Object));
    }
  },
  memory: () => {
    const sizes = [0n, 1n, 4095n, 4096n, 2n ** 32n, 2n ** 32n + 4096n, 2n ** 47n, 2n ** 47n + 4096n, 2n ** 53n, 2n ** 64n - 4096n, 2n ** 64n - 1n, -4096n];
    for (const size of sizes) {
      for (const flags of [0, c.MEM_HUGE_PAGES]) {
        for (const view of [true, false]) {
          run(`allocMemory(${size}n, ${flags}, ${view})`, () => {
            const m = a.allocMemory(size, flags, view);
            if (view && m.buffer?.byteLength !== Number(size)) throw new Error('view of the wrong length');
            m.free();
          });
        }
      }
    }
    // the 4 GiB boundary that aborted (4 GiB works with a view; 4 GiB + 4 KiB must fail cleanly)
    run('allocMemory(4 GiB, view) then a write at its end', () => {
      const m = a.allocMemory(2n ** 32n, 0, true);
      new Uint8Array(m.buffer)[2 ** 32 - 1] = 1;
      m.free();
    });
    for (const m of [mem, lazy, freed]) {
      for (const [off, len] of [[0n, 0], [0n, 4096], [2n ** 64n - 1n, 1], [4096n, 2 ** 32 - 1], [2n ** 40n - 4096n, 4096]]) {
        if (m === lazy && len > 4096) continue; // 4 GiB of real reads/locks: legal, only slow
        run(`${label(m)}.read(${off}n, ${len})`, () => m.read(off, len));
        run(`${label(m)}.write(${off}n, ${len ? 16 : 0} bytes)`, () => m.write(off, new Uint8Array(len ? 16 : 0)));
        run(`${label(m)}.lock(${off}n, ${len}n)`, () => m.lock(off, BigInt(len)));
      }
      for (const [first, count] of [[0, 1], [0, 2 ** 20], [0, 2 ** 20 + 1], [2 ** 32 - 1, 1], [0, 2 ** 32 - 1]]) {
        run(`${label(m)}.pagemap(${first}, ${count})`, () => m.pagemap(first, count));
      }
    }
    const detached = new Uint8Array(16);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    run('write of a detached Uint8Array', () => mem.write(0n, detached));
    run('free() of pinned memory (guest) or unpinned', () => mem.free());
    run('getters after free', () => [mem.address, mem.size, mem.pins, mem.freed, mem.buffer].join());
    run('lazy 1 TiB free', () => lazy.free());
  },
  hot: () => {
    const u64 = new BigUint64Array(a.hotSlots, 0, 3);
    const u32 = new Uint32Array(a.hotSlots, 0, 12);
    const calls = ['dmaMapHot', 'dmaUnmapHot', 'ioasMapHot', 'ioasUnmapHot'];
    const ids = [0, 1, 2, 3, 1000, 2 ** 32 - 1, closed.hotId, mem.hotId, freed.hotId, lazy.hotId, ...handles.map((h) => h.hotId)];
    const big = [0n, 0x1000n, 0x100000n, 2n ** 32n + 4096n, 2n ** 53n, 2n ** 64n - 4096n, 2n ** 64n - 1n];
    let n = 0;
    for (const call of calls) {
      for (const hid of ids) {
        for (const mid of [0, mem.hotId, freed.hotId, lazy.hotId, closed.hotId, 2 ** 32 - 1]) {
          for (const v of big) {
            // only the unmaps may use every value: maps of real memory stay small (lengths ≤ 16 KiB)
            const len = call.endsWith('MapHot') ? (v <= 0x4000n ? v : 0x1000n) : v;
            u64.set([v, v === 0x1000n ? 0x1000n : 0n, len]);
            u32.set([hid, mid, n++ % 8, 1], 8);
            run(`${call} handle ${hid} memory ${mid} iova ${v} length ${len}`, () => a[call]());
          }
        }
      }
    }
    // a call whose slots were not written (as after JS's writes stopped reaching them) never acts
    // on the previous call's handle: every call leaves the slots zeroed
    u32.set([handles[0].hotId, mem.hotId, 3, 1], 8);
    u64.set([0x100000n, 0n, 0x1000n]);
    run('hot call with written slots', () => a.dmaUnmapHot());
    run('slots are zero after a call', () => {
      if (u32.some((x) => x !== 0) || u64.some((x) => x !== 0n)) throw new Error('slots not cleared');
    });
    for (const call of calls) run(`${call} with unwritten slots must be a TypeError`, () => {
      try {
        a[call]();
      } catch (e) {
        if (e instanceof TypeError) throw e;
        throw new Error(`not a TypeError: ${e}`);
      }
      throw new Error('acted on stale slots');
    });
    // try to take the buffer away: transfer, postMessage, detach by structuredClone
    run('structuredClone transfer of hotSlots', () => structuredClone(a.hotSlots, { transfer: [a.hotSlots] }));
    run('postMessage transfer of hotSlots', () => {
      const ch = new MessageChannel();
      ch.port1.postMessage(null, [a.hotSlots]);
      ch.port1.close();
    });
    if (typeof ArrayBuffer.prototype.transfer === 'function') run('hotSlots.transfer()', () => a.hotSlots.transfer());
    for (const call of calls) run(`${call} after the transfer attempts`, () => a[call]());
    run('writes after the transfer attempts reach the slots or the call is refused', () => {
      const w = new Uint32Array(a.hotSlots, 0, 12);
      w[8] = closed.hotId;
      a.dmaUnmapHot(); // a closed handle: must throw TypeError ("is closed" or "slot empty")
    });
  },
};

const g = groups[group];
if (!g) throw new Error(`unknown group ${group}; groups: ${Object.keys(groups).join(', ')}`);
g();
// Finalizers run too: collect everything the cases made (wraps, views, half-made objects).
globalThis.gc?.();
await new Promise((r) => setTimeout(r, 10));
globalThis.gc?.();
writeSync(2, 'done\n');
