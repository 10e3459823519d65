/**
 * An ordered map from integer keys (page numbers, < 2^53) to values, built as a list of sorted
 * blocks (a two-level B+tree): parallel blocks of keys and values, and a flat array of each
 * block's first key. Lookups (exact, floor, ceil) are O(log n); insert/delete are O(log n + B)
 * with B the block size. Used for the IOVA claims of a domain and the segments of a token.
 *
 * No hash map beside the blocks: an entry costs two array slots, and the hot operations of a
 * map/unmap pair (floor, insert, delete) do no hashing and, in steady state, no allocation. The
 * block search runs over one packed array of first keys (not through each block), and the block
 * found last is tried first: a map checks for a conflict and then inserts at the same place, an
 * unmap looks a claim up and then deletes it.
 */
const BLOCK = 64;

export class OrderedIndex<V> {
  #size = 0;
  /** Sorted blocks of keys; keys[i] is non-empty; first keys ascending across blocks. */
  private keys: number[][] = [];
  /** vals[i][j] is the value of keys[i][j]. */
  private vals: V[][] = [];
  /** firsts[i] === keys[i][0]. */
  private firsts: number[] = [];
  /** The block the last search found (a hint; any value is safe). */
  #hint = 0;
  /** The last emptied block pair, reused when the index fills again (no churn at size 0↔1). */
  #spareK: number[] | null = null;
  #spareV: V[] | null = null;

  get size(): number {
    return this.#size;
  }

  get(key: number): V | undefined {
    const bi = this.blockFor(key);
    if (bi < 0) return undefined;
    const block = this.keys[bi];
    const pos = OrderedIndex.floorPos(block, key);
    return block[pos] === key ? this.vals[bi][pos] : undefined;
  }

  has(key: number): boolean {
    const bi = this.blockFor(key);
    if (bi < 0) return false;
    const block = this.keys[bi];
    return block[OrderedIndex.floorPos(block, key)] === key;
  }

  /** Index of the block that would hold `key` (last block whose first key ≤ key), or -1. */
  private blockFor(key: number): number {
    const f = this.firsts;
    const n = f.length;
    const h = this.#hint;
    if (h < n && f[h] <= key && (h + 1 === n || key < f[h + 1])) return h;
    if (n === 0 || f[0] > key) return -1;
    let lo = 0;
    let hi = n - 1;
    if (f[hi] <= key) {
      this.#hint = hi;
      return hi;
    }
    // f[lo] ≤ key < f[hi]
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (f[mid] <= key) lo = mid;
      else hi = mid;
    }
    this.#hint = lo;
    return lo;
  }

  /** Position of the last key ≤ key in a sorted block, or -1. */
  private static floorPos(block: number[], key: number): number {
    let lo = 0;
    let hi = block.length - 1;
    if (block[hi] <= key) return hi;
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
    const keys = this.keys;
    if (keys.length === 0) {
      const k = this.#spareK ?? [];
      const v = this.#spareV ?? [];
      this.#spareK = null;
      this.#spareV = null;
      k.push(key);
      v.push(value);
      keys.push(k);
      this.vals.push(v);
      this.firsts.push(key);
      this.#hint = 0;
      this.#size = 1;
      return;
    }
    let bi = this.blockFor(key);
    if (bi < 0) bi = 0;
    const kb = keys[bi];
    const vb = this.vals[bi];
    const at = OrderedIndex.floorPos(kb, key);
    if (at >= 0 && kb[at] === key) {
      vb[at] = value;
      return;
    }
    const pos = at + 1;
    const n = kb.length;
    if (pos === n) {
      kb.push(key);
      vb.push(value);
    } else {
      // shift the tail by one (cheaper than splice for short blocks)
      kb.push(kb[n - 1]);
      vb.push(vb[n - 1]);
      for (let j = n - 1; j > pos; j--) {
        kb[j] = kb[j - 1];
        vb[j] = vb[j - 1];
      }
      kb[pos] = key;
      vb[pos] = value;
      if (pos === 0) this.firsts[bi] = key;
    }
    this.#size++;
    if (kb.length > BLOCK * 2) {
      const tailK = kb.splice(BLOCK);
      keys.splice(bi + 1, 0, tailK);
      this.vals.splice(bi + 1, 0, vb.splice(BLOCK));
      this.firsts.splice(bi + 1, 0, tailK[0]);
    }
  }

  delete(key: number): boolean {
    const bi = this.blockFor(key);
    if (bi < 0) return false;
    const kb = this.keys[bi];
    const pos = OrderedIndex.floorPos(kb, key);
    if (kb[pos] !== key) return false;
    const vb = this.vals[bi];
    const n = kb.length;
    for (let j = pos; j < n - 1; j++) {
      kb[j] = kb[j + 1];
      vb[j] = vb[j + 1];
    }
    kb.pop();
    vb.pop();
    this.#size--;
    if (n === 1) {
      if (bi === this.keys.length - 1) {
        this.keys.pop();
        this.vals.pop();
        this.firsts.pop();
      } else {
        this.keys.splice(bi, 1);
        this.vals.splice(bi, 1);
        this.firsts.splice(bi, 1);
      }
      this.#spareK = kb;
      this.#spareV = vb;
      return true;
    }
    if (pos === 0) this.firsts[bi] = kb[0];
    if (n - 1 < BLOCK / 4 && bi + 1 < this.keys.length && this.keys[bi + 1].length < BLOCK) {
      // merge small neighbours to keep the block count ~ n / BLOCK
      this.keys[bi] = kb.concat(this.keys[bi + 1]);
      this.vals[bi] = vb.concat(this.vals[bi + 1]);
      this.keys.splice(bi + 1, 1);
      this.vals.splice(bi + 1, 1);
      this.firsts.splice(bi + 1, 1);
    }
    return true;
  }

  /** Greatest key ≤ `key`, or undefined. */
  floorKey(key: number): number | undefined {
    const bi = this.blockFor(key);
    if (bi < 0) return undefined;
    const block = this.keys[bi];
    return block[OrderedIndex.floorPos(block, key)];
  }

  /** Smallest key ≥ `key`, or undefined. */
  ceilKey(key: number): number | undefined {
    const keys = this.keys;
    if (keys.length === 0) return undefined;
    let bi = this.blockFor(key);
    if (bi < 0) return keys[0][0];
    const block = keys[bi];
    const pos = OrderedIndex.floorPos(block, key);
    if (block[pos] === key) return key;
    if (pos + 1 < block.length) return block[pos + 1];
    bi += 1;
    return bi < keys.length ? keys[bi][0] : undefined;
  }

  /** Value of the greatest key ≤ `key`, or undefined. */
  floor(key: number): V | undefined {
    const bi = this.blockFor(key);
    if (bi < 0) return undefined;
    return this.vals[bi][OrderedIndex.floorPos(this.keys[bi], key)];
  }

  /** Value of the smallest key ≥ `key`, or undefined. */
  ceil(key: number): V | undefined {
    const keys = this.keys;
    if (keys.length === 0) return undefined;
    let bi = this.blockFor(key);
    if (bi < 0) return this.vals[0][0];
    const block = keys[bi];
    const pos = OrderedIndex.floorPos(block, key);
    if (block[pos] === key) return this.vals[bi][pos];
    if (pos + 1 < block.length) return this.vals[bi][pos + 1];
    bi += 1;
    return bi < keys.length ? this.vals[bi][0] : undefined;
  }

  /** Values with keys in [from, to], ascending. */
  *range(from: number, to: number): IterableIterator<V> {
    let k = this.ceilKey(from);
    while (k !== undefined && k <= to) {
      yield this.get(k) as V;
      k = this.ceilKey(k + 1);
    }
  }

  *values(): IterableIterator<V> {
    for (const block of this.vals) yield* block;
  }
}
