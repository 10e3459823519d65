/**
 * The simulated machine's physical memory: a sparse RAM of configurable ranges (default 64 GiB of
 * physical space with the x86 PCI hole at 3–4 GiB), and the allocations `allocateMemory` hands
 * out from it.
 *
 * Storage is sparse everywhere: RAM outside allocations and lazy allocations keep one 4 KiB page
 * object per page that was ever written, so untouched memory costs nothing. Non-lazy allocations
 * (≤ 1 GiB) own one real `Uint8Array`: that array IS the RAM the DMA engine reads and writes.
 *
 * Only live allocations can be mapped (`owns`; anything else is EFAULT, as for a process whose
 * pages the kernel cannot pin). Every allocation counts the IOMMU pages mapping it
 * (`mappedPages`); `free()` refuses with EBUSY while that count is non-zero (the kernel keeps
 * mapped memory pinned). Together: a freed page is never mapped, so it can be handed to the next
 * allocation without a stale IOVA reaching it.
 *
 * About 500 lines for that one idea: the RAM ranges, the page store and the allocations that
 * hand it out are one record (who owns which physical page), so they stay together.
 */
import type { AllocateOptions, BackendMemory, PhysicalRun } from '../contract.js';
import { ERR, fail, hex, PAGE_SIZE, TWO_POW_52 } from './util.js';

export const MIB = 1024 * 1024;
export const GIB = 1024 * MIB;
const HUGE = 2 * MIB;
/** Largest allocation with a JS view (`bytes`); bigger ones must be lazy. */
export const MAX_EAGER_BYTES = GIB;
/** Allocations start above the first MiB (x86 legacy area), so PA 0 is never handed out. */
const ALLOC_FLOOR = MIB;

export interface RamRange {
  /** Byte address (inclusive). */
  readonly start: number;
  /** Byte address (exclusive). */
  readonly end: number;
}

/** One allocation: a physically contiguous, page-aligned range of sim RAM. */
export class SimMemory implements BackendMemory {
  readonly id: number;
  readonly size: bigint;
  /** PA of the first byte (number: exact below 2^53). */
  readonly pa: number;
  /** Length in bytes (page multiple). */
  readonly length: number;
  readonly pages: number;
  /** pa / 4096: the first page frame (a map of a span adds its page offset; no division per map). */
  readonly firstPfn: number;
  readonly lazy: boolean;
  readonly hugePages: boolean;
  /** Pages of this allocation currently mapped by any IOMMU domain. */
  mappedPages = 0;
  #bytes: Uint8Array | null;
  /** Lazy allocations: page index → page. */
  store: Map<number, Uint8Array> | null;
  #freed = false;
  readonly #owner: PhysicalMemory;

  constructor(owner: PhysicalMemory, id: number, pa: number, length: number, lazy: boolean, hugePages: boolean) {
    this.#owner = owner;
    this.id = id;
    this.pa = pa;
    this.length = length;
    this.pages = length / PAGE_SIZE;
    this.firstPfn = pa / PAGE_SIZE;
    this.size = BigInt(length);
    this.lazy = lazy;
    this.hugePages = hugePages;
    this.#bytes = lazy ? null : new Uint8Array(length);
    this.store = lazy ? new Map() : null;
  }

  get bytes(): Uint8Array | null {
    return this.#bytes;
  }

  get freed(): boolean {
    return this.#freed;
  }

  get end(): number {
    return this.pa + this.length;
  }

  /** Pages that hold data (lazy: pages written so far; eager: all of them). */
  get touchedPages(): number {
    return this.store ? this.store.size : this.pages;
  }

  runs(offset: bigint, length: bigint): PhysicalRun[] {
    const [off, len] = this.#range(offset, length, 'runs');
    if (len === 0) return [];
    return [{ pa: BigInt(this.pa + off), length: BigInt(len) }];
  }

  pageAddress(pageIndex: number): bigint {
    if (typeof pageIndex !== 'number' || !Number.isInteger(pageIndex)) {
      throw new TypeError(`pageIndex must be an integer, got ${typeof pageIndex}`);
    }
    this.#live('pageAddress');
    if (pageIndex < 0 || pageIndex >= this.pages) {
      throw new RangeError(`pageIndex ${pageIndex} is outside the allocation (${this.pages} pages)`);
    }
    return BigInt(this.pa + pageIndex * PAGE_SIZE);
  }

  read(offset: bigint, length: number): Uint8Array {
    if (typeof length !== 'number' || !Number.isInteger(length) || length < 0) {
      throw new TypeError(`length must be a non-negative integer, got ${String(length)}`);
    }
    const [off] = this.#range(offset, BigInt(length), 'read');
    const out = new Uint8Array(length);
    this.readInto(off, out, 0, length);
    return out;
  }

  write(offset: bigint, data: Uint8Array): void {
    if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
    const [off] = this.#range(offset, BigInt(data.length), 'write');
    this.writeFrom(off, data, 0, data.length);
  }

  free(): void {
    if (this.#freed) return;
    if (this.mappedPages !== 0) {
      fail(ERR.EBUSY, 'munmap', `allocation ${this.id} at ${hex(this.pa)} still has ${this.mappedPages} IOMMU-mapped pages`);
    }
    this.#owner.release(this);
  }

  /** Called by the owner when the memory is released (free, or backend close). */
  markFreed(): void {
    this.#freed = true;
    this.store = null;
  }

  // ---- raw access by offset (no checks): used by PhysicalMemory ----------------------------
  // readInto and writeFrom are alike in shape only (flat fast path, then forEachPage), not one loop
  // with a direction: a read of a page never written gives zeros and allocates nothing, a write
  // allocates the page; one loop would test the direction on every page of every simulated DMA.
  readInto(off: number, out: Uint8Array, outOff: number, len: number): void {
    const b = this.#bytes;
    if (b !== null) {
      out.set(b.subarray(off, off + len), outOff);
      return;
    }
    const store = this.store!;
    forEachPage(off, len, (page, inPage, n, done) => {
      const p = store.get(page);
      if (p) out.set(p.subarray(inPage, inPage + n), outOff + done);
      else out.fill(0, outOff + done, outOff + done + n);
    });
  }

  writeFrom(off: number, src: Uint8Array, srcOff: number, len: number): void {
    const b = this.#bytes;
    if (b !== null) {
      b.set(src.subarray(srcOff, srcOff + len), off);
      return;
    }
    const store = this.store!;
    forEachPage(off, len, (page, inPage, n, done) => pageOf(store, page).set(src.subarray(srcOff + done, srcOff + done + n), inPage));
  }

  #live(op: string): void {
    if (this.#freed) fail(ERR.EINVAL, op, `allocation ${this.id} was freed`);
  }

  #range(offset: bigint, length: bigint, op: string): [number, number] {
    if (typeof offset !== 'bigint') throw new TypeError(`offset must be a bigint, got ${typeof offset}`);
    if (typeof length !== 'bigint') throw new TypeError(`length must be a bigint, got ${typeof length}`);
    this.#live(op);
    if (offset < 0n || length < 0n || offset + length > this.size) {
      throw new RangeError(
        `[${hex(offset)}, +${hex(length)}) is outside allocation ${this.id} (size ${hex(this.size)})`,
      );
    }
    return [Number(offset), Number(length)];
  }
}

/** [off, off+len) page by page: `fn(page index, offset in the page, bytes, bytes before)`. */
function forEachPage(off: number, len: number, fn: (page: number, inPage: number, n: number, done: number) => void): void {
  let done = 0;
  while (done < len) {
    const at = off + done;
    const page = Math.floor(at / PAGE_SIZE);
    const inPage = at - page * PAGE_SIZE;
    const n = Math.min(len - done, PAGE_SIZE - inPage);
    fn(page, inPage, n, done);
    done += n;
  }
}

/** The page `index` of a sparse store, created zeroed when first written. */
function pageOf(store: Map<number, Uint8Array>, index: number): Uint8Array {
  let p = store.get(index);
  if (!p) {
    p = new Uint8Array(PAGE_SIZE);
    store.set(index, p);
  }
  return p;
}

/** The machine's RAM and its allocator. */
export class PhysicalMemory {
  readonly ranges: readonly RamRange[];
  /** One past the highest RAM byte. */
  readonly top: number;
  /** Free byte ranges for the allocator, sorted, disjoint: parallel arrays of [start, end). */
  #freeStart: number[] = [];
  #freeEnd: number[] = [];
  /** Live allocations sorted by PA. */
  #allocs: SimMemory[] = [];
  #allocPa: number[] = [];
  #byId = new Map<number, SimMemory>();
  #nextId = 1;
  #last: SimMemory | null = null;
  /** RAM that belongs to no allocation (reachable by pass-through DMA only; maps need an allocation): pfn → page. */
  #loose = new Map<number, Uint8Array>();

  constructor(ranges: readonly RamRange[]) {
    const sorted = [...ranges].sort((a, b) => a.start - b.start);
    for (let i = 0; i < sorted.length; i++) {
      const r = sorted[i];
      if (!(Number.isSafeInteger(r.start) && Number.isSafeInteger(r.end)) || r.start < 0 || r.end <= r.start) {
        throw new RangeError(`bad RAM range [${r.start}, ${r.end})`);
      }
      if (r.start % PAGE_SIZE !== 0 || r.end % PAGE_SIZE !== 0) throw new RangeError('RAM ranges must be page aligned');
      if (r.end > TWO_POW_52) throw new RangeError('RAM above 2^52 is not supported');
      if (i > 0 && r.start < sorted[i - 1].end) throw new RangeError('RAM ranges overlap');
    }
    this.ranges = sorted.map((r) => ({ start: r.start, end: r.end }));
    this.top = sorted.length ? sorted[sorted.length - 1].end : 0;
    for (const r of sorted) {
      const s = Math.max(r.start, ALLOC_FLOOR);
      if (s < r.end) {
        this.#freeStart.push(s);
        this.#freeEnd.push(r.end);
      }
    }
  }

  get totalBytes(): number {
    let t = 0;
    for (const r of this.ranges) t += r.end - r.start;
    return t;
  }

  get allocations(): readonly SimMemory[] {
    return this.#allocs;
  }

  byId(id: number): SimMemory | undefined {
    return this.#byId.get(id);
  }

  /** True when [pa, pa+len) lies entirely in RAM. */
  isRam(pa: number, len: number): boolean {
    const end = pa + len;
    const rs = this.ranges;
    for (let i = 0; i < rs.length; i++) {
      const r = rs[i];
      if (pa >= r.start && end <= r.end) return true;
    }
    return false;
  }

  /**
   * True when every byte of [pa, pa+len) belongs to a live allocation (one, or several adjacent
   * ones): what a process may map. The kernel pins the pages of the process's own memory and
   * answers anything else with EFAULT: RAM that was freed, or never handed out, is not mappable.
   */
  owns(pa: number, len: number): boolean {
    const m = this.find(pa);
    if (m === null) return false;
    const end = pa + len;
    return end <= m.pa + m.length || this.#ownsSpanning(m.pa + m.length, end);
  }

  /** owns() past the first allocation: each next one must start where the last one ended. */
  #ownsSpanning(from: number, end: number): boolean {
    let i = this.#upper(from) - 1;
    const allocs = this.#allocs;
    while (from < end) {
      if (i < 0 || i >= allocs.length || allocs[i].pa !== from) {
        i = this.#upper(from) - 1;
        if (i < 0 || allocs[i].pa + allocs[i].length <= from) return false;
      }
      from = allocs[i].pa + allocs[i].length;
      i++;
    }
    return true;
  }

  allocate(size: bigint, options: AllocateOptions): SimMemory {
    const hugePages = options.hugePages === true;
    const lazy = options.lazy === true;
    if (size <= 0n) fail(ERR.EINVAL, 'mmap', `size must be positive, got ${size}`);
    const align = hugePages ? HUGE : PAGE_SIZE;
    if (size > BigInt(this.top)) fail(ERR.ENOMEM, 'mmap', `${hex(size)} bytes exceed the machine's RAM`);
    const length = Math.ceil(Number(size) / align) * align;
    if (!lazy && length > MAX_EAGER_BYTES) {
      fail(ERR.EINVAL, 'mmap', `allocations above 1 GiB must be lazy (size ${hex(size)})`);
    }
    let pa = -1;
    let slot = -1;
    for (let i = 0; i < this.#freeStart.length; i++) {
      const s = Math.ceil(this.#freeStart[i] / align) * align;
      if (s + length <= this.#freeEnd[i]) {
        pa = s;
        slot = i;
        break;
      }
    }
    if (pa < 0) fail(ERR.ENOMEM, 'mmap', `no ${hex(length)}-byte physically contiguous range left`);
    // carve [pa, pa+length) out of the free slot
    const fs = this.#freeStart[slot];
    const fe = this.#freeEnd[slot];
    const pieces: Array<[number, number]> = [];
    if (fs < pa) pieces.push([fs, pa]);
    if (pa + length < fe) pieces.push([pa + length, fe]);
    this.#freeStart.splice(slot, 1, ...pieces.map((p) => p[0]));
    this.#freeEnd.splice(slot, 1, ...pieces.map((p) => p[1]));
    // the memory is handed out zeroed: forget loose pages that were written there
    this.#dropLoose(pa, length);
    const mem = new SimMemory(this, this.#nextId++, pa, length, lazy, hugePages);
    const at = this.#upper(pa);
    this.#allocs.splice(at, 0, mem);
    this.#allocPa.splice(at, 0, pa);
    this.#byId.set(mem.id, mem);
    return mem;
  }

  /** Release an allocation (its mappedPages must be 0: checked by the caller). */
  release(mem: SimMemory): void {
    if (mem.freed) return;
    const i = this.#upper(mem.pa) - 1;
    if (i >= 0 && this.#allocs[i] === mem) {
      this.#allocs.splice(i, 1);
      this.#allocPa.splice(i, 1);
    }
    this.#byId.delete(mem.id);
    if (this.#last === mem) this.#last = null;
    mem.markFreed();
    this.#addFree(mem.pa, mem.pa + mem.length);
  }

  /** Release everything (backend close). */
  releaseAll(): void {
    for (const m of [...this.#allocs]) {
      m.mappedPages = 0;
      this.release(m);
    }
    this.#loose.clear();
  }

  // find and adjustMapped run twice per map/unmap pair: their common case (the allocation found
  // last; a range inside one allocation) stays small enough for V8 to inline into the simulator's
  // map/unmap, the searches are separate methods.

  /** The allocation containing byte `pa`, or null. */
  find(pa: number): SimMemory | null {
    const last = this.#last;
    if (last !== null && pa >= last.pa && pa < last.pa + last.length) return last;
    return this.#search(pa);
  }

  /** find without the last-found check: binary search, remembering the result. */
  #search(pa: number): SimMemory | null {
    const i = this.#upper(pa) - 1;
    if (i < 0) return null;
    const m = this.#allocs[i];
    if (pa < m.pa + m.length) {
      this.#last = m;
      return m;
    }
    return null;
  }

  /** Add `delta` × (pages overlapped) to the mappedPages of every allocation in [pa, pa+len). */
  adjustMapped(pa: number, len: number, delta: number): void {
    const m = this.find(pa);
    const end = pa + len;
    if (m !== null && end <= m.pa + m.length) {
      m.mappedPages += delta * (len / PAGE_SIZE);
      return;
    }
    this.#adjustSpanning(pa, end, delta);
  }

  /** adjustMapped of [pa, end) over every allocation it overlaps. */
  #adjustSpanning(pa: number, end: number, delta: number): void {
    let i = Math.max(0, this.#upper(pa) - 1);
    const allocs = this.#allocs;
    for (; i < allocs.length; i++) {
      const a = allocs[i];
      if (a.pa >= end) break;
      const s = Math.max(a.pa, pa);
      const e = Math.min(a.pa + a.length, end);
      if (e > s) a.mappedPages += (delta * (e - s)) / PAGE_SIZE;
    }
  }

  read(pa: number, out: Uint8Array, outOff: number, len: number): void {
    const m = this.find(pa);
    if (m !== null && pa + len <= m.pa + m.length) {
      m.readInto(pa - m.pa, out, outOff, len); // the common case: inside one allocation
      return;
    }
    const loose = this.#loose;
    this.#walk(pa, len, (a, off, n, done) => a.readInto(off, out, outOff + done, n), (pfn, inPage, n, done) => {
      const p = loose.get(pfn);
      if (p) out.set(p.subarray(inPage, inPage + n), outOff + done);
      else out.fill(0, outOff + done, outOff + done + n);
    });
  }

  write(pa: number, src: Uint8Array, srcOff: number, len: number): void {
    const m = this.find(pa);
    if (m !== null && pa + len <= m.pa + m.length) {
      m.writeFrom(pa - m.pa, src, srcOff, len);
      return;
    }
    const loose = this.#loose;
    this.#walk(
      pa,
      len,
      (a, off, n, done) => a.writeFrom(off, src, srcOff + done, n),
      (pfn, inPage, n, done) => pageOf(loose, pfn).set(src.subarray(srcOff + done, srcOff + done + n), inPage),
    );
  }

  /**
   * [pa, pa+len) in pieces: `inAlloc` for each stretch inside one allocation (its offset there),
   * `loose` for each piece of a page outside every allocation; `done` is the bytes before the piece.
   */
  #walk(pa: number, len: number, inAlloc: (m: SimMemory, off: number, n: number, done: number) => void, loose: (pfn: number, inPage: number, n: number, done: number) => void): void {
    let done = 0;
    while (done < len) {
      const at = pa + done;
      const m = this.find(at);
      let n: number;
      if (m !== null) {
        n = Math.min(len - done, m.pa + m.length - at);
        inAlloc(m, at - m.pa, n, done);
      } else {
        const pfn = Math.floor(at / PAGE_SIZE);
        const inPage = at - pfn * PAGE_SIZE;
        n = Math.min(len - done, PAGE_SIZE - inPage);
        loose(pfn, inPage, n, done);
      }
      done += n;
    }
  }

  get loosePages(): number {
    return this.#loose.size;
  }

  get freeRanges(): Array<{ start: number; end: number }> {
    return this.#freeStart.map((s, i) => ({ start: s, end: this.#freeEnd[i] }));
  }

  /** Index of the first allocation whose PA is > pa. */
  #upper(pa: number): number {
    const a = this.#allocPa;
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid] <= pa) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #addFree(start: number, end: number): void {
    const fs = this.#freeStart;
    const fe = this.#freeEnd;
    let i = 0;
    let hi = fs.length;
    while (i < hi) {
      const mid = (i + hi) >>> 1;
      if (fs[mid] < start) i = mid + 1;
      else hi = mid;
    }
    fs.splice(i, 0, start);
    fe.splice(i, 0, end);
    // merge with the next, then with the previous
    if (i + 1 < fs.length && fe[i] === fs[i + 1]) {
      fe[i] = fe[i + 1];
      fs.splice(i + 1, 1);
      fe.splice(i + 1, 1);
    }
    if (i > 0 && fe[i - 1] === fs[i]) {
      fe[i - 1] = fe[i];
      fs.splice(i, 1);
      fe.splice(i, 1);
    }
  }

  #dropLoose(pa: number, len: number): void {
    if (this.#loose.size === 0) return;
    const first = pa / PAGE_SIZE;
    const last = first + len / PAGE_SIZE;
    if (this.#loose.size < len / PAGE_SIZE) {
      for (const pfn of this.#loose.keys()) if (pfn >= first && pfn < last) this.#loose.delete(pfn);
    } else {
      for (let p = first; p < last; p++) this.#loose.delete(p);
    }
  }
}
