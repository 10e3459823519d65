/**
 * The native backends' shadow of a domain's kernel areas, ordered by IOVA: logarithmic lookups
 * and inserts (the shared OrderedIndex, keyed by page number; areas are page-aligned and never
 * overlap), so a domain with hundreds of thousands of live areas stays fast.
 */
import { OrderedIndex } from '../../util/ordered-index.js';

export interface AreaLike {
  readonly iova: bigint;
  readonly end: bigint;
  /** end >> 12 as a number (exact: < 2^52), for the page-number lookups of the map/unmap fast paths. */
  readonly endPage: number;
}

const page = (iova: bigint): number => Number(iova >> 12n);

export class AreaIndex<A extends AreaLike> implements Iterable<A> {
  #idx = new OrderedIndex<A>();

  get length(): number {
    return this.#idx.size;
  }

  /** The first area whose end is > iova, if any. */
  firstEndingAfter(iova: bigint): A | undefined {
    const k = page(iova);
    const f = this.#idx.floor(k);
    if (f !== undefined && f.end > iova) return f;
    return this.#idx.ceil(k + 1);
  }

  /** Areas intersecting [iova, end), ascending. */
  overlapping(iova: bigint, end: bigint): A[] {
    const out: A[] = [];
    for (let a = this.firstEndingAfter(iova); a !== undefined && a.iova < end; a = this.#idx.ceil(page(a.iova) + 1)) out.push(a);
    return out;
  }

  /** Whether an area intersects pages [first, end). Page numbers, no bigint arithmetic. */
  overlapsPages(first: number, end: number): boolean {
    const f = this.#idx.floor(first);
    if (f !== undefined && f.endPage > first) return true;
    const k = this.#idx.ceilKey(first + 1);
    return k !== undefined && k < end;
  }

  /** The area starting at page `first`, if any. */
  atPage(first: number): A | undefined {
    return this.#idx.get(first);
  }

  /** Insert an area known to start at page `first` (saves the key's bigint → number conversion). */
  insertAt(first: number, a: A): void {
    this.#idx.set(first, a);
  }

  /** Remove the area starting at page `first`. */
  removeAt(first: number): void {
    this.#idx.delete(first);
  }

  insert(a: A): void {
    this.#idx.set(page(a.iova), a);
  }

  remove(a: A): void {
    this.#idx.delete(page(a.iova));
  }

  clear(): void {
    this.#idx = new OrderedIndex<A>();
  }

  [Symbol.iterator](): Iterator<A> {
    return this.#idx.values();
  }
}
