/**
 * The IOVA bookkeeping of one domain, shared by every backend: what occupies which pages
 * (logical maps, identity maps, reservation tokens, reserved regions), and the logical-address
 * allocator (explicit addresses, or the Buddy policy: power-of-two sizes aligned to their size,
 * lowest address first, within [min, max], the address width and the usable ranges).
 *
 * Everything is in 4 KiB page numbers (JS numbers: 2^64 bytes = 2^52 pages, exact in a double).
 */
import type { IovaRange, PhysicalRun } from '../backend/contract.js';
import { OrderedIndex } from '../util/ordered-index.js';

export const enum ClaimKind {
  Logical = 0,
  Identity = 1,
  Token = 2,
  Reserved = 3,
}

/**
 * A claim on a run of pages. Claims never overlap one another.
 *
 * The fields are `declare`d and set in the constructor: class fields (with ES2022 define
 * semantics) would first define each one as undefined in a separate initializer, which costs
 * time on every map and inlining budget in the map fast path.
 */
export class Claim {
  declare start: number;
  declare pages: number;
  declare kind: ClaimKind;
  declare perms: number;
  /** First page frame of a single physical run, or -1 (none, or see `runs`). */
  declare pfn: number;
  /** The physical runs when there is more than one. */
  declare runs: PhysicalRun[] | null;
  /** Whether the backend holds a kernel mapping for it (perms 0 maps are bookkeeping only). */
  declare backed: boolean;
  /** For tokens: the mapped segments inside, keyed by first page. */
  declare segments: OrderedIndex<Claim> | null;
  /** Set on token claims once FreeReservedLogicalAddressRange starts. */
  declare freeing: boolean;

  constructor(start: number, pages: number, kind: ClaimKind, perms: number, pfn: number, runs: PhysicalRun[] | null, backed: boolean) {
    this.reset(start, pages, kind, perms, pfn, runs, backed);
  }

  /** Every field set as the constructor sets it (IovaSpace.claim reuses released claims). */
  reset(start: number, pages: number, kind: ClaimKind, perms: number, pfn: number, runs: PhysicalRun[] | null, backed: boolean): void {
    this.start = start;
    this.pages = pages;
    this.kind = kind;
    this.perms = perms;
    this.pfn = pfn;
    this.runs = runs;
    this.backed = backed;
    this.segments = null;
    this.freeing = false;
  }

  get end(): number {
    return this.start + this.pages;
  }

  /** The physical runs backing [start, end). */
  physical(): PhysicalRun[] {
    if (this.runs) return this.runs;
    if (this.pfn < 0) return [];
    return [{ pa: BigInt(this.pfn) * 4096n, length: BigInt(this.pages) * 4096n }];
  }
}

export function runsToClaimFields(runs: readonly PhysicalRun[]): { pfn: number; runs: PhysicalRun[] | null } {
  if (runs.length === 1) return { pfn: Number(runs[0].pa >> 12n), runs: null };
  return { pfn: -1, runs: runs.slice() };
}

/**
 * What the allocator has proven about one request shape (`pages` pages aligned to `align`):
 * disjoint page intervals, sorted, flat as [from0, to0, from1, to1, ...], such that no aligned
 * start p inside any [from, to) is allocatable (the block [p, p+pages) overlaps a claim or does
 * not lie inside one usable range). The allocator's scan jumps over them; a scan that succeeds
 * records what it stepped over; removing a claim withdraws the starts whose block overlapped it.
 * Dropping an interval is always safe (it only costs a longer scan).
 */
interface Proven {
  readonly pages: number;
  readonly align: number;
  readonly iv: number[];
}

/** Request shapes remembered at once; more are forgotten (all of them: safe, rare). */
const MAX_SHAPES = 64;
/** Intervals kept per shape; the highest are dropped first (the lowest serve lowest-first). */
const MAX_INTERVALS = 32;

export class IovaSpace {
  private readonly claims = new OrderedIndex<Claim>();
  /** Proven-unallocatable intervals by request size in pages (see Proven). */
  private readonly proven = new Map<number, Proven>();
  /** The same shapes as a list (iterated on every remove: no iterator garbage). */
  private shapes: Proven[] = [];
  /** The usable ranges the proofs were made against (a change of geometry voids them). */
  private provenUsable: readonly PageRange[] | null = null;
  /** A claim `release` removed, which `claim` hands out again (no allocation per map/unmap pair). */
  #spare: Claim | null = null;

  get size(): number {
    return this.claims.size;
  }

  /** The claim overlapping [start, start+pages), if any. */
  conflict(start: number, pages: number): Claim | undefined {
    const c = this.claims.floor(start + pages - 1);
    return c !== undefined && c.end > start ? c : undefined;
  }

  /** The claim containing `page`, if any. */
  at(page: number): Claim | undefined {
    const c = this.claims.floor(page);
    return c !== undefined && c.end > page ? c : undefined;
  }

  /** Claims overlapping [start, start+pages), ascending. */
  overlapping(start: number, pages: number): Claim[] {
    const out: Claim[] = [];
    const first = this.at(start);
    if (first) out.push(first);
    for (const c of this.claims.range(start + 1, start + pages - 1)) out.push(c);
    return out;
  }

  insert(c: Claim): void {
    this.claims.set(c.start, c);
  }

  remove(c: Claim): void {
    this.claims.delete(c.start);
    if (this.shapes.length !== 0) this.#withdraw(c.start, c.end);
  }

  /**
   * `remove`, then keep the claim object for the next `claim`: only for a claim nothing else
   * refers to any more (a logical map's, removed whole by UnmapLogicalRange's fast path).
   */
  release(c: Claim): void {
    this.remove(c);
    this.#spare = c;
  }

  /** A new claim (not inserted): the one `release` kept, set afresh, or a new object. */
  claim(start: number, pages: number, kind: ClaimKind, perms: number, pfn: number, runs: PhysicalRun[] | null, backed: boolean): Claim {
    const c = this.#spare;
    if (c === null) return new Claim(start, pages, kind, perms, pfn, runs, backed);
    this.#spare = null;
    c.reset(start, pages, kind, perms, pfn, runs, backed);
    return c;
  }

  all(): IterableIterator<Claim> {
    return this.claims.values();
  }

  /**
   * Lowest start page p with p ≡ 0 (mod align), lo ≤ p, p + pages - 1 ≤ hi, [p, p+pages) free
   * and inside one usable range; or -1.
   *
   * A scan from lo's aligned start, jumping over what is proven unallocatable for this shape,
   * past each conflicting claim's end, and across unusable gaps: every start it steps over is
   * unallocatable, so the first start it stops at is the lowest. What it stepped over is
   * remembered, so a run of same-sized requests costs O(log n) each instead of a walk over every
   * claim below the answer.
   */
  allocate(pages: number, align: number, lo: number, hi: number, usable: readonly PageRange[]): number {
    if (usable !== this.provenUsable) {
      if (this.provenUsable === null || !sameRanges(usable, this.provenUsable)) this.#forgetAll();
      this.provenUsable = usable;
    }
    let shape = this.proven.get(pages);
    if (shape !== undefined && shape.align !== align) {
      this.#forget(shape);
      shape = undefined;
    }
    const iv = shape?.iv;
    const from = Math.ceil(lo / align) * align;
    let p = from;
    let k = 0; // iv cursor: p only grows, so intervals ending at or below p are behind us
    let ri = 0; // usable cursor, likewise
    for (;;) {
      if (p + pages - 1 > hi) return -1;
      if (iv !== undefined) {
        while (k < iv.length && iv[k + 1] <= p) k += 2;
        if (k < iv.length && iv[k] <= p) {
          p = Math.ceil(iv[k + 1] / align) * align;
          continue;
        }
      }
      // inside a usable range? (r: the first range ending at or after p)
      while (ri < usable.length && usable[ri].last < p) ri++;
      if (ri === usable.length) return -1;
      const r = usable[ri];
      if (r.start > p) {
        p = Math.ceil(r.start / align) * align;
        continue;
      }
      if (p + pages - 1 > r.last) {
        if (ri + 1 === usable.length) return -1;
        p = Math.ceil(usable[ri + 1].start / align) * align;
        continue;
      }
      const c = this.conflict(p, pages);
      if (!c) {
        if (p > from) this.#prove(pages, align, from, p);
        return p;
      }
      p = Math.ceil(c.end / align) * align;
    }
  }

  /** Record that no aligned start of shape (pages, align) in [from, to) is allocatable. */
  #prove(pages: number, align: number, from: number, to: number): void {
    let shape = this.proven.get(pages);
    if (shape === undefined) {
      if (this.shapes.length >= MAX_SHAPES) this.#forgetAll();
      shape = { pages, align, iv: [] };
      this.proven.set(pages, shape);
      this.shapes.push(shape);
    }
    const iv = shape.iv;
    // merge [from, to) with every interval it overlaps or touches
    let i = 0;
    while (i < iv.length && iv[i + 1] < from) i += 2;
    let j = i;
    let f = from;
    let t = to;
    while (j < iv.length && iv[j] <= t) {
      if (iv[j] < f) f = iv[j];
      if (iv[j + 1] > t) t = iv[j + 1];
      j += 2;
    }
    if (j - i === 2) {
      // the common case (a run of placements extends one interval): no splice, no garbage
      iv[i] = f;
      iv[i + 1] = t;
    } else iv.splice(i, j - i, f, t);
    if (iv.length > MAX_INTERVALS * 2) iv.length = MAX_INTERVALS * 2;
  }

  /** Claim [start, end) is gone: withdraw every start whose block overlapped it. */
  #withdraw(start: number, end: number): void {
    const shapes = this.shapes;
    for (let k = shapes.length - 1; k >= 0; k--) {
      const shape = shapes[k];
      const a = start - shape.pages + 1;
      const iv = shape.iv;
      for (let i = 0; i < iv.length; i += 2) {
        const f = iv[i];
        const t = iv[i + 1];
        if (t <= a || f >= end) continue;
        // keep [f, a) and [end, t)
        if (f < a) {
          iv[i + 1] = a;
          if (end < t) {
            iv.splice(i + 2, 0, end, t);
            i += 2;
          }
        } else if (end < t) iv[i] = end;
        else {
          iv.splice(i, 2);
          i -= 2;
        }
      }
      if (iv.length === 0) this.#forget(shape);
      else if (iv.length > MAX_INTERVALS * 2) iv.length = MAX_INTERVALS * 2;
    }
  }

  #forget(shape: Proven): void {
    this.proven.delete(shape.pages);
    const i = this.shapes.indexOf(shape);
    if (i >= 0) this.shapes.splice(i, 1);
  }

  #forgetAll(): void {
    this.proven.clear();
    this.shapes = [];
  }
}

function sameRanges(a: readonly PageRange[], b: readonly PageRange[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i].start !== b[i].start || a[i].last !== b[i].last) return false;
  return true;
}

/** A usable IOVA range in pages, inclusive. */
export interface PageRange {
  readonly start: number;
  readonly last: number;
}

/** Whole pages inside the geometry's byte ranges. */
export function pageRanges(ranges: readonly IovaRange[]): PageRange[] {
  const out: PageRange[] = [];
  for (const r of ranges) {
    const s = Number((r.start + 4095n) >> 12n);
    const l = Number(((r.last + 1n) >> 12n) - 1n);
    if (l >= s) out.push({ start: s, last: l });
  }
  return out;
}
