/**
 * A VT-d-like multi-level I/O page table, also used as the domain's area index.
 *
 * Shape: tables of 512 entries; level 1 entries map 4 KiB, level 2 entries 2 MiB, level 3 entries
 * 1 GiB, level 4 entries 512 GiB (3 levels for a 39-bit aperture, 4 for 48, 5 for 57). A slot of
 * a level-L table holds either a leaf (level 1 always; level 2/3 when the IOVA, the PA and the
 * remaining length are aligned to the leaf size and that page size is supported) or a pointer to
 * a level L-1 table, never both. Tables below the root are allocated on first use and freed as
 * soon as their last entry goes.
 *
 * Storage per table: `pte` (Float64Array(512)) holds the leaf entry in VT-d second-level format
 * as an exact integer: PA | PS<<7 | W<<1 | R (0 = not present; PAs stay below 2^52 so the value is
 * exact in a double). `mark` (Float64Array(512)) makes the table double as the area index without
 * any per-area object: the first leaf of an area stores +pages (the area's length in 4 KiB pages);
 * every later leaf stores -(distance in pages from the area's first page to the leaf's first page).
 * From any leaf, the area's start is one subtraction away and its length one more walk.
 *
 * Costs: lookup / insert / clear of one leaf: O(levels). Range emptiness test and first/last
 * present leaf in a range: O(levels × 512) worst case, independent of the number of live areas
 * (empty subtrees are skipped, fully covered non-empty subtrees answer at once). Clearing a range:
 * O(leaves cleared + tables visited).
 *
 * Page indexes are `number`s (IOVA >> 12, < 2^52: exact).
 */
import { PAGE_SIZE } from './util.js';

export const ENTRIES = 512;
export const PTE_R = 1;
export const PTE_W = 2;
/** VT-d "page size" bit: set on 2 MiB / 1 GiB leaves. */
export const PTE_PS = 0x80;
/** Pages spanned by one entry at each level (index = level). */
export const SPAN = [0, 1, 512, 512 * 512, 512 ** 3, 512 ** 4, 512 ** 5, 512 ** 6];
// Index arithmetic note: page numbers reach 2^52, beyond int32, so `x % n` would be a float
// modulo (a libm call). Every quantity here is an integer below 2^53 and every divisor a power of
// two, so `Math.floor(x / span)` is exact and `& 511` (ToInt32 keeps the low 32 bits exactly)
// extracts the low bits: no fmod on the hot paths.
/**
 * Right shift that turns a page number below 2^31 into its entry at each level (index = level).
 * The one-page fast paths (tryInsert4K, removeAreaAt) take such int32 page numbers and index with
 * `(page >>> SHIFT[L]) & 511`: integer shifts instead of a float division per level. A level-5 or
 * level-6 entry spans ≥ 2^36 pages, so an int32 page is always in its entry 0 (shift 31).
 */
const SHIFT = [0, 0, 9, 18, 27, 31, 31, 31];
/** Emptied tables kept for reuse per level. */
const SPARE = 4;

/** What `adjustMapped` callers need from physical memory (kept minimal to avoid a cycle). */
export interface MappedCounter {
  adjustMapped(pa: number, len: number, delta: number): void;
}

export class PtTable {
  /**
   * Slot i's PTE at [2i] and its area mark at [2i + 1]: one array, so that reading or writing a
   * slot touches one cache line, not two (with a million live mappings the leaf tables are far
   * larger than the cache and each walk's last step is a miss).
   */
  readonly e = new Float64Array(2 * ENTRIES);
  child: Array<PtTable | undefined> | null = null;
  /** Non-empty slots (leaves + child tables). */
  count = 0;
}

export class PageTable {
  readonly levels: number;
  /** Pages the table can address: 512^levels. */
  readonly reach: number;
  readonly root = new PtTable();
  readonly allow2M: boolean;
  readonly allow1G: boolean;
  /** tables[L] = live tables at level L (root counted at `levels`). */
  readonly tables: number[];
  /** leaves[L] = live leaf entries at level L (1 = 4 KiB, 2 = 2 MiB, 3 = 1 GiB). */
  readonly leaves: number[];

  // Results of the last lookup / firstPresent / lastPresent (no allocation per call).
  hitPte = 0;
  hitMark = 0;
  hitLevel = 0;
  /** First page covered by the hit leaf. */
  hitBase = 0;
  /** Areas whose first leaf the last clearRange / clearLeaf removed. */
  clearedAreas = 0;

  // scratch for the iterative leaf clear
  readonly #pathT: PtTable[];
  readonly #pathI: Int32Array;
  /**
   * Emptied tables kept for reuse, per level (at most SPARE each): a map/unmap pair of one page
   * in an otherwise empty region would otherwise allocate and drop two 4 KiB arrays every time.
   */
  readonly #spare: PtTable[][];

  constructor(levels: number, allow2M: boolean, allow1G: boolean) {
    if (!Number.isInteger(levels) || levels < 2 || levels > 6) throw new RangeError(`bad page-table depth ${levels}`);
    this.levels = levels;
    this.reach = SPAN[levels] * ENTRIES;
    this.allow2M = allow2M;
    this.allow1G = allow1G && allow2M && levels >= 3;
    this.tables = new Array<number>(levels + 1).fill(0);
    this.tables[levels] = 1;
    this.leaves = new Array<number>(levels + 1).fill(0);
    this.#pathT = new Array<PtTable>(levels + 1);
    this.#pathI = new Int32Array(levels + 1);
    this.#spare = Array.from({ length: levels + 1 }, () => []);
  }

  /** A dropped (empty) table of `level`: keep a few for reuse. */
  #recycle(t: PtTable, level: number): void {
    const s = this.#spare[level];
    if (s.length < SPARE) s.push(t);
  }

  /** A new, empty level-`level` table in slot `i` of `t` (a dropped one when one is kept). */
  #attach(t: PtTable, i: number, level: number): PtTable {
    let child = t.child;
    if (child === null) {
      child = new Array<PtTable | undefined>(ENTRIES).fill(undefined);
      t.child = child;
    }
    const c = this.#spare[level].pop() ?? new PtTable();
    child[i] = c;
    t.count++;
    this.tables[level]++;
    return c;
  }

  get empty(): boolean {
    return this.root.count === 0;
  }

  /**
   * The leaf covering `page`: returns its PTE (0 when not present) and sets hitPte, hitMark,
   * hitLevel, hitBase.
   */
  lookup(page: number): number {
    let t: PtTable | undefined = this.root;
    for (let level = this.levels; level >= 1; level--) {
      const span = SPAN[level];
      const q = Math.floor(page / span);
      const i = q & 511;
      const pte = t.e[2 * i];
      if (pte !== 0) {
        this.hitPte = pte;
        this.hitMark = t.e[2 * i + 1];
        this.hitLevel = level;
        this.hitBase = q * span;
        return pte;
      }
      if (level === 1 || t.child === null) break;
      t = t.child[i];
      if (t === undefined) break;
    }
    this.hitPte = 0;
    this.hitMark = 0;
    this.hitLevel = 0;
    this.hitBase = -1;
    return 0;
  }

  /** True when any leaf intersects pages [first, last] (inclusive; clamped to the reach). */
  anyInRange(first: number, last: number): boolean {
    if (last >= this.reach) last = this.reach - 1;
    if (first > last || this.root.count === 0) return false;
    if (first === last) return this.lookup(first) !== 0;
    return this.#any(this.root, this.levels, 0, first, last);
  }

  #any(t: PtTable, level: number, base: number, first: number, last: number): boolean {
    const span = SPAN[level];
    const i0 = first > base ? Math.floor((first - base) / span) : 0;
    const i1 = Math.min(ENTRIES - 1, Math.floor((last - base) / span));
    const child = t.child;
    for (let i = i0; i <= i1; i++) {
      if (t.e[2 * i] !== 0) return true;
      if (child !== null) {
        const c = child[i];
        if (c !== undefined) {
          const s = base + i * span;
          if (first <= s && s + span - 1 <= last) return true; // whole non-empty subtree inside
          if (this.#any(c, level - 1, s, first, last)) return true;
        }
      }
    }
    return false;
  }

  /**
   * Write the leaves of one physically contiguous run: `pages` pages from IOVA page `page` to PA
   * page `pfn`, with R/W `flags`, as part of the area starting at page `areaStart` with
   * `areaPages` pages. Picks the largest leaf the alignment allows. The range must be empty.
   */
  mapRun(page: number, pfn: number, pages: number, flags: number, areaStart: number, areaPages: number): void {
    const allow2M = this.allow2M;
    const allow1G = this.allow1G;
    while (pages > 0) {
      let level = 1;
      let span = 1;
      if (allow2M && pages >= 512 && ((page | pfn) & 511) === 0) {
        if (allow1G && pages >= 262144 && ((page | pfn) & 262143) === 0) {
          level = 3;
          span = 262144;
        } else {
          level = 2;
          span = 512;
        }
      }
      const pte = pfn * PAGE_SIZE + flags + (level > 1 ? PTE_PS : 0);
      const mark = page === areaStart ? areaPages : areaStart - page;
      this.#insert(page, level, pte, mark);
      page += span;
      pfn += span;
      pages -= span;
    }
  }

  #insert(page: number, level: number, pte: number, mark: number): void {
    let t = this.root;
    for (let L = this.levels; L > level; L--) {
      const i = Math.floor(page / SPAN[L]) & 511;
      const c = t.child === null ? undefined : t.child[i];
      t = c !== undefined ? c : this.#attach(t, i, L - 1);
    }
    const i = Math.floor(page / SPAN[level]) & 511;
    t.e[2 * i] = pte;
    t.e[2 * i + 1] = mark;
    t.count++;
    this.leaves[level]++;
  }

  /**
   * Fast path of a one-page map: install a 4 KiB leaf at `page` unless something is mapped there
   * (returns false, nothing changed). One walk: a table created on the way is empty, so a conflict
   * can only show up before the first creation. `page` is an int32 (< 2^31) within the reach.
   */
  tryInsert4K(page: number, pte: number): boolean {
    let t = this.root;
    for (let L = this.levels; L > 1; L--) {
      const i = (page >>> SHIFT[L]) & 511;
      if (t.e[2 * i] !== 0) return false; // a huge leaf covers the page
      const c = t.child === null ? undefined : t.child[i];
      t = c !== undefined ? c : this.#attach(t, i, L - 1);
    }
    const i = page & 511;
    if (t.e[2 * i] !== 0) return false;
    t.e[2 * i] = pte;
    t.e[2 * i + 1] = 1;
    t.count++;
    this.leaves[1]++;
    return true;
  }

  /**
   * Fast path of an unmap that names exactly one area: if an area of `pages` pages starts at
   * `page`, remove it (freeing tables that become empty) and return `pages`; otherwise change
   * nothing and return -1. One walk for one-leaf areas. `page` is an int32 (< 2^31) within the
   * reach.
   */
  removeAreaAt(page: number, pages: number, mem: MappedCounter | null): number {
    const pathT = this.#pathT;
    const pathI = this.#pathI;
    let t: PtTable | undefined = this.root;
    let level = this.levels;
    for (;;) {
      const i = (page >>> SHIFT[level]) & 511;
      const pte = t.e[2 * i];
      if (pte !== 0) {
        // a leaf (levels 1-3 only: span - 1 < 2^18): the area must start at its first page
        const span = SPAN[level];
        if ((page & (span - 1)) !== 0 || t.e[2 * i + 1] !== pages) return -1;
        if (span !== pages) {
          // a multi-leaf area: the range walk
          this.clearRange(page, page + pages - 1, mem);
          return pages;
        }
        if (mem !== null) mem.adjustMapped(pte - (pte & 4095), span * PAGE_SIZE, -1);
        this.clearedAreas = 1;
        t.e[2 * i] = 0;
        t.e[2 * i + 1] = 0;
        t.count--;
        this.leaves[level]--;
        if (t.count === 0 && level < this.levels) this.#dropEmpty(t, level);
        return pages;
      }
      if (level === 1 || t.child === null) return -1;
      pathT[level] = t;
      pathI[level] = i;
      t = t.child[i];
      if (t === undefined) return -1;
      level--;
    }
  }

  /**
   * Free `t`, a level-`level` table removeAreaAt's walk just emptied, and each ancestor on that
   * walk's path that empties in turn. (A method of its own: it keeps removeAreaAt small enough
   * for V8 to inline into the backend's unmap.)
   */
  #dropEmpty(t: PtTable, level: number): void {
    const pathT = this.#pathT;
    const pathI = this.#pathI;
    while (t.count === 0 && level < this.levels) {
      const parent = pathT[level + 1];
      parent.child![pathI[level + 1]] = undefined;
      parent.count--;
      this.tables[level]--;
      this.#recycle(t, level);
      t = parent;
      level++;
    }
  }

  /**
   * Remove every leaf intersecting pages [first, last] (callers pass unions of whole areas, so no
   * leaf straddles the bounds). Returns the pages removed.
   */
  clearRange(first: number, last: number, mem: MappedCounter | null): number {
    this.clearedAreas = 0;
    if (last >= this.reach) last = this.reach - 1;
    if (first > last || this.root.count === 0) return 0;
    return this.#clear(this.root, this.levels, 0, first, last, mem);
  }

  #clear(t: PtTable, level: number, base: number, first: number, last: number, mem: MappedCounter | null): number {
    const span = SPAN[level];
    const i0 = first > base ? Math.floor((first - base) / span) : 0;
    const i1 = Math.min(ENTRIES - 1, Math.floor((last - base) / span));
    const child = t.child;
    let removed = 0;
    for (let i = i0; i <= i1 && t.count > 0; i++) {
      const pte = t.e[2 * i];
      if (pte !== 0) {
        if (mem !== null) mem.adjustMapped(pte - (pte & 4095), span * PAGE_SIZE, -1);
        if (t.e[2 * i + 1] > 0) this.clearedAreas++;
        t.e[2 * i] = 0;
        t.e[2 * i + 1] = 0;
        t.count--;
        this.leaves[level]--;
        removed += span;
      } else if (child !== null) {
        const c = child[i];
        if (c !== undefined) {
          removed += this.#clear(c, level - 1, base + i * span, first, last, mem);
          if (c.count === 0) {
            child[i] = undefined;
            t.count--;
            this.tables[level - 1]--;
            this.#recycle(c, level - 1);
          }
        }
      }
    }
    return removed;
  }

  /** First leaf intersecting [first, last]: returns its base page (or -1) and sets hit*. */
  firstPresent(first: number, last: number): number {
    if (last >= this.reach) last = this.reach - 1;
    if (first > last || this.root.count === 0) return -1;
    return this.#first(this.root, this.levels, 0, first, last);
  }

  #first(t: PtTable, level: number, base: number, first: number, last: number): number {
    const span = SPAN[level];
    const i0 = first > base ? Math.floor((first - base) / span) : 0;
    const i1 = Math.min(ENTRIES - 1, Math.floor((last - base) / span));
    const child = t.child;
    for (let i = i0; i <= i1; i++) {
      const pte = t.e[2 * i];
      if (pte !== 0) return this.#hit(t, i, level, base + i * span);
      if (child !== null) {
        const c = child[i];
        if (c !== undefined) {
          const r = this.#first(c, level - 1, base + i * span, first, last);
          if (r >= 0) return r;
        }
      }
    }
    return -1;
  }

  /** Last leaf intersecting [first, last]: returns its base page (or -1) and sets hit*. */
  lastPresent(first: number, last: number): number {
    if (last >= this.reach) last = this.reach - 1;
    if (first > last || this.root.count === 0) return -1;
    return this.#last(this.root, this.levels, 0, first, last);
  }

  #last(t: PtTable, level: number, base: number, first: number, last: number): number {
    const span = SPAN[level];
    const i0 = first > base ? Math.floor((first - base) / span) : 0;
    const i1 = Math.min(ENTRIES - 1, Math.floor((last - base) / span));
    const child = t.child;
    for (let i = i1; i >= i0; i--) {
      const pte = t.e[2 * i];
      if (pte !== 0) return this.#hit(t, i, level, base + i * span);
      if (child !== null) {
        const c = child[i];
        if (c !== undefined) {
          const r = this.#last(c, level - 1, base + i * span, first, last);
          if (r >= 0) return r;
        }
      }
    }
    return -1;
  }

  #hit(t: PtTable, i: number, level: number, base: number): number {
    this.hitPte = t.e[2 * i];
    this.hitMark = t.e[2 * i + 1];
    this.hitLevel = level;
    this.hitBase = base;
    return base;
  }

  /** Start page of the area owning the leaf last hit. */
  hitAreaStart(): number {
    return this.hitMark > 0 ? this.hitBase : this.hitBase + this.hitMark;
  }

  /** Pages of the area starting at `start` (0 when no area starts there). */
  areaPagesAt(start: number): number {
    if (this.lookup(start) === 0 || this.hitBase !== start || this.hitMark <= 0) return 0;
    return this.hitMark;
  }

  /** Visit every leaf in IOVA order (inspection and reference checks; not a hot path). */
  forEachLeaf(visit: (page: number, level: number, pte: number, mark: number) => void): void {
    const walk = (t: PtTable, level: number, base: number): void => {
      const span = SPAN[level];
      for (let i = 0; i < ENTRIES; i++) {
        if (t.e[2 * i] !== 0) visit(base + i * span, level, t.e[2 * i], t.e[2 * i + 1]);
        else if (t.child !== null) {
          const c = t.child[i];
          if (c !== undefined) walk(c, level - 1, base + i * span);
        }
      }
    };
    walk(this.root, this.levels, 0);
  }

  /** Structural self-check (tests): counts match, no empty non-root table survives. */
  verify(): string | null {
    const tables = new Array<number>(this.levels + 1).fill(0);
    const leaves = new Array<number>(this.levels + 1).fill(0);
    let problem: string | null = null;
    const walk = (t: PtTable, level: number, isRoot: boolean): void => {
      tables[level]++;
      let n = 0;
      for (let i = 0; i < ENTRIES; i++) {
        const c = t.child?.[i];
        if (t.e[2 * i] !== 0) {
          n++;
          leaves[level]++;
          if (c !== undefined) problem ??= `slot holds both a leaf and a table at level ${level}`;
          if (level > 3 || (level === 3 && !this.allow1G) || (level === 2 && !this.allow2M)) {
            problem ??= `leaf at unsupported level ${level}`;
          }
        } else if (c !== undefined) {
          n++;
          walk(c, level - 1, false);
        } else if (t.e[2 * i + 1] !== 0) problem ??= `stale mark at level ${level}`;
      }
      if (n !== t.count) problem ??= `count ${t.count} != ${n} at level ${level}`;
      if (n === 0 && !isRoot) problem ??= `empty table kept at level ${level}`;
    };
    walk(this.root, this.levels, true);
    for (let l = 1; l <= this.levels; l++) {
      if (tables[l] !== this.tables[l]) problem ??= `tables[${l}] = ${this.tables[l]}, counted ${tables[l]}`;
      if (leaves[l] !== this.leaves[l]) problem ??= `leaves[${l}] = ${this.leaves[l]}, counted ${leaves[l]}`;
    }
    return problem;
  }
}
