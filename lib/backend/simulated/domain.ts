/**
 * A simulated IOMMU domain with iommufd semantics: an IOAS (the areas) fused with its paging HWPT
 * (the page table), or an identity (pass-through) domain, or an arm64 Unmanaged domain whose
 * stage-1 tables the caller owns.
 *
 * Area index. Areas that the hardware table can hold (IOVA, length and every run 4 KiB aligned,
 * below the table's reach) live only in the page table: the table's `mark` column records area
 * boundaries, so a 4 KiB map or unmap is O(levels) with no per-area object. Areas it cannot hold
 * exist only while no device is attached (alignment 1, aperture [0, 2^64-1], as in iommufd) and
 * are kept in a small sorted list (`LooseAreas`, bigint bounds, binary search); attaching a device
 * then fails with EADDRINUSE, as the kernel's alignment/aperture check does. Pass-through domains
 * use the same table purely as an index (DMA ignores it).
 *
 * Errors (checked in the kernel's order, before any change: every failure leaves the domain as
 * it was): EINVAL zero length, misalignment, outside the usable ranges (aperture or reserved
 * region); EOVERFLOW iova+length wraps 2^64; EEXIST overlap; EFAULT a PA outside the live
 * allocations (freed or never allocated memory: the kernel cannot pin it);
 * unmap: ENOENT when the range cuts an area or holds none. Unlike the kernel, an unmap that fails
 * on a cut area unmaps nothing (the kernel may already have removed the areas before the cut).
 */
import type { DomainGeometry, IovaRange, PhysicalRun } from '../contract.js';
import { PageTable, SPAN } from './page-table.js';
import type { PhysicalMemory } from './physical-memory.js';
import { Stage1 } from './stage1.js';
import { ERR, fail, hex, PAGE_SIZE, U64_MAX } from './util.js';

export type DomainType = 'translate' | 'passthrough' | 'unmanaged';

const MAP = 'IOMMU_IOAS_MAP';
const UNMAP = 'IOMMU_IOAS_UNMAP';
const ATTACH = 'VFIO_DEVICE_ATTACH_IOMMUFD_PT';

export interface DomainEnv {
  readonly addressWidth: number;
  readonly levels: number;
  readonly pageSizes: bigint;
  readonly allow2M: boolean;
  readonly allow1G: boolean;
  readonly phys: PhysicalMemory;
}

/** Whatever attaches to a domain (a device's RID or one of its PASIDs): what it reserves. */
export interface AttachSource {
  readonly reservedRegions: readonly IovaRange[];
}

interface LooseArea {
  readonly start: bigint;
  readonly last: bigint;
  readonly perms: number;
  readonly runs: readonly PhysicalRun[];
}

/** Areas the page table cannot hold: sorted by start, disjoint. */
class LooseAreas {
  readonly items: LooseArea[] = [];

  get size(): number {
    return this.items.length;
  }

  /** Index of the first area whose last byte is ≥ s. */
  #firstEndingFrom(s: bigint): number {
    const a = this.items;
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid].last < s) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** [i0, i1): the areas intersecting [s, e]. */
  range(s: bigint, e: bigint): [number, number] {
    const i0 = this.#firstEndingFrom(s);
    let i1 = i0;
    while (i1 < this.items.length && this.items[i1].start <= e) i1++;
    return [i0, i1];
  }

  overlaps(s: bigint, e: bigint): boolean {
    if (this.items.length === 0) return false;
    const i = this.#firstEndingFrom(s);
    return i < this.items.length && this.items[i].start <= e;
  }

  insert(a: LooseArea): void {
    this.items.splice(this.#firstEndingFrom(a.start), 0, a);
  }
}

/** EFAULT for a map of physical memory that is not (all) in live allocations. */
function notOwned(pa: number | bigint, len: number | bigint): never {
  fail(ERR.EFAULT, MAP, `PA ${hex(pa)}+${hex(len)} is not memory this process allocated (freed, or never handed out)`);
}

export function mergeRanges(ranges: readonly IovaRange[]): IovaRange[] {
  const sorted = [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: Array<{ start: bigint; last: bigint }> = [];
  for (const r of sorted) {
    const prev = out[out.length - 1];
    if (prev !== undefined && r.start <= prev.last + 1n) {
      if (r.last > prev.last) prev.last = r.last;
    } else out.push({ start: r.start, last: r.last });
  }
  return out;
}

export interface AreaInfo {
  readonly iova: bigint;
  readonly length: bigint;
  readonly perms: number;
  readonly runs: PhysicalRun[];
}

export class SimDomain {
  readonly handle: number;
  readonly type: DomainType;
  /** Translation table (translate), index-only table (passthrough), or null (unmanaged). */
  readonly table: PageTable | null;
  readonly stage1: Stage1 | null;
  readonly loose = new LooseAreas();
  areaCount = 0;
  /** RID and PASID attachments (key: device handle, or `${handle}/${pasid}`). */
  readonly attachments = new Map<string, AttachSource>();
  readonly #env: DomainEnv;
  readonly #phys: PhysicalMemory;
  readonly #apertureLast: bigint;
  readonly #aperturePages: number;
  #reserved: IovaRange[] = [];
  #resFirst: number[] = [];
  #resLast: number[] = [];

  constructor(handle: number, type: DomainType, env: DomainEnv) {
    this.handle = handle;
    this.type = type;
    this.#env = env;
    this.#phys = env.phys;
    this.#apertureLast = (1n << BigInt(env.addressWidth)) - 1n;
    this.#aperturePages = 2 ** (env.addressWidth - 12);
    this.table = type === 'unmanaged' ? null : new PageTable(env.levels, env.allow2M, env.allow1G);
    this.stage1 = type === 'unmanaged' ? new Stage1(env.phys) : null;
  }

  get attached(): boolean {
    return this.attachments.size > 0;
  }

  get aperturePages(): number {
    return this.#aperturePages;
  }

  get reserved(): readonly IovaRange[] {
    return this.#reserved;
  }

  // ---- attachment and geometry --------------------------------------------------------------

  /** EADDRINUSE unless every existing area fits the geometry `source` would add. */
  checkAttach(source: AttachSource): void {
    const table = this.table;
    if (table === null) return;
    if (this.loose.size > 0) {
      const a = this.loose.items[0];
      fail(ERR.EADDRINUSE, ATTACH, `area at ${hex(a.start)} is not 4 KiB aligned or lies outside the aperture`);
    }
    if (table.anyInRange(this.#aperturePages, table.reach - 1)) {
      fail(ERR.EADDRINUSE, ATTACH, `an area lies beyond the ${this.#env.addressWidth}-bit aperture`);
    }
    for (const r of mergeRanges([...this.#reserved, ...source.reservedRegions])) {
      if (table.anyInRange(Number(r.start >> 12n), Number(r.last >> 12n))) {
        fail(ERR.EADDRINUSE, ATTACH, `an area overlaps the reserved region ${hex(r.start)}-${hex(r.last)}`);
      }
    }
  }

  addAttachment(key: string, source: AttachSource): void {
    this.attachments.set(key, source);
    this.#recompute();
  }

  removeAttachment(key: string): void {
    if (this.attachments.delete(key)) this.#recompute();
  }

  #recompute(): void {
    const all: IovaRange[] = [];
    for (const s of this.attachments.values()) all.push(...s.reservedRegions);
    this.#reserved = mergeRanges(all).filter((r) => r.start <= this.#apertureLast);
    this.#resFirst = this.#reserved.map((r) => Number(r.start >> 12n));
    this.#resLast = this.#reserved.map((r) => Number(r.last >> 12n));
  }

  geometry(): DomainGeometry {
    const pageSizes = this.#env.pageSizes;
    if (!this.attached) {
      return { ranges: [{ start: 0n, last: U64_MAX }], alignment: 1n, pageSizes, addressWidth: 64 };
    }
    const ranges: IovaRange[] = [];
    let cursor = 0n;
    for (const r of this.#reserved) {
      if (r.start > cursor) ranges.push({ start: cursor, last: r.start - 1n });
      if (r.last + 1n > cursor) cursor = r.last + 1n;
    }
    if (cursor <= this.#apertureLast) ranges.push({ start: cursor, last: this.#apertureLast });
    return { ranges, alignment: BigInt(PAGE_SIZE), pageSizes, addressWidth: this.#env.addressWidth };
  }

  // ---- map --------------------------------------------------------------------------------

  #noTable(op: string): never {
    fail(ERR.EINVAL, op, `domain ${this.handle} is Unmanaged: its page tables belong to the caller`);
  }

  /**
   * Fast path: one page-aligned run, in int32 page numbers (IOVA page `page`, `pages` pages, PA
   * page `pfn`; all < 2^31, `pages` > 0). Returns false (having changed nothing) when the general
   * path must decide (beyond the table's reach); throws on errors, as `mapSlow` would.
   *
   * A one-page map in an empty slot is the common case: it is kept small (errors and the
   * multi-page table path are separate methods) so that V8 inlines it, with the page-table walk,
   * into the backend's map.
   */
  mapPages(page: number, pages: number, pfn: number, perms: number): boolean {
    const table = this.table;
    if (table === null) this.#noTable(MAP);
    const last = page + pages - 1;
    if (last >= table.reach) return false;
    if (this.attachments.size !== 0) this.#checkUsablePages(page, last);
    const phys = this.#phys;
    const pa = pfn * PAGE_SIZE;
    // one page of a live allocation (allocations are whole pages: the one holding its first byte
    // holds it all) and no loose area to check: check-and-insert in a single walk, and the
    // allocation found once counts the mapped page
    const owner = pages === 1 && this.loose.size === 0 ? phys.find(pa) : null;
    if (owner !== null) {
      if (!table.tryInsert4K(page, pa + perms)) this.#rejectMap(ERR.EEXIST, page, pages, 'overlaps an existing area');
      owner.mappedPages++;
    } else {
      this.#mapTableRun(table, page, pages, pfn, perms);
      phys.adjustMapped(pa, pages * PAGE_SIZE, 1);
    }
    this.areaCount++;
    return true;
  }

  /** mapPages' geometry check (attached domains): inside the aperture, clear of reserved regions. */
  #checkUsablePages(page: number, last: number): void {
    if (last >= this.#aperturePages) this.#rejectMap(ERR.EINVAL, page, last - page + 1, 'is outside the aperture');
    const rf = this.#resFirst;
    const rl = this.#resLast;
    for (let i = 0; i < rf.length; i++) {
      if (page <= rl[i] && last >= rf[i]) this.#rejectMap(ERR.EINVAL, page, last - page + 1, 'hits a reserved region');
    }
  }

  /** mapPages beyond one leaf (or with loose areas, or a PA to check): range tests, then the leaves. */
  #mapTableRun(table: PageTable, page: number, pages: number, pfn: number, perms: number): void {
    const last = page + pages - 1;
    const iova = page * PAGE_SIZE;
    const len = pages * PAGE_SIZE;
    if (table.anyInRange(page, last)) this.#rejectMap(ERR.EEXIST, page, pages, 'overlaps an existing area');
    if (this.loose.size !== 0 && this.loose.overlaps(BigInt(iova), BigInt(iova + len - 1))) {
      this.#rejectMap(ERR.EEXIST, page, pages, 'overlaps an existing area');
    }
    const pa = pfn * PAGE_SIZE;
    if (!this.#phys.owns(pa, len)) notOwned(pa, len);
    table.mapRun(page, pfn, pages, perms, page, pages);
  }

  /** Throw a map error about IOVA pages [page, page+pages): `<iova>+<length> <what>`. */
  #rejectMap(errno: number, page: number, pages: number, what: string): never {
    fail(errno, MAP, `${hex(page * PAGE_SIZE)}+${hex(pages * PAGE_SIZE)} ${what}`);
  }

  /** General path (bigint arithmetic, any number of runs). Preconditions: length = Σ runs > 0. */
  mapSlow(iova: bigint, length: bigint, runs: readonly PhysicalRun[], perms: number): void {
    const table = this.table;
    if (table === null) this.#noTable(MAP);
    if (length === 0n) fail(ERR.EINVAL, MAP, 'length is 0');
    const attached = this.attachments.size !== 0;
    if (attached) {
      if ((iova & 0xfffn) !== 0n || (length & 0xfffn) !== 0n) {
        fail(ERR.EINVAL, MAP, `${hex(iova)}+${hex(length)} is not aligned to 4096`);
      }
      for (const r of runs) {
        if ((r.pa & 0xfffn) !== 0n || (r.length & 0xfffn) !== 0n) {
          fail(ERR.EINVAL, MAP, `run ${hex(r.pa)}+${hex(r.length)} is not aligned to 4096`);
        }
      }
    }
    const last = iova + length - 1n;
    if (last > U64_MAX) fail(ERR.EOVERFLOW, MAP, `${hex(iova)}+${hex(length)} wraps 2^64`);
    if (attached) {
      if (last > this.#apertureLast) fail(ERR.EINVAL, MAP, `${hex(iova)}+${hex(length)} is outside the aperture`);
      for (const r of this.#reserved) {
        if (iova <= r.last && last >= r.start) fail(ERR.EINVAL, MAP, `${hex(iova)}+${hex(length)} hits a reserved region`);
      }
    }
    const p0 = Number(iova >> 12n);
    const p1 = Number(last >> 12n);
    if (p0 < table.reach && table.anyInRange(p0, p1)) fail(ERR.EEXIST, MAP, `${hex(iova)}+${hex(length)} overlaps an existing area`);
    if (this.loose.overlaps(iova, last)) fail(ERR.EEXIST, MAP, `${hex(iova)}+${hex(length)} overlaps an existing area`);
    const phys = this.#phys;
    const top = BigInt(phys.top);
    for (const r of runs) {
      if (r.pa + r.length > top || !phys.owns(Number(r.pa), Number(r.length))) notOwned(r.pa, r.length);
    }
    let aligned = ((iova | length) & 0xfffn) === 0n && p1 < table.reach;
    for (const r of runs) if (((r.pa | r.length) & 0xfffn) !== 0n) aligned = false;
    if (aligned) {
      const total = Number(length >> 12n);
      let page = p0;
      for (const r of runs) {
        const n = Number(r.length >> 12n);
        table.mapRun(page, Number(r.pa >> 12n), n, perms, p0, total);
        phys.adjustMapped(Number(r.pa), Number(r.length), 1);
        page += n;
      }
    } else {
      const copy = runs.map((r) => ({ pa: r.pa, length: r.length }));
      this.loose.insert({ start: iova, last, perms, runs: copy });
      for (const r of copy) this.#adjustLoose(r, 1);
    }
    this.areaCount++;
  }

  /** Pages touched by a loose run count as mapped (symmetric on unmap). */
  #adjustLoose(r: PhysicalRun, delta: number): void {
    const s = Number(r.pa >> 12n) * PAGE_SIZE;
    const e = Number((r.pa + r.length + 0xfffn) >> 12n) * PAGE_SIZE;
    this.#phys.adjustMapped(s, e - s, delta);
  }

  // ---- unmap ------------------------------------------------------------------------------

  /**
   * Fast path: the range (int32 page numbers: `pages` > 0 pages at `page`, both < 2^31) is exactly
   * one table area. Returns the pages removed, or -1 (nothing changed) for the general path.
   */
  unmapPages(page: number, pages: number): number {
    const table = this.table;
    if (table === null) this.#noTable(UNMAP);
    if (page >= table.reach) return -1;
    if (table.removeAreaAt(page, pages, this.#phys) < 0) return -1;
    this.areaCount--;
    return pages;
  }

  /** General unmap of [iova, iova+length). `all` = the unmap-all form (succeeds when empty). */
  unmapSlow(iova: bigint, length: bigint, all = false): bigint {
    const table = this.table;
    if (table === null) this.#noTable(UNMAP);
    if (length === 0n) fail(ERR.EINVAL, UNMAP, 'length is 0');
    const e = all ? U64_MAX : iova + length - 1n;
    if (e > U64_MAX) fail(ERR.EOVERFLOW, UNMAP, `${hex(iova)}+${hex(length)} wraps 2^64`);
    const s = iova;
    // table areas: only the first and the last one can be cut
    let tFirst = -1;
    let tLast = -1;
    const sp = Number(s >> 12n);
    if (sp < table.reach) {
      const ep = Number(e >> 12n);
      if (table.firstPresent(sp, ep) >= 0) {
        const a1 = table.hitAreaStart();
        if (a1 < Number((s + 0xfffn) >> 12n)) {
          fail(ERR.ENOENT, UNMAP, `${hex(s)}+${hex(length)} cuts the area at ${hex(a1 * PAGE_SIZE)}`);
        }
        table.lastPresent(sp, ep);
        const a2 = table.hitAreaStart();
        const n2 = table.hitMark > 0 ? table.hitMark : table.areaPagesAt(a2);
        if (a2 + n2 > Number((e + 1n) >> 12n)) {
          fail(ERR.ENOENT, UNMAP, `${hex(s)}+${hex(length)} cuts the area at ${hex(a2 * PAGE_SIZE)}`);
        }
        tFirst = a1;
        tLast = a2 + n2 - 1;
      }
    }
    const [i0, i1] = this.loose.range(s, e);
    for (let i = i0; i < i1; i++) {
      const a = this.loose.items[i];
      if (a.start < s || a.last > e) fail(ERR.ENOENT, UNMAP, `${hex(s)}+${hex(length)} cuts the area at ${hex(a.start)}`);
    }
    if (tFirst < 0 && i0 === i1) {
      if (all) return 0n;
      fail(ERR.ENOENT, UNMAP, `nothing is mapped in ${hex(s)}+${hex(length)}`);
    }
    let bytes = 0n;
    if (tFirst >= 0) {
      const pages = table.clearRange(tFirst, tLast, this.#phys);
      this.areaCount -= table.clearedAreas;
      bytes += BigInt(pages) * 4096n;
    }
    if (i1 > i0) {
      const removed = this.loose.items.splice(i0, i1 - i0);
      for (const a of removed) {
        for (const r of a.runs) this.#adjustLoose(r, -1);
        bytes += a.last - a.start + 1n;
      }
      this.areaCount -= removed.length;
    }
    return bytes;
  }

  /** Drop every area (freeDomain / close). */
  dropAll(): void {
    const table = this.table;
    if (table !== null) table.clearRange(0, table.reach - 1, this.#phys);
    for (const a of this.loose.items) for (const r of a.runs) this.#adjustLoose(r, -1);
    this.loose.items.length = 0;
    this.areaCount = 0;
  }

  // ---- inspection -------------------------------------------------------------------------

  /** Areas in IOVA order (at most `limit`). */
  areas(limit = Infinity): AreaInfo[] {
    const out: Array<{ iova: bigint; length: bigint; perms: number; runs: PhysicalRun[] }> = [];
    if (limit <= 0) return out;
    const table = this.table;
    if (table !== null) {
      let cur: (typeof out)[number] | null = null;
      let count = 0;
      table.forEachLeaf((page, level, pte, mark) => {
        if (mark > 0) {
          count++;
          cur = count <= limit ? { iova: BigInt(page) * 4096n, length: BigInt(mark) * 4096n, perms: pte & 3, runs: [] } : null;
          if (cur) out.push(cur);
        }
        if (cur === null) return;
        const pa = BigInt(pte - (pte & 4095));
        const len = BigInt(SPAN[level]) * 4096n;
        const runs = cur.runs;
        const prev = runs[runs.length - 1];
        if (prev !== undefined && prev.pa + prev.length === pa) runs[runs.length - 1] = { pa: prev.pa, length: prev.length + len };
        else runs.push({ pa, length: len });
      });
    }
    for (const a of this.loose.items) {
      out.push({ iova: a.start, length: a.last - a.start + 1n, perms: a.perms, runs: a.runs.map((r) => ({ ...r })) });
    }
    out.sort((a, b) => (a.iova < b.iova ? -1 : a.iova > b.iova ? 1 : 0));
    return out.slice(0, limit === Infinity ? undefined : limit);
  }

  /** Translate one IOVA (tests, inspection): PTE-level view, null when not mapped. */
  translate(iova: bigint): { pa: bigint; perms: number; level: number } | null {
    const table = this.table;
    if (table === null || iova < 0n || iova > U64_MAX) return null;
    const page = Number(iova >> 12n);
    if (page >= table.reach) return null;
    const pte = table.lookup(page);
    if (pte === 0) return null;
    const flags = pte & 4095;
    const leafPa = BigInt(pte - flags);
    const off = BigInt((page - table.hitBase) * PAGE_SIZE) + (iova & 0xfffn);
    return { pa: leafPa + off, perms: flags & 3, level: table.hitLevel };
  }
}
