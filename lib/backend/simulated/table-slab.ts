/**
 * Storage for the tables of one page table: every table's slots in one shared Float64Array,
 * addressed by table number.
 *
 * Why one slab. A table used to be an object holding its own Float64Array: V8 keeps typed
 * arrays larger than 64 bytes off-heap, so each level of a walk cost three dependent loads (the
 * table object, its typed-array object, the backing store's slot), and with a million live
 * mappings the leaf level is far larger than the cache, so each was a miss. Here a table is a
 * number `t` and its slot `s` is `slots[t * doublesPerTable + s]`: the slab object and its
 * typed-array header are touched by every walk and stay cached, leaving one miss (the slot).
 * The non-empty-slot counts are an Int32Array of 4 bytes per table (16 KiB for 4000 tables) for
 * the same reason: small enough to stay cached.
 *
 * Growth doubles the arrays (a copy, amortised O(1) per table). Dropped tables go on a free list
 * and are reused last-in first-out; their slots are all zero already (a table is dropped only
 * once empty), so reuse costs nothing. Table 0 is allocated first and never released (the page
 * table's root); `trim()` gives the memory back once it is the only live table.
 */
export class TableSlab {
  readonly doublesPerTable: number;
  readonly #initialTables: number;
  /** Slot values of every table: table t occupies [t * doublesPerTable, (t + 1) * doublesPerTable). */
  slots: Float64Array;
  /** counts[t] = non-empty slots of table t (maintained by the owner). */
  counts: Int32Array;
  /** Tables handed out and not released. */
  live = 0;
  /** Tables ever handed out since the last trim: every number below it is live or free. */
  #used = 0;
  /** Whether the arrays are larger than their initial size. */
  #grown = false;
  /** Released table numbers, reused last-in first-out. */
  readonly #free: number[] = [];

  constructor(doublesPerTable: number, initialTables: number) {
    if (!Number.isInteger(doublesPerTable) || doublesPerTable <= 0) throw new RangeError(`bad table size ${doublesPerTable}`);
    if (!Number.isInteger(initialTables) || initialTables <= 0) throw new RangeError(`bad initial table count ${initialTables}`);
    this.doublesPerTable = doublesPerTable;
    this.#initialTables = initialTables;
    this.slots = new Float64Array(doublesPerTable * initialTables);
    this.counts = new Int32Array(initialTables);
  }

  /** Tables the arrays can hold without growing. */
  get capacity(): number {
    return this.counts.length;
  }

  /**
   * A table whose slots and count are all zero. May replace `slots` and `counts` (growth):
   * callers holding them in locals must reload them.
   */
  allocate(): number {
    this.live++;
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    if (this.#used === this.counts.length) {
      this.#resize(2 * this.counts.length);
      this.#grown = true;
    }
    return this.#used++;
  }

  /** Give back table `t` (never table 0); its slots and count must already be zero (checked by `verify`). */
  release(t: number): void {
    this.#free.push(t);
    this.live--;
  }

  /**
   * When table 0 is the only live table and the arrays have grown, shrink them back to their
   * initial size (keeping table 0) and forget the free list. Never called from within a walk: it
   * replaces `slots`. Small, for V8 to inline into the unmap fast path (a map/unmap pair in an
   * empty domain calls it every time); the shrink itself is a method of its own.
   */
  trim(): void {
    if (this.live === 1 && this.#grown) this.#shrink();
  }

  #shrink(): void {
    this.#grown = false;
    this.#free.length = 0;
    this.#used = 1;
    this.#resize(this.#initialTables);
  }

  #resize(tables: number): void {
    const keep = Math.min(tables, this.#used);
    const slots = new Float64Array(this.doublesPerTable * tables);
    slots.set(this.slots.subarray(0, this.doublesPerTable * keep));
    const counts = new Int32Array(tables);
    counts.set(this.counts.subarray(0, keep));
    this.slots = slots;
    this.counts = counts;
  }

  /** Whether `t` is currently handed out (tests and self-checks; O(free tables)). */
  isLive(t: number): boolean {
    return Number.isInteger(t) && t >= 0 && t < this.#used && !this.#free.includes(t);
  }

  /** Self-check (tests): free tables are distinct, in range, zeroed; counts add up. */
  verify(): string | null {
    const seen = new Set<number>();
    for (const t of this.#free) {
      if (!(t >= 0 && t < this.#used)) return `free table ${t} out of range [0, ${this.#used})`;
      if (seen.has(t)) return `table ${t} freed twice`;
      seen.add(t);
      if (this.counts[t] !== 0) return `free table ${t} has count ${this.counts[t]}`;
      const base = t * this.doublesPerTable;
      for (let s = 0; s < this.doublesPerTable; s++) {
        if (this.slots[base + s] !== 0) return `free table ${t} has a non-zero slot ${s}`;
      }
    }
    if (this.#used - this.#free.length !== this.live) return `live ${this.live} != ${this.#used} used - ${this.#free.length} free`;
    return null;
  }
}
