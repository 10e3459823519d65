/**
 * DMA memory of the native backends: page-aligned anonymous mappings made by the addon, their
 * physical addresses, and what a map source names in this process's virtual memory (`pieces`): a
 * span of an allocation is its identity already (allocation + offset, carried down from the
 * caller's `DmaMemory`); physical runs, which is all the WDK gives for caller-built MDLs and PFN
 * lists and for identity maps, go through the PA → (allocation, offset) index.
 *
 * Pins have one record: the addon's `Region::pins` (native/binding/state.h), one per kernel
 * mapping of the region, which memory safety needs (the addon never unmaps memory the kernel
 * maps). `free()` reads it, plus what the kernel does not hold (`PoolHooks.mapCount`).
 *
 * Physical addresses are real (from /proc/self/pagemap) when the process can read PFNs (root /
 * CAP_SYS_ADMIN): the pages are pre-faulted and mlocked first so they are resident. Otherwise each
 * allocation gets a synthetic, contiguous range in a private PA namespace starting at 4 GiB
 * (`MemoryInfo.why` says so); such PAs are only names for this process's pages.
 */
import type { AllocateOptions, BackendMemory, MapSource, MemoryInfo, PhysicalRun } from '../contract.js';
import { checkSpan, isSpan, spanRuns } from '../memory-span.js';
import { constants as bufferConstants } from 'node:buffer';
import { OrderedIndex } from '../../util/ordered-index.js';
import { alignedPage } from '../../util/u64.js';
import type { NativeAddon, NativeMemory } from './addon-types.js';
import { ERR, PAGE, fail, hex } from './util.js';

const PFN_MASK = (1n << 55n) - 1n;
const PRESENT = 1n << 63n;
/** Pages per lock + pagemap call (the addon refuses more: one call's entries stay ≤ 8 MiB). */
const PAGEMAP_CHUNK = 1 << 20;
const HUGE = 2n << 20n;
export const SYNTHETIC_PA_BASE = 1n << 32n;

/** Can this process see real PFNs? Allocates, touches and inspects one page. */
export function probePhysical(addon: NativeAddon): MemoryInfo {
  let m: NativeMemory | undefined;
  try {
    m = addon.allocMemory(PAGE, addon.constants.MEM_POPULATE, false);
    m.write(0n, new Uint8Array([1]));
    const e = m.pagemap(0, 1)[0];
    if ((e & PRESENT) === 0n) return { physicalIsReal: false, why: 'pagemap reports the page not present' };
    if ((e & PFN_MASK) === 0n)
      return { physicalIsReal: false, why: 'PFNs in /proc/self/pagemap read as 0 without CAP_SYS_ADMIN: physical addresses are synthetic (a private namespace from 4 GiB, contiguous per allocation)' };
    return { physicalIsReal: true };
  } catch (e) {
    return { physicalIsReal: false, why: `cannot read /proc/self/pagemap (${(e as Error).message}): physical addresses are synthetic (a private namespace from 4 GiB, contiguous per allocation)` };
  } finally {
    try {
      m?.free();
    } catch {
      /* ignore */
    }
  }
}

/** A physically contiguous stretch of one allocation's resolved pages. */
interface IndexEntry {
  readonly pa: bigint;
  readonly end: bigint; // exclusive
  readonly alloc: NativeAllocation;
  /** Byte offset of `pa` in the allocation. */
  readonly offset: bigint;
  /** The same in page numbers (PFNs are < 2^52, exact as numbers). */
  readonly pfn: number;
  readonly pages: number;
  readonly offsetPages: number;
}


/** A VA-contiguous piece of one allocation. */
export interface Piece {
  readonly alloc: NativeAllocation;
  readonly offset: bigint;
  readonly length: bigint;
}

export interface PoolHooks {
  /** A new allocation exists (passthrough domains identity-map it). */
  allocated?(a: NativeAllocation): void;
  /** About to release (passthrough domains drop their identity maps). */
  freeing?(a: NativeAllocation): void;
  /**
   * How many contract-area pieces map `a` now (free() is EBUSY while > 0): the backend's count
   * from the addon's pins and its shadow (mapping.ts `mapCount`). Without it, the addon's pins.
   */
  mapCount?(a: NativeAllocation): number;
}

export class NativeMemoryPool {
  readonly info: MemoryInfo;
  readonly allocations = new Map<number, NativeAllocation>();
  hooks: PoolHooks = {};
  /**
   * Every allocation's resolved stretches keyed by first PFN (a page belongs to one allocation
   * at most): O(log n) inserts and lookups in numbers, so that an allocation of scattered pages
   * (tens of thousands of stretches) is indexed and resolved without bigint binary searches or
   * O(n) inserts.
   */
  #index = new OrderedIndex<IndexEntry>();
  /** The keys each allocation added to #index (to drop them when it goes). */
  #keysOf = new Map<NativeAllocation, number[]>();
  #nextId = 1;
  #nextSynthetic = SYNTHETIC_PA_BASE;

  constructor(
    readonly addon: NativeAddon,
    info: MemoryInfo,
  ) {
    this.info = info;
  }

  allocate(size: bigint, options: AllocateOptions = {}): NativeAllocation {
    if (typeof size !== 'bigint') throw new TypeError('size must be a bigint');
    if (size <= 0n) fail(ERR.EINVAL, 'mmap', `size must be positive, got ${size}`);
    if (size >= 1n << 47n) fail(ERR.ENOMEM, 'mmap', `size ${hex(size)} too large`);
    const huge = options.hugePages === true;
    const gran = huge ? HUGE : PAGE;
    const mapSize = ((size + gran - 1n) / gran) * gran;
    const lazy = options.lazy === true;
    // A non-lazy allocation comes with a view (`bytes`), and an ArrayBuffer cannot be larger than
    // this Node allows (4 GiB on Node 20): refuse before populating gigabytes (the addon refuses too).
    if (!lazy && mapSize > BigInt(bufferConstants.MAX_LENGTH)) {
      fail(ERR.ENOMEM, 'mmap', `${hex(mapSize)} bytes with a view exceed this Node.js's ArrayBuffer limit (${hex(BigInt(bufferConstants.MAX_LENGTH))}); allocate lazily`);
    }
    const c = this.addon.constants;
    const real = this.info.physicalIsReal;
    let flags = huge ? c.MEM_HUGE_PAGES : 0;
    if (!lazy) flags |= c.MEM_POPULATE | (real ? c.MEM_LOCK : 0);
    const nm = this.addon.allocMemory(mapSize, flags, !lazy);
    const id = this.#nextId++;
    let synthetic: bigint | null = null;
    if (!real) {
      synthetic = this.#nextSynthetic;
      this.#nextSynthetic += ((mapSize + HUGE - 1n) / HUGE) * HUGE;
    }
    const a = new NativeAllocation(this, id, size, nm, lazy, synthetic);
    try {
      if (!lazy) a.resolvePages(0, a.pageCount);
      if (options.contiguous && a.runs(0n, size).length !== 1) {
        fail(ERR.ENOMEM, 'mmap', `${hex(size)} bytes are not physically contiguous (native memory is only for hugePages ≤ 2 MiB)`);
      }
    } catch (e) {
      this.#dropIndex(a);
      nm.free();
      throw e;
    }
    this.allocations.set(id, a);
    this.hooks.allocated?.(a);
    return a;
  }

  /** Index a resolved physically contiguous run of `a` (page-aligned). */
  addIndex(a: NativeAllocation, pa: bigint, length: bigint, offset: bigint): void {
    const e: IndexEntry = {
      pa,
      end: pa + length,
      alloc: a,
      offset,
      pfn: Number(pa >> 12n),
      pages: Number(length >> 12n),
      offsetPages: Number(offset >> 12n),
    };
    this.#index.set(e.pfn, e);
    const keys = this.#keysOf.get(a);
    if (keys) keys.push(e.pfn);
    else this.#keysOf.set(a, [e.pfn]);
  }

  #dropIndex(a: NativeAllocation): void {
    for (const k of this.#keysOf.get(a) ?? []) if (this.#index.get(k)?.alloc === a) this.#index.delete(k);
    this.#keysOf.delete(a);
  }

  /** The live stretch holding page `pfn`, or undefined. */
  #findPfn(pfn: number): IndexEntry | undefined {
    const e = this.#index.floor(pfn);
    return e !== undefined && pfn < e.pfn + e.pages && !e.alloc.freed ? e : undefined;
  }

  /**
   * A map source → VA-contiguous pieces. A span of a live allocation of this pool is one piece as
   * it stands (its identity: no index, no bigint arithmetic beyond the range check in page
   * numbers); any other span is the runs it names, resolved like any runs.
   */
  pieces(source: MapSource, syscall: string): Piece[] {
    if (!isSpan(source)) return this.resolve(source, syscall);
    const a = source.memory;
    if (a instanceof NativeAllocation && a.pool === this && !a.freed) {
      const offset = source.offset;
      const length = source.length;
      const first = typeof offset === 'bigint' ? alignedPage(offset) : -1;
      const pages = typeof length === 'bigint' ? alignedPage(length) : -1;
      if (!(first >= 0 && pages > 0 && first + pages <= a.wholePages)) checkSpan(source, syscall); // throws unless byte-granular and inside
      if (a.lazy) a.resolvePages(Number(offset >> 12n), Number((offset + length - 1n) >> 12n) - Number(offset >> 12n) + 1);
      return [{ alloc: a, offset, length }];
    }
    return this.resolve(spanRuns(source, syscall), syscall);
  }

  /**
   * PA runs → VA-contiguous pieces of this process's allocations (adjacent pieces of the same
   * allocation are merged). A PA no allocation owns → EFAULT.
   */
  resolve(runs: readonly PhysicalRun[], syscall: string): Piece[] {
    // Whole pages below 8 TiB (what the core passes on every machine we know) in int32 page
    // numbers: no bigint arithmetic per run, which under TCG cost ~2 µs a run (a 64 MiB buffer
    // of scattered pages is 16,384 runs). Anything else takes the byte-exact path.
    if (runs.length === 1) {
      // the common case: one run inside one indexed stretch
      const r = runs[0];
      const pfn = alignedPage(r.pa);
      const pages = alignedPage(r.length);
      const e = pfn < 0 || pages <= 0 ? undefined : this.#findPfn(pfn);
      if (e && pfn + pages <= e.pfn + e.pages) return [{ alloc: e.alloc, offset: BigInt(e.offsetPages + (pfn - e.pfn)) * PAGE, length: r.length }];
    }
    const out: { alloc: NativeAllocation; offsetPages: number; pages: number }[] = [];
    for (let k = 0; k < runs.length; k++) {
      const r = runs[k];
      let pfn = alignedPage(r.pa);
      let left = alignedPage(r.length);
      if (pfn < 0 || left < 0) return this.#resolveBytes(runs, syscall);
      while (left > 0) {
        const e = this.#findPfn(pfn);
        if (!e) fail(ERR.EFAULT, syscall, `physical address ${hex(BigInt(pfn) << 12n)} is not memory this backend allocated`);
        const n = Math.min(left, e.pfn + e.pages - pfn);
        const off = e.offsetPages + (pfn - e.pfn);
        const last = out.length > 0 ? out[out.length - 1] : undefined;
        if (last && last.alloc === e.alloc && last.offsetPages + last.pages === off) last.pages += n;
        else out.push({ alloc: e.alloc, offsetPages: off, pages: n });
        pfn += n;
        left -= n;
      }
    }
    return out.map((p) => ({ alloc: p.alloc, offset: BigInt(p.offsetPages) * PAGE, length: BigInt(p.pages) * PAGE }));
  }

  /** resolve for runs with partial pages: the same walk in bytes. */
  #resolveBytes(runs: readonly PhysicalRun[], syscall: string): Piece[] {
    const out: { alloc: NativeAllocation; offset: bigint; length: bigint }[] = [];
    for (const r of runs) {
      let pa = r.pa;
      let left = r.length;
      while (left > 0n) {
        const e = this.#findPfn(Number(pa >> 12n));
        if (!e) fail(ERR.EFAULT, syscall, `physical address ${hex(pa)} is not memory this backend allocated`);
        const n = left < e.end - pa ? left : e.end - pa;
        const off = e.offset + (pa - e.pa);
        const last = out[out.length - 1];
        if (last && last.alloc === e.alloc && last.offset + last.length === off) last.length += n;
        else out.push({ alloc: e.alloc, offset: off, length: n });
        pa += n;
        left -= n;
      }
    }
    return out;
  }

  release(a: NativeAllocation): void {
    const n = this.hooks.mapCount ? this.hooks.mapCount(a) : a.native.pins;
    if (n > 0) fail(ERR.EBUSY, 'munmap', `allocation ${a.id} still has ${n} IOMMU mappings`);
    this.hooks.freeing?.(a);
    a.native.free();
    this.#dropIndex(a);
    this.allocations.delete(a.id);
  }

  /** Release everything (backend close). Mappings must be gone already. */
  releaseAll(): void {
    for (const a of [...this.allocations.values()]) {
      try {
        a.free();
      } catch {
        /* pinned by a kernel object that is being closed anyway */
      }
    }
  }
}

export class NativeAllocation implements BackendMemory {
  readonly bytes: Uint8Array | null;
  readonly pageCount: number;
  /** Whole pages inside `size` (pageCount, less a partial last page). */
  readonly wholePages: number;
  #pfns: BigUint64Array; // 0 = not yet resolved (lazy); PA >> 12 otherwise
  #freed = false;

  constructor(
    readonly pool: NativeMemoryPool,
    readonly id: number,
    readonly size: bigint,
    readonly native: NativeMemory,
    readonly lazy: boolean,
    readonly syntheticBase: bigint | null,
  ) {
    this.pageCount = Number((size + PAGE - 1n) / PAGE);
    this.wholePages = Number(size / PAGE);
    this.bytes = native.buffer ? new Uint8Array(native.buffer, 0, Number(size)) : null;
    this.#pfns = new BigUint64Array(this.pageCount);
    if (syntheticBase !== null) {
      for (let i = 0; i < this.pageCount; i++) this.#pfns[i] = (syntheticBase >> 12n) + BigInt(i);
      pool.addIndex(this, syntheticBase, BigInt(this.pageCount) * PAGE, 0n);
    }
  }

  get freed(): boolean {
    return this.#freed;
  }

  get address(): bigint {
    return this.native.address;
  }

  #check(op: string): void {
    if (this.#freed) fail(ERR.EINVAL, op, `allocation ${this.id} was freed`);
  }

  /** Make pages [first, first+count) resident and learn their PFNs (real PA mode). */
  resolvePages(first: number, count: number): void {
    if (this.syntheticBase !== null || count <= 0) return;
    let i = first;
    const end = first + count;
    while (i < end) {
      if (this.#pfns[i] !== 0n) {
        i++;
        continue;
      }
      let j = i;
      while (j < end && j - i < PAGEMAP_CHUNK && this.#pfns[j] === 0n) j++;
      const n = j - i;
      this.native.lock(BigInt(i) * PAGE, BigInt(n) * PAGE);
      const entries = this.native.pagemap(i, n);
      for (let k = 0; k < n; k++) {
        const e = entries[k];
        if ((e & PRESENT) === 0n || (e & PFN_MASK) === 0n) fail(ERR.EFAULT, 'pread', `page ${i + k} has no PFN`);
        this.#pfns[i + k] = e & PFN_MASK;
      }
      // index the new pages as coalesced runs
      let s = i;
      for (let k = i + 1; k <= j; k++) {
        if (k === j || this.#pfns[k] !== this.#pfns[k - 1] + 1n) {
          this.pool.addIndex(this, this.#pfns[s] << 12n, BigInt(k - s) * PAGE, BigInt(s) * PAGE);
          s = k;
        }
      }
      i = j;
    }
  }

  pageAddress(pageIndex: number): bigint {
    this.#check('pagemap');
    if (!Number.isInteger(pageIndex) || pageIndex < 0 || pageIndex >= this.pageCount) fail(ERR.EINVAL, 'pagemap', `page ${pageIndex} outside the allocation`);
    this.resolvePages(pageIndex, 1);
    return this.#pfns[pageIndex] << 12n;
  }

  runs(offset: bigint, length: bigint): PhysicalRun[] {
    this.#check('pagemap');
    if (typeof offset !== 'bigint' || typeof length !== 'bigint') throw new TypeError('offset and length must be bigints');
    if (offset < 0n || length <= 0n || offset + length > this.size) fail(ERR.EINVAL, 'pagemap', `range ${hex(offset)}+${hex(length)} outside the allocation`);
    const first = Number(offset / PAGE);
    const last = Number((offset + length - 1n) / PAGE);
    this.resolvePages(first, last - first + 1);
    const out: { pa: bigint; length: bigint }[] = [];
    for (let i = first; i <= last; i++) {
      const pageStart = BigInt(i) * PAGE;
      const lo = i === first ? offset : pageStart;
      const hi = i === last ? offset + length : pageStart + PAGE;
      const pa = (this.#pfns[i] << 12n) + (lo - pageStart);
      const prev = out[out.length - 1];
      if (prev && prev.pa + prev.length === pa) prev.length += hi - lo;
      else out.push({ pa, length: hi - lo });
    }
    return out;
  }

  read(offset: bigint, length: number): Uint8Array {
    this.#check('read');
    if (typeof offset !== 'bigint') throw new TypeError('offset must be a bigint');
    if (offset < 0n || length < 0 || offset + BigInt(length) > this.size) fail(ERR.EINVAL, 'read', 'range outside the allocation');
    if (this.bytes) return this.bytes.slice(Number(offset), Number(offset) + length);
    return this.native.read(offset, length);
  }

  write(offset: bigint, data: Uint8Array): void {
    this.#check('write');
    if (typeof offset !== 'bigint') throw new TypeError('offset must be a bigint');
    if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
    if (offset < 0n || offset + BigInt(data.length) > this.size) fail(ERR.EINVAL, 'write', 'range outside the allocation');
    if (this.bytes) this.bytes.set(data, Number(offset));
    else this.native.write(offset, data);
  }

  free(): void {
    if (this.#freed) return;
    this.pool.release(this);
    this.#freed = true;
  }
}
