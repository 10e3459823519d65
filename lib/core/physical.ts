/**
 * Physical memory as the WDK describes it (MDL, contiguous range, PFN array), resolved into the
 * backend's physically contiguous runs; and `DmaMemory`, the user-facing allocation that can
 * describe itself in all three forms.
 */
import type { BackendMemory, PhysicalRun } from '../backend/contract.js';
import { IommuError } from '../errors.js';
import type { StatusName } from '../status.js';
import { pfnRuns } from './pfn-runs.js';
import {
  MapPhysicalAddressTypeContiguousRange,
  MapPhysicalAddressTypeMdl,
  MapPhysicalAddressTypePfn,
  PAGE_SIZE,
} from '../wdk/constants.js';
import type { IOMMU_MAP_PHYSICAL_ADDRESS, MDL } from '../wdk/types.js';

const PAGE = BigInt(PAGE_SIZE);
const PAGE_MASK = PAGE - 1n;
const U64_MAX = (1n << 64n) - 1n;

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
 */
export class DmaMemory {
  readonly #mem: BackendMemory;

  /** @internal */
  constructor(mem: BackendMemory) {
    this.#mem = mem;
  }

  /** @internal */
  get backendMemory(): BackendMemory {
    return this.#mem;
  }

  get size(): bigint {
    return this.#mem.size;
  }

  /** The bytes (the same memory devices reach by DMA). Throws for lazy allocations. */
  get bytes(): Uint8Array {
    const b = this.#mem.bytes;
    if (!b) throw new IommuError('STATUS_INVALID_DEVICE_REQUEST', 'this allocation is lazy: use read()/write()', { operation: 'DmaMemory.bytes' });
    return b;
  }

  /** Physical address of the first page. */
  get physicalAddress(): bigint {
    return this.#mem.pageAddress(0);
  }

  get freed(): boolean {
    return this.#mem.freed;
  }

  /** Physically contiguous runs of [offset, offset + length). */
  runs(offset = 0n, length = this.size - offset): PhysicalRun[] {
    this.#check(offset, length);
    return this.#mem.runs(offset, length);
  }

  #check(offset: bigint, length: bigint): void {
    if (typeof offset !== 'bigint' || typeof length !== 'bigint') throw new TypeError('offset and length must be bigint');
    if (offset < 0n || length <= 0n || offset + length > this.size) {
      throw new RangeError(`range [0x${offset.toString(16)}, +0x${length.toString(16)}) is outside the allocation of 0x${this.size.toString(16)} bytes`);
    }
    if ((offset & PAGE_MASK) !== 0n) throw new RangeError(`offset 0x${offset.toString(16)} is not page-aligned`);
  }

  #pfns(offset: bigint, length: bigint): BigUint64Array {
    this.#check(offset, length);
    const pages = Number((length + PAGE_MASK) / PAGE);
    const first = Number(offset / PAGE);
    const out = new BigUint64Array(pages);
    for (let i = 0; i < pages; i++) out[i] = this.#mem.pageAddress(first + i) >> 12n;
    return out;
  }

  /** An MDL describing [offset, offset + length) (IoAllocateMdl + MmBuildMdlForNonPagedPool). */
  mdl(offset = 0n, length = this.size - offset): MDL {
    return { ByteOffset: 0, ByteCount: length, PfnArray: this.#pfns(offset, length) };
  }

  /** IOMMU_MAP_PHYSICAL_ADDRESS of type MapPhysicalAddressTypeMdl. */
  asMdl(offset = 0n, length = this.size - offset): IOMMU_MAP_PHYSICAL_ADDRESS {
    return { MapType: MapPhysicalAddressTypeMdl, Mdl: this.mdl(offset, length) };
  }

  /** IOMMU_MAP_PHYSICAL_ADDRESS of type MapPhysicalAddressTypePfn. */
  asPfnArray(offset = 0n, length = this.size - offset): IOMMU_MAP_PHYSICAL_ADDRESS {
    const pfns = this.#pfns(offset, length);
    return { MapType: MapPhysicalAddressTypePfn, PfnArray: { PageFrame: pfns, NumberOfPages: BigInt(pfns.length) } };
  }

  /** IOMMU_MAP_PHYSICAL_ADDRESS of type MapPhysicalAddressTypeContiguousRange; RangeError when not contiguous. */
  asContiguousRange(offset = 0n, length = this.size - offset): IOMMU_MAP_PHYSICAL_ADDRESS {
    const runs = this.runs(offset, length);
    if (runs.length !== 1) {
      throw new RangeError(`range is not physically contiguous (${runs.length} runs): use asMdl() or asPfnArray()`);
    }
    return { MapType: MapPhysicalAddressTypeContiguousRange, ContiguousRange: { Base: runs[0].pa, Size: length } };
  }

  read(offset: bigint, length: number): Uint8Array {
    return this.#mem.read(offset, length);
  }

  write(offset: bigint, data: Uint8Array): void {
    this.#mem.write(offset, data);
  }

  /** Free the memory; STATUS_RESOURCE_IN_USE while any page is still mapped. Idempotent. */
  free(): void {
    if (this.#mem.freed) return;
    try {
      this.#mem.free();
    } catch (e) {
      throw new IommuError('STATUS_RESOURCE_IN_USE', 'memory is still mapped in a domain: unmap it first', { operation: 'DmaMemory.free', cause: e });
    }
  }

  [Symbol.dispose](): void {
    this.free();
  }
}
