/**
 * An ordered map from integer keys (page numbers, < 2^53) to values, built as a list of sorted
 * blocks (a two-level B+tree). Lookups are O(log n); insert/delete are O(log n + B) with B the
 * block size. Exact `get` is O(1) through a hash map. Used for the IOVA claims of a domain.
 */
const BLOCK = 256;

export class OrderedIndex<V> {
  private readonly exact = new Map<number, V>();
  /** Sorted blocks of keys; blocks[i] is non-empty; first keys ascending across blocks. */
  private blocks: number[][] = [];

  get size(): number {
    return this.exact.size;
  }

  get(key: number): V | undefined {
    return this.exact.get(key);
  }

  has(key: number): boolean {
    return this.exact.has(key);
  }

  /** Index of the block that would hold `key` (last block whose first key ≤ key), or -1. */
  private blockFor(key: number): number {
    const b = this.blocks;
    let lo = 0;
    let hi = b.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (b[mid][0] <= key) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }

  /** Position of the last key ≤ key in a sorted block, or -1. */
  private static floorPos(block: number[], key: number): number {
    let lo = 0;
    let hi = block.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (block[mid] <= key) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }

  set(key: number, value: V): void {
    if (this.exact.has(key)) {
      this.exact.set(key, value);
      return;
    }
    this.exact.set(key, value);
    const blocks = this.blocks;
    if (blocks.length === 0) {
      blocks.push([key]);
      return;
    }
    let bi = this.blockFor(key);
    if (bi < 0) bi = 0;
    const block = blocks[bi];
    const pos = OrderedIndex.floorPos(block, key) + 1;
    if (pos === block.length) block.push(key);
    else block.splice(pos, 0, key);
    if (block.length > BLOCK * 2) {
      blocks.splice(bi + 1, 0, block.splice(BLOCK));
    }
  }

  delete(key: number): boolean {
    if (!this.exact.delete(key)) return false;
    const bi = this.blockFor(key);
    const block = this.blocks[bi];
    const pos = OrderedIndex.floorPos(block, key);
    if (pos === block.length - 1) block.pop();
    else block.splice(pos, 1);
    if (block.length === 0) this.blocks.splice(bi, 1);
    else if (block.length < BLOCK / 4 && bi + 1 < this.blocks.length && this.blocks[bi + 1].length < BLOCK) {
      // merge small neighbours to keep the block count ~ n / BLOCK
      this.blocks[bi] = block.concat(this.blocks[bi + 1]);
      this.blocks.splice(bi + 1, 1);
    }
    return true;
  }

  /** Greatest key ≤ `key`, or undefined. */
  floorKey(key: number): number | undefined {
    const bi = this.blockFor(key);
    if (bi < 0) return undefined;
    const block = this.blocks[bi];
    return block[OrderedIndex.floorPos(block, key)];
  }

  /** Smallest key ≥ `key`, or undefined. */
  ceilKey(key: number): number | undefined {
    const blocks = this.blocks;
    if (blocks.length === 0) return undefined;
    let bi = this.blockFor(key);
    if (bi < 0) return blocks[0][0];
    const block = blocks[bi];
    const pos = OrderedIndex.floorPos(block, key);
    if (block[pos] === key) return key;
    if (pos + 1 < block.length) return block[pos + 1];
    bi += 1;
    return bi < blocks.length ? blocks[bi][0] : undefined;
  }

  floor(key: number): V | undefined {
    const k = this.floorKey(key);
    return k === undefined ? undefined : this.exact.get(k);
  }

  ceil(key: number): V | undefined {
    const k = this.ceilKey(key);
    return k === undefined ? undefined : this.exact.get(k);
  }

  /** Values with keys in [from, to], ascending. */
  *range(from: number, to: number): IterableIterator<V> {
    let k = this.ceilKey(from);
    while (k !== undefined && k <= to) {
      yield this.exact.get(k) as V;
      k = this.ceilKey(k + 1);
    }
  }

  *values(): IterableIterator<V> {
    for (const block of this.blocks) for (const k of block) yield this.exact.get(k) as V;
  }
}
