/**
 * A VT-d-like multi-level I/O page table, also used as the domain's area index. (Slightly over
 * 500 lines for that one structure: its walks, its range searches and the emptied-table chain.)
 *
 * Shape: tables of 512 entries; level 1 entries map 4 KiB, level 2 entries 2 MiB, level 3 entries
 * 1 GiB, level 4 entries 512 GiB (3 levels for a 39-bit aperture, 4 for 48, 5 for 57). A slot of
 * a level-L table holds either a leaf (level 1 always; level 2/3 when the IOVA, the PA and the
 * remaining length are aligned to the leaf size and that page size is supported) or a pointer to
 * a level L-1 table, never both. Tables below the root are allocated on first use and freed as
 * soon as their last entry goes (the counts `tables`, `leaves` and everything a walk sees say so
 * at once; see "Emptied tables" for when their storage goes).
 *
 * Storage: a table is a number, its 512 slots live in a shared `TableSlab` (table-slab.ts explains
 * why: one cache miss per level instead of three). Slot i of table t is two doubles at
 * t * 1024 + 2i, side by side so that reading or writing a slot touches one cache line:
 *   - [2i]: the leaf entry in VT-d second-level format as an exact integer: PA | PS<<7 | W<<1 | R
 *     (0 = not present; PAs stay below 2^52 so the value is exact in a double);
 *   - [2i + 1]: for a leaf, its area mark, which makes the table double as the area index without
 *     any per-area object: the first leaf of an area stores +pages (the area's length in 4 KiB
 *     pages); every later leaf stores -(distance in pages from the area's first page to the leaf's
 *     first page). From any leaf, the area's start is one subtraction away and its length one more
 *     walk. For a non-leaf slot: the number of the child table (the root is table 0 and nobody's
 *     child, so 0 means empty). The pointer and the entry share the slot's cache line: a walk
 *     reads one line per level and never a separate child array.
 *
 * Costs: lookup / insert / clear of one leaf: O(levels). Range emptiness test and first/last
 * present leaf in a range: O(levels × 512) worst case, independent of the number of live areas
 * (empty subtrees are skipped, fully covered non-empty subtrees answer at once). Clearing a range:
 * O(leaves cleared + tables visited).
 *
 * Emptied tables. A one-page unmap that empties its leaf table usually empties the tables above
 * it too, and the next one-page map (a map/unmap loop, an IOVA reused) builds the same chain
 * again. So the chain of tables removeAreaAt empties is only recorded (a "pending" chain: the
 * tables stay linked, empty but for the link to the next one down, their counts untouched), and
 * freed by the next operation that is not a one-page map walking down that same chain: such a
 * map takes the tables back as they are (no freeing, allocating, unlinking or relinking), any
 * other operation, and every reader of the counts (`tables`, `empty`, inspection, `verify`),
 * first frees them (`#settle`: exactly the frees removeAreaAt used to make). A pending table
 * holds no leaf, so a walk through one finds nothing, as through an empty slot; only the last
 * chain emptied is pending (removeAreaAt settles an older one before it records a new one).
 *
 * Page indexes are `number`s (IOVA >> 12, < 2^52: exact).
 */
import { TableSlab } from './table-slab.js';
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
/** Doubles per table in the slab: 512 slots of (PTE, mark or child). */
const TABLE_DOUBLES = 2 * ENTRIES;
/** The root's table number (allocated first, never freed). */
const ROOT = 0;
/** Tables a new page table's slab holds before it first doubles (a 4 KiB map in an empty 5-level table needs 5). */
const INITIAL_TABLES = 8;

/** What `adjustMapped` callers need from physical memory (kept minimal to avoid a cycle). */
export interface MappedCounter {
  adjustMapped(pa: number, len: number, delta: number): void;
}

export class PageTable {
  readonly levels: number;
  /** Pages the table can address: 512^levels. */
  readonly reach: number;
  readonly allow2M: boolean;
  readonly allow1G: boolean;
  /** #tables[L] = live tables at level L (root counted at `levels`); read through `tables`. */
  readonly #tables: number[];
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

  /** Every table's slots and counts; the root is table ROOT. */
  readonly #slab = new TableSlab(TABLE_DOUBLES, INITIAL_TABLES);
  // removeAreaAt's walk, for freeing the tables it empties: at each level, the table and the
  // slab offset of the slot taken (a double: offsets may exceed int32).
  readonly #pathT: Int32Array;
  readonly #pathSlot: Float64Array;
  // The pending chain (see the header), bottom first, top last: each table, its level, its
  // parent and the slab offset of the parent's slot that links it.
  readonly #pendT: Int32Array;
  readonly #pendLevel: Int32Array;
  readonly #pendParent: Int32Array;
  readonly #pendSlot: Float64Array;
  #pending = 0;

  constructor(levels: number, allow2M: boolean, allow1G: boolean) {
    if (!Number.isInteger(levels) || levels < 2 || levels > 6) throw new RangeError(`bad page-table depth ${levels}`);
    this.levels = levels;
    this.reach = SPAN[levels] * ENTRIES;
    this.allow2M = allow2M;
    this.allow1G = allow1G && allow2M && levels >= 3;
    this.#tables = new Array<number>(levels + 1).fill(0);
    this.#tables[levels] = 1;
    this.leaves = new Array<number>(levels + 1).fill(0);
    this.#pathT = new Int32Array(levels + 1);
    this.#pathSlot = new Float64Array(levels + 1);
    this.#pendT = new Int32Array(levels + 1);
    this.#pendLevel = new Int32Array(levels + 1);
    this.#pendParent = new Int32Array(levels + 1);
    this.#pendSlot = new Float64Array(levels + 1);
    this.#slab.allocate(); // ROOT
  }

  /**
   * A new, empty level-`level` table linked from the slot at slab offset `slot` of table `t`.
   * May grow the slab: callers reload `slots`.
   */
  #attach(t: number, slot: number, level: number): number {
    const slab = this.#slab;
    const c = slab.allocate();
    slab.slots[slot + 1] = c;
    slab.counts[t]++;
    this.#tables[level]++;
    return c;
  }

  /** Free table `c` of `level`, emptied, linked from the slot at `slot` of table `t`. */
  #detach(t: number, slot: number, c: number, level: number): void {
    const slab = this.#slab;
    slab.slots[slot + 1] = 0;
    slab.counts[t]--;
    this.#tables[level]--;
    slab.release(c);
  }

  /** Live tables per level (index = level; the root counted at `levels`). */
  get tables(): readonly number[] {
    if (this.#pending !== 0) this.#settle();
    return this.#tables;
  }

  get empty(): boolean {
    if (this.#pending !== 0) this.#settle();
    return this.#slab.counts[ROOT] === 0;
  }

  /**
   * The leaf covering `page`: returns its PTE (0 when not present) and sets hitPte, hitMark,
   * hitLevel, hitBase.
   */
  lookup(page: number): number {
    const slots = this.#slab.slots;
    let t = ROOT;
    for (let level = this.levels; level >= 1; level--) {
      const span = SPAN[level];
      const q = Math.floor(page / span);
      const s = t * TABLE_DOUBLES + 2 * (q & 511);
      const pte = slots[s];
      if (pte !== 0) {
        this.hitPte = pte;
        this.hitMark = slots[s + 1];
        this.hitLevel = level;
        this.hitBase = q * span;
        return pte;
      }
      t = slots[s + 1];
      if (t === 0) break;
    }
    this.hitPte = 0;
    this.hitMark = 0;
    this.hitLevel = 0;
    this.hitBase = -1;
    return 0;
  }

  /** True when any leaf intersects pages [first, last] (inclusive; clamped to the reach). */
  anyInRange(first: number, last: number): boolean {
    if (this.#pending !== 0) this.#settle();
    if (last >= this.reach) last = this.reach - 1;
    if (first > last || this.empty) return false;
    if (first === last) return this.lookup(first) !== 0;
    return this.#any(ROOT, this.levels, 0, first, last);
  }

  #any(t: number, level: number, base: number, first: number, last: number): boolean {
    const slots = this.#slab.slots;
    const span = SPAN[level];
    const i0 = first > base ? Math.floor((first - base) / span) : 0;
    const i1 = Math.min(ENTRIES - 1, Math.floor((last - base) / span));
    for (let i = i0; i <= i1; i++) {
      const s = t * TABLE_DOUBLES + 2 * i;
      if (slots[s] !== 0) return true;
      const c = slots[s + 1];
      if (c !== 0) {
        const b = base + i * span;
        if (first <= b && b + span - 1 <= last) return true; // whole non-empty subtree inside
        if (this.#any(c, level - 1, b, first, last)) return true;
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
    if (this.#pending !== 0) this.#settle();
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
    let slots = this.#slab.slots;
    let t = ROOT;
    for (let L = this.levels; L > level; L--) {
      const s = t * TABLE_DOUBLES + 2 * (Math.floor(page / SPAN[L]) & 511);
      const c = slots[s + 1];
      if (c !== 0) t = c;
      else {
        t = this.#attach(t, s, L - 1);
        slots = this.#slab.slots;
      }
    }
    const s = t * TABLE_DOUBLES + 2 * (Math.floor(page / SPAN[level]) & 511);
    slots[s] = pte;
    slots[s + 1] = mark;
    this.#slab.counts[t]++;
    this.leaves[level]++;
  }

  /**
   * Fast path of a one-page map: install a 4 KiB leaf at `page` unless something is mapped there
   * (returns false, nothing changed). One walk: a table created on the way is empty, so a conflict
   * can only show up before the first creation. `page` is an int32 (< 2^31) within the reach.
   */
  tryInsert4K(page: number, pte: number): boolean {
    let slots = this.#slab.slots;
    let t = ROOT;
    for (let L = this.levels; L > 1; L--) {
      const s = t * TABLE_DOUBLES + 2 * ((page >>> SHIFT[L]) & 511);
      if (slots[s] !== 0) return false; // a huge leaf covers the page (never below a pending table: nothing changed yet)
      const c = slots[s + 1];
      if (c !== 0) {
        // the pending chain's top table, walked into: it is taken back as it is (see the header)
        if (this.#pending !== 0 && c === this.#pendT[this.#pending - 1]) this.#pending--;
        t = c;
      } else {
        t = this.#attach(t, s, L - 1);
        slots = this.#slab.slots;
      }
    }
    const s = t * TABLE_DOUBLES + 2 * (page & 511);
    if (slots[s] !== 0) return false;
    slots[s] = pte;
    slots[s + 1] = 1;
    this.#slab.counts[t]++;
    this.leaves[1]++;
    return true;
  }

  /** Free the pending chain, bottom first: what removeAreaAt did not do when the tables emptied. */
  #settle(): void {
    const n = this.#pending;
    this.#pending = 0;
    for (let i = 0; i < n; i++) this.#detach(this.#pendParent[i], this.#pendSlot[i], this.#pendT[i], this.#pendLevel[i]);
    if (this.#slab.counts[ROOT] === 0) this.#slab.trim();
  }

  /**
   * Fast path of an unmap that names exactly one area: if an area of `pages` pages starts at
   * `page`, remove it (freeing tables that become empty) and return `pages`; otherwise change
   * nothing and return -1. One walk for one-leaf areas. `page` is an int32 (< 2^31) within the
   * reach.
   */
  removeAreaAt(page: number, pages: number, mem: MappedCounter | null): number {
    const slab = this.#slab;
    const slots = slab.slots;
    let t = ROOT;
    let level = this.levels;
    for (;;) {
      const s = t * TABLE_DOUBLES + 2 * ((page >>> SHIFT[level]) & 511);
      const pte = slots[s];
      if (pte !== 0) {
        // a leaf (levels 1-3 only: span - 1 < 2^18): the area must start at its first page
        const span = SPAN[level];
        if ((page & (span - 1)) !== 0 || slots[s + 1] !== pages) return -1;
        if (span !== pages) {
          // a multi-leaf area: the range walk
          this.clearRange(page, page + pages - 1, mem);
          return pages;
        }
        if (mem !== null) mem.adjustMapped(pte - (pte & 4095), span * PAGE_SIZE, -1);
        this.clearedAreas = 1;
        slots[s] = 0;
        slots[s + 1] = 0;
        this.leaves[level]--;
        if (--slab.counts[t] === 0) this.#dropEmpty(t, level);
        return pages;
      }
      const c = slots[s + 1];
      if (c === 0) return -1;
      this.#pathT[level] = t;
      this.#pathSlot[level] = s;
      t = c;
      level--;
    }
  }

  /**
   * `t`, a level-`level` table removeAreaAt's walk just emptied, and each ancestor on that walk's
   * path left holding only the link to the one below: recorded as the pending chain (see the
   * header), after an older one is freed. (A method of its own: it keeps removeAreaAt small enough
   * for V8 to inline into the backend's unmap.)
   */
  #dropEmpty(t: number, level: number): void {
    if (this.#pending !== 0) this.#settle();
    const counts = this.#slab.counts;
    let n = 0;
    while (level < this.levels && counts[t] === (n === 0 ? 0 : 1)) {
      const parent = this.#pathT[level + 1];
      this.#pendT[n] = t;
      this.#pendLevel[n] = level;
      this.#pendParent[n] = parent;
      this.#pendSlot[n] = this.#pathSlot[level + 1];
      n++;
      t = parent;
      level++;
    }
    this.#pending = n;
  }

  /**
   * Remove every leaf intersecting pages [first, last] (callers pass unions of whole areas, so no
   * leaf straddles the bounds). Returns the pages removed.
   */
  clearRange(first: number, last: number, mem: MappedCounter | null): number {
    if (this.#pending !== 0) this.#settle();
    this.clearedAreas = 0;
    if (last >= this.reach) last = this.reach - 1;
    if (first > last || this.empty) return 0;
    const removed = this.#clear(ROOT, this.levels, 0, first, last, mem);
    if (this.empty) this.#slab.trim();
    return removed;
  }

  #clear(t: number, level: number, base: number, first: number, last: number, mem: MappedCounter | null): number {
    const slots = this.#slab.slots;
    const counts = this.#slab.counts;
    const span = SPAN[level];
    const i0 = first > base ? Math.floor((first - base) / span) : 0;
    const i1 = Math.min(ENTRIES - 1, Math.floor((last - base) / span));
    let removed = 0;
    for (let i = i0; i <= i1 && counts[t] > 0; i++) {
      const s = t * TABLE_DOUBLES + 2 * i;
      const pte = slots[s];
      if (pte !== 0) {
        if (mem !== null) mem.adjustMapped(pte - (pte & 4095), span * PAGE_SIZE, -1);
        if (slots[s + 1] > 0) this.clearedAreas++;
        slots[s] = 0;
        slots[s + 1] = 0;
        counts[t]--;
        this.leaves[level]--;
        removed += span;
      } else {
        const c = slots[s + 1];
        if (c !== 0) {
          removed += this.#clear(c, level - 1, base + i * span, first, last, mem);
          if (counts[c] === 0) this.#detach(t, s, c, level - 1);
        }
      }
    }
    return removed;
  }

  /** First leaf intersecting [first, last]: returns its base page (or -1) and sets hit*. */
  firstPresent(first: number, last: number): number {
    return this.#present(first, last, false);
  }

  /** Last leaf intersecting [first, last]: returns its base page (or -1) and sets hit*. */
  lastPresent(first: number, last: number): number {
    return this.#present(first, last, true);
  }

  #present(first: number, last: number, fromEnd: boolean): number {
    if (last >= this.reach) last = this.reach - 1;
    if (first > last || this.empty) return -1;
    return this.#edge(ROOT, this.levels, 0, first, last, fromEnd);
  }

  /** The first (or, `fromEnd`, the last) leaf of table `t` intersecting [first, last]. */
  #edge(t: number, level: number, base: number, first: number, last: number, fromEnd: boolean): number {
    const slots = this.#slab.slots;
    const span = SPAN[level];
    const i0 = first > base ? Math.floor((first - base) / span) : 0;
    const i1 = Math.min(ENTRIES - 1, Math.floor((last - base) / span));
    const step = fromEnd ? -1 : 1;
    for (let i = fromEnd ? i1 : i0; i >= i0 && i <= i1; i += step) {
      const s = t * TABLE_DOUBLES + 2 * i;
      if (slots[s] !== 0) return this.#hit(s, level, base + i * span);
      const c = slots[s + 1];
      if (c !== 0) {
        const r = this.#edge(c, level - 1, base + i * span, first, last, fromEnd);
        if (r >= 0) return r;
      }
    }
    return -1;
  }

  /** Record the leaf at slab offset `s` (of `level`, first page `base`) as the hit. */
  #hit(s: number, level: number, base: number): number {
    const slots = this.#slab.slots;
    this.hitPte = slots[s];
    this.hitMark = slots[s + 1];
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
    const walk = (t: number, level: number, base: number): void => {
      const span = SPAN[level];
      for (let i = 0; i < ENTRIES; i++) {
        const slots = this.#slab.slots;
        const s = t * TABLE_DOUBLES + 2 * i;
        if (slots[s] !== 0) visit(base + i * span, level, slots[s], slots[s + 1]);
        else if (slots[s + 1] !== 0) walk(slots[s + 1], level - 1, base + i * span);
      }
    };
    walk(ROOT, this.levels, 0);
  }

  /**
   * Structural self-check (tests): counts match, no empty non-root table survives, every child
   * link names a live table reached once, and the slab's free tables are clean.
   */
  verify(): string | null {
    if (this.#pending !== 0) this.#settle();
    const slab = this.#slab;
    const slots = slab.slots;
    const tables = new Array<number>(this.levels + 1).fill(0);
    const leaves = new Array<number>(this.levels + 1).fill(0);
    const reached = new Set<number>([ROOT]);
    let problem: string | null = slab.verify();
    const walk = (t: number, level: number): void => {
      tables[level]++;
      let n = 0;
      for (let i = 0; i < ENTRIES; i++) {
        const s = t * TABLE_DOUBLES + 2 * i;
        if (slots[s] !== 0) {
          n++;
          leaves[level]++;
          if (level > 3 || (level === 3 && !this.allow1G) || (level === 2 && !this.allow2M)) {
            problem ??= `leaf at unsupported level ${level}`;
          }
        } else if (slots[s + 1] !== 0) {
          const c = slots[s + 1];
          if (level === 1) problem ??= `stale mark at level 1`;
          else if (!slab.isLive(c) || c === ROOT) problem ??= `slot links table ${c}, which is not a live table, at level ${level}`;
          else if (reached.has(c)) problem ??= `table ${c} linked twice`;
          else {
            n++;
            reached.add(c);
            walk(c, level - 1);
          }
        }
      }
      if (n !== slab.counts[t]) problem ??= `count ${slab.counts[t]} != ${n} at level ${level}`;
      if (n === 0 && t !== ROOT) problem ??= `empty table kept at level ${level}`;
    };
    walk(ROOT, this.levels);
    if (reached.size !== slab.live) problem ??= `${slab.live} live tables in the slab, ${reached.size} reachable`;
    for (let l = 1; l <= this.levels; l++) {
      if (tables[l] !== this.#tables[l]) problem ??= `tables[${l}] = ${this.#tables[l]}, counted ${tables[l]}`;
      if (leaves[l] !== this.leaves[l]) problem ??= `leaves[${l}] = ${this.leaves[l]}, counted ${leaves[l]}`;
    }
    return problem;
  }
}
