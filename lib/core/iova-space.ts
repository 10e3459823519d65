/**
 * The IOVA bookkeeping of one domain, shared by every backend: what occupies which pages
 * (logical maps, identity maps, reservation tokens, reserved regions), and the logical-address
 * allocator (explicit addresses, or the Buddy policy: power-of-two sizes aligned to their size,
 * lowest address first, within [min, max], the address width and the usable ranges).
 *
 * Everything is in 4 KiB page numbers (JS numbers: 2^64 bytes = 2^52 pages, exact in a double).
 */
import type { IovaRange, PhysicalRun } from '../backend/contract.js';
import { OrderedIndex } from './ordered-index.js';

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
  declare readonly kind: ClaimKind;
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

export class IovaSpace {
  private readonly claims = new OrderedIndex<Claim>();
  /** Lowest page that may be free, for the allocator's low-first scan. */
  private lowHint = 0;

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
    if (c.start < this.lowHint) this.lowHint = c.start;
  }

  all(): IterableIterator<Claim> {
    return this.claims.values();
  }

  /**
   * Lowest start page p with p ≡ 0 (mod align), lo ≤ p, p + pages - 1 ≤ hi, [p, p+pages) free
   * and inside one usable range; or -1.
   */
  allocate(pages: number, align: number, lo: number, hi: number, usable: readonly PageRange[]): number {
    // Invariant: every page below lowHint is claimed, so the scan may start there.
    let p = Math.max(lo, this.lowHint);
    p = Math.ceil(p / align) * align;
    for (;;) {
      if (p + pages - 1 > hi) return -1;
      // inside a usable range?
      const r = usable.find((u) => u.last >= p);
      if (!r) return -1;
      if (r.start > p) {
        p = Math.ceil(r.start / align) * align;
        continue;
      }
      if (p + pages - 1 > r.last) {
        const next = usable[usable.indexOf(r) + 1];
        if (!next) return -1;
        p = Math.ceil(next.start / align) * align;
        continue;
      }
      const c = this.conflict(p, pages);
      if (!c) {
        if (p === this.lowHint) this.lowHint = p + pages;
        return p;
      }
      p = Math.ceil(c.end / align) * align;
    }
  }
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
