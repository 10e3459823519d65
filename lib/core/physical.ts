/**
 * Physical memory as the WDK describes it (MDL, contiguous range, PFN array), resolved into the
 * backend's physically contiguous runs; and `DmaMemory`, the user-facing allocation that can
 * describe itself in all three forms.
 */
import type { BackendMemory, MemorySpan, PhysicalRun } from '../backend/contract.js';
import { IommuError, isBackendError } from '../errors.js';
import { type StatusName, negativeErrno } from '../status.js';
import { pfnRuns } from './pfn-runs.js';
import { toIommuError } from './platform/backend-call.js';
import {
  MapPhysicalAddressTypeContiguousRange,
  MapPhysicalAddressTypeMdl,
  MapPhysicalAddressTypePfn,
} from '../wdk/constants.js';
import type { IOMMU_MAP_PHYSICAL_ADDRESS, MDL } from '../wdk/types.js';
import { PAGE, PAGE_MASK, PAGE_SIZE, U64_MAX } from '../util/u64.js';

export interface ResolvedPhysical {
  readonly runs: PhysicalRun[];
  readonly length: bigint;
}

function bad(code: StatusName, operation: string, argument: string, message: string): IommuError {
  return new IommuError(code, `${argument} ${message}`, { operation, argument });
}

function toBigInt(v: unknown): bigint | undefined {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  return undefined;
}

function pushPage(runs: PhysicalRun[], pa: bigint): void {
  const last = runs[runs.length - 1];
  if (last && last.pa + last.length === pa) {
    (runs[runs.length - 1] as { length: bigint }).length = last.length + PAGE;
  } else runs.push({ pa, length: PAGE });
}

function pfnList(list: unknown, count: bigint, code: StatusName, operation: string, argument: string): PhysicalRun[] {
  if (!(list instanceof BigUint64Array) && !Array.isArray(list)) {
    throw bad(code, operation, argument, 'must hold a PFN array (bigint[] or BigUint64Array)');
  }
  if (count <= 0n || count > BigInt(list.length)) {
    throw bad(code, operation, argument, `page count ${count} must be 1..${list.length} (the PFN array's length)`);
  }
  const n = Number(count);
  if (list instanceof BigUint64Array) {
    const runs = pfnRuns(list, n);
    if (typeof runs === 'number') throw bad(code, operation, argument, `PFN #${runs} is not a valid page frame number`);
    return runs;
  }
  const runs: PhysicalRun[] = [];
  for (let i = 0; i < n; i++) {
    const pfn = toBigInt(list[i]);
    if (pfn === undefined || pfn < 0n || pfn > U64_MAX >> 12n) {
      throw bad(code, operation, argument, `PFN #${i} is not a valid page frame number`);
    }
    pushPage(runs, pfn << 12n);
  }
  return runs;
}

function resolveMdl(mdl: MDL, code: StatusName, operation: string, argument: string): ResolvedPhysical {
  if (mdl === null || typeof mdl !== 'object') throw bad(code, operation, argument, 'must be an MDL');
  const offset = mdl.ByteOffset;
  if (typeof offset !== 'number' || offset !== 0) {
    throw bad(code, operation, argument, `is not page-aligned (MDL ByteOffset ${String(offset)}; must be 0)`);
  }
  const count = toBigInt(mdl.ByteCount);
  if (count === undefined || count <= 0n || (count & PAGE_MASK) !== 0n) {
    throw bad(code, operation, argument, `must describe whole pages (MDL ByteCount ${String(mdl.ByteCount)} is not a positive multiple of 4096)`);
  }
  const runs = pfnList(mdl.PfnArray, count / PAGE, code, operation, argument);
  return { runs, length: count };
}

/**
 * Turn an IOMMU_MAP_PHYSICAL_ADDRESS (or a bare MDL, for the V1 members) into runs. Any shape
 * error, misalignment or partial page → `code` (the member's STATUS_INVALID_PARAMETER_n).
 */
export function resolvePhysical(
  desc: IOMMU_MAP_PHYSICAL_ADDRESS | MDL,
  code: StatusName,
  operation: string,
  argument: string,
): ResolvedPhysical {
  if (desc === null || typeof desc !== 'object') {
    throw bad(code, operation, argument, 'must be an IOMMU_MAP_PHYSICAL_ADDRESS object');
  }
  if (!('MapType' in desc)) {
    if ('PfnArray' in desc) return resolveMdl(desc as MDL, code, operation, argument);
    throw bad(code, operation, argument, 'must be an IOMMU_MAP_PHYSICAL_ADDRESS object (MapType missing)');
  }
  switch (desc.MapType) {
    case MapPhysicalAddressTypeMdl: {
      const m = (desc as { Mdl: MDL | { Mdl: MDL } }).Mdl;
      const mdl = m && typeof m === 'object' && 'Mdl' in m ? m.Mdl : (m as MDL);
      return resolveMdl(mdl, code, operation, argument);
    }
    case MapPhysicalAddressTypeContiguousRange: {
      const r = (desc as { ContiguousRange?: { Base: unknown; Size: unknown } }).ContiguousRange;
      const base = toBigInt(r?.Base);
      const size = toBigInt(r?.Size);
      if (base === undefined || size === undefined) {
        throw bad(code, operation, argument, 'ContiguousRange needs bigint Base and Size');
      }
      if ((base & PAGE_MASK) !== 0n || base < 0n) throw bad(code, operation, argument, `is not page-aligned (Base 0x${base.toString(16)})`);
      if (size <= 0n || (size & PAGE_MASK) !== 0n) {
        throw bad(code, operation, argument, `must be whole pages (Size 0x${size.toString(16)} is not a positive multiple of 4096)`);
      }
      if (base + size - 1n > U64_MAX) throw bad(code, operation, argument, 'range wraps past 2^64');
      return { runs: [{ pa: base, length: size }], length: size };
    }
    case MapPhysicalAddressTypePfn: {
      const p = (desc as { PfnArray?: { PageFrame: unknown; NumberOfPages: unknown } }).PfnArray;
      const count = toBigInt(p?.NumberOfPages);
      if (count === undefined) throw bad(code, operation, argument, 'PfnArray.NumberOfPages must be an integer');
      const runs = pfnList(p?.PageFrame, count, code, operation, argument);
      return { runs, length: count * PAGE };
    }
    default:
      throw bad(code, operation, argument, `has an invalid MapType ${String((desc as { MapType: unknown }).MapType)} (0 Mdl, 1 ContiguousRange, 2 Pfn)`);
  }
}

/** A V1 member's MDL argument: a bare MDL only (an IOMMU_MAP_PHYSICAL_ADDRESS is the Ex members' shape). */
export function resolveMdlArgument(mdl: unknown, code: StatusName, operation: string, argument: string): ResolvedPhysical {
  if (mdl === null || typeof mdl !== 'object' || 'MapType' in mdl) {
    throw bad(code, operation, argument, 'must be an MDL { ByteOffset, ByteCount, PfnArray } (the V1 members take an MDL, not an IOMMU_MAP_PHYSICAL_ADDRESS)');
  }
  return resolveMdl(mdl as MDL, code, operation, argument);
}

/**
 * Where a ContiguousRange made by `DmaMemory.asContiguousRange` keeps the memory's identity (not
 * enumerable). Such a range is frozen, so its Base and Size stay the ones the identity describes.
 */
const SPAN = Symbol('dma-iommu.span');

/**
 * The memory identity of a ContiguousRange that `DmaMemory.asContiguousRange` made: the platform
 * hands the backend the allocation + offset instead of the physical run, which the backend would
 * otherwise resolve back to the allocation (contract.ts `MemorySpan`). Undefined for any other range.
 */
export function spanOf(range: { readonly Base: bigint; readonly Size: bigint }): MemorySpan | undefined {
  return (range as { [SPAN]?: MemorySpan })[SPAN];
}

/** Slice runs to [offset, offset+length). */
export function sliceRuns(runs: readonly PhysicalRun[], offset: bigint, length: bigint): PhysicalRun[] {
  const out: PhysicalRun[] = [];
  let pos = 0n;
  const end = offset + length;
  for (const r of runs) {
    const rEnd = pos + r.length;
    if (rEnd > offset && pos < end) {
      const s = offset > pos ? offset : pos;
      const e = end < rEnd ? end : rEnd;
      out.push({ pa: r.pa + (s - pos), length: e - s });
    }
    pos = rEnd;
    if (pos >= end) break;
  }
  return out;
}

/**
 * Memory allocated for DMA by the platform's backend: a Uint8Array view (non-lazy allocations),
 * and its description as an MDL, a PFN array or (when physically contiguous) a contiguous range.
 * On the simulator it is the simulated RAM the DMA engine reads; on native backends it is this
 * process's own pages, pinned by the kernel while mapped.
 *
 * Every failure is an IommuError: a bad offset or length is STATUS_INVALID_PARAMETER naming it;
 * any use after `free()` (or after the platform closed) is STATUS_INVALID_DEVICE_REQUEST.
 */
export class DmaMemory {
  readonly #mem: BackendMemory;
  #onFree: ((m: DmaMemory) => void) | null;

  /** @internal `onFree` tells the owner (the platform) to forget it once freed. */
  constructor(mem: BackendMemory, onFree: ((m: DmaMemory) => void) | null = null) {
    this.#mem = mem;
    this.#onFree = onFree;
  }

  /** @internal */
  get backendMemory(): BackendMemory {
    return this.#mem;
  }

  /** Size of the allocation in bytes (the requested size rounded up to whole 4 KiB pages). */
  get size(): bigint {
    return this.#mem.size;
  }

  /** True once `free()` ran (or its platform closed). */
  get freed(): boolean {
    return this.#mem.freed;
  }

  #live(op: string): void {
    if (this.#mem.freed) throw new IommuError('STATUS_INVALID_DEVICE_REQUEST', 'the memory was freed (by free() or by closing its platform)', { operation: op });
  }

  /** Run a backend memory operation; its failures as IommuError. */
  #backend<T>(op: string, fn: () => T): T {
    this.#live(op);
    try {
      return fn();
    } catch (e) {
      throw toIommuError(e, op);
    }
  }

  /** The bytes (the same memory devices reach by DMA). Throws for lazy allocations. */
  get bytes(): Uint8Array {
    this.#live('DmaMemory.bytes');
    const b = this.#mem.bytes;
    if (!b) throw new IommuError('STATUS_INVALID_DEVICE_REQUEST', 'this allocation is lazy: use read()/write()', { operation: 'DmaMemory.bytes' });
    return b;
  }

  /** Physical address of the first page. */
  get physicalAddress(): bigint {
    return this.#backend('DmaMemory.physicalAddress', () => this.#mem.pageAddress(0));
  }

  /** Physically contiguous runs of [offset, offset + length). */
  runs(offset: bigint = 0n, length: bigint = this.size - (typeof offset === 'bigint' ? offset : 0n)): PhysicalRun[] {
    this.#check('DmaMemory.runs', offset, length);
    return this.#backend('DmaMemory.runs', () => this.#mem.runs(offset, length));
  }

  #check(op: string, offset: unknown, length: unknown): asserts offset is bigint {
    this.#live(op);
    const size = this.size;
    if (typeof offset !== 'bigint' || offset < 0n || offset >= size) {
      throw new IommuError('STATUS_INVALID_PARAMETER', `offset must be a bigint within the allocation of 0x${size.toString(16)} bytes (got ${show(offset)})`, { operation: op, argument: 'offset' });
    }
    if ((offset & PAGE_MASK) !== 0n) throw new IommuError('STATUS_INVALID_PARAMETER', `offset 0x${offset.toString(16)} is not page-aligned`, { operation: op, argument: 'offset' });
    if (typeof length !== 'bigint' || length <= 0n || offset + length > size) {
      throw new IommuError('STATUS_INVALID_PARAMETER', `length must be a positive bigint with offset + length within the allocation of 0x${size.toString(16)} bytes (got ${show(length)})`, { operation: op, argument: 'length' });
    }
  }

  #pfns(op: string, offset: bigint, length: bigint): BigUint64Array {
    this.#check(op, offset, length);
    const pages = Number((length + PAGE_MASK) / PAGE);
    const first = Number(offset / PAGE);
    return this.#backend(op, () => {
      const out = new BigUint64Array(pages);
      for (let i = 0; i < pages; i++) out[i] = this.#mem.pageAddress(first + i) >> 12n;
      return out;
    });
  }

  /** An MDL describing [offset, offset + length) (IoAllocateMdl + MmBuildMdlForNonPagedPool). */
  mdl(offset: bigint = 0n, length: bigint = this.#rest(offset)): MDL {
    return { ByteOffset: 0, ByteCount: length, PfnArray: this.#pfns('DmaMemory.mdl', offset, length) };
  }

  /** IOMMU_MAP_PHYSICAL_ADDRESS of type MapPhysicalAddressTypeMdl. */
  asMdl(offset: bigint = 0n, length: bigint = this.#rest(offset)): IOMMU_MAP_PHYSICAL_ADDRESS {
    return { MapType: MapPhysicalAddressTypeMdl, Mdl: { ByteOffset: 0, ByteCount: length, PfnArray: this.#pfns('DmaMemory.asMdl', offset, length) } };
  }

  /** IOMMU_MAP_PHYSICAL_ADDRESS of type MapPhysicalAddressTypePfn. */
  asPfnArray(offset: bigint = 0n, length: bigint = this.#rest(offset)): IOMMU_MAP_PHYSICAL_ADDRESS {
    const pfns = this.#pfns('DmaMemory.asPfnArray', offset, length);
    return { MapType: MapPhysicalAddressTypePfn, PfnArray: { PageFrame: pfns, NumberOfPages: BigInt(pfns.length) } };
  }

  /**
   * IOMMU_MAP_PHYSICAL_ADDRESS of type MapPhysicalAddressTypeContiguousRange; STATUS_NOT_SUPPORTED
   * when not contiguous. The ContiguousRange is frozen: it also names the memory itself, which
   * the platform hands the backend instead of the physical address (no PA → memory lookup).
   */
  asContiguousRange(offset: bigint = 0n, length: bigint = this.#rest(offset)): IOMMU_MAP_PHYSICAL_ADDRESS {
    const op = 'DmaMemory.asContiguousRange';
    this.#check(op, offset, length);
    const runs = this.#backend(op, () => this.#mem.runs(offset, length));
    if (runs.length !== 1) {
      throw new IommuError('STATUS_NOT_SUPPORTED', `range is not physically contiguous (${runs.length} runs): use asMdl() or asPfnArray()`, { operation: op });
    }
    const range = { Base: runs[0].pa, Size: length };
    Object.defineProperty(range, SPAN, { value: Object.freeze({ memory: this.#mem, offset, length }) });
    return { MapType: MapPhysicalAddressTypeContiguousRange, ContiguousRange: Object.freeze(range) };
  }

  /** The default length: the rest of the allocation from `offset` (a bad offset is reported by the check). */
  #rest(offset: unknown): bigint {
    return typeof offset === 'bigint' ? this.size - offset : 0n;
  }

  /**
   * Copy `length` bytes starting at byte `offset` out of the memory (works for lazy allocations).
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER` (`offset`, `length`) outside the allocation;
   * `STATUS_INVALID_DEVICE_REQUEST` after `free()`.
   */
  read(offset: bigint, length: number): Uint8Array {
    const op = 'DmaMemory.read';
    this.#byteRange(op, offset, length, 'length');
    return this.#backend(op, () => this.#mem.read(offset, length));
  }

  /**
   * Copy `data` into the memory at byte `offset` (works for lazy allocations).
   * @throws {@link IommuError} `STATUS_INVALID_PARAMETER` (`offset`, `data`) outside the allocation or
   * not a `Uint8Array`; `STATUS_INVALID_DEVICE_REQUEST` after `free()`.
   */
  write(offset: bigint, data: Uint8Array): void {
    const op = 'DmaMemory.write';
    if (!(data instanceof Uint8Array)) throw new IommuError('STATUS_INVALID_PARAMETER', `data must be a Uint8Array (got ${show(data)})`, { operation: op, argument: 'data' });
    this.#byteRange(op, offset, data.length, 'data');
    this.#backend(op, () => this.#mem.write(offset, data));
  }

  /** Byte-granular [offset, offset + length) inside the allocation (read/write). */
  #byteRange(op: string, offset: unknown, length: unknown, lengthArg: string): void {
    this.#live(op);
    const size = this.size;
    if (typeof offset !== 'bigint' || offset < 0n || offset > size) {
      throw new IommuError('STATUS_INVALID_PARAMETER', `offset must be a bigint within the allocation of 0x${size.toString(16)} bytes (got ${show(offset)})`, { operation: op, argument: 'offset' });
    }
    if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0 || offset + BigInt(length) > size) {
      throw new IommuError('STATUS_INVALID_PARAMETER', `${lengthArg} must be a byte count with offset + length within the allocation of 0x${size.toString(16)} bytes`, { operation: op, argument: lengthArg });
    }
  }

  /** Free the memory; STATUS_RESOURCE_IN_USE while any page is still mapped. Idempotent. */
  free(): void {
    if (!this.#mem.freed) {
      try {
        this.#mem.free();
      } catch (e) {
        const busy = isBackendError(e) && e.errno === negativeErrno('EBUSY');
        throw toIommuError(e, 'DmaMemory.free', { EBUSY: 'STATUS_RESOURCE_IN_USE' }, busy ? { message: 'memory is still mapped in a domain: unmap it first' } : {});
      }
    }
    const onFree = this.#onFree;
    this.#onFree = null;
    onFree?.(this);
  }

  /** `using` support: the same as `free()`. */
  [Symbol.dispose](): void {
    this.free();
  }
}

function show(v: unknown): string {
  return typeof v === 'bigint' ? `0x${v.toString(16)}` : typeof v === 'number' ? String(v) : typeof v;
}
