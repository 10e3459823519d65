/**
 * Platform services that are not WDK members: DMA memory, a device's config space and BARs, a
 * domain's geometry. Their argument errors are STATUS_INVALID_PARAMETER with `.argument`.
 */
import type { AllocateOptions, DeviceRegions, DomainGeometry } from '../../backend/contract.js';
import type { IommuDmaDevice, IommuDmaDomain } from '../objects.js';
import { DmaMemory } from '../physical.js';
import { toIommuError, viaBackend } from './backend-call.js';
import type { PlatformContext } from './context.js';
import type { DeviceState } from './state.js';
import { PAGE_MASK, U64_MAX, countOf, describe, invalidOption, isAbsent, statusError } from './validate.js';

const ALLOCATE_FLAGS = ['hugePages', 'contiguous', 'lazy'] as const;

function allocateOptions(options: unknown, op: string): AllocateOptions {
  if (isAbsent(options)) return {};
  if (typeof options !== 'object' || Array.isArray(options)) throw invalidOption(op, 'options', `must be an AllocateOptions object (got ${describe(options)})`);
  const out: { hugePages?: boolean; contiguous?: boolean; lazy?: boolean } = {};
  for (const k of ALLOCATE_FLAGS) {
    const v = (options as Record<string, unknown>)[k];
    if (v === undefined) continue;
    if (typeof v !== 'boolean') throw invalidOption(op, `options.${k}`, `must be a boolean (got ${describe(v)})`);
    out[k] = v;
  }
  return out;
}

/** Allocate DMA-able memory (page-aligned, whole pages). */
export function allocateDmaMemory(ctx: PlatformContext, size: unknown, options: unknown): DmaMemory {
  const op = 'allocateDmaMemory';
  ctx.live(op);
  const bytes = countOf(size);
  if (bytes === undefined || bytes === 0n || bytes > U64_MAX - PAGE_MASK) {
    throw invalidOption(op, 'size', `must be a positive bigint or safe integer number of bytes (got ${describe(size)})`);
  }
  const opts = allocateOptions(options, op);
  const rounded = (bytes + PAGE_MASK) & ~PAGE_MASK;
  const mem = viaBackend(op, () => ctx.backend.allocateMemory(rounded, opts));
  // registered until freed (close() frees what is left); a freed allocation is forgotten at once
  const dm = new DmaMemory(mem, (m) => ctx.memory.delete(m));
  ctx.memory.add(dm);
  return dm;
}

/** PCI config space and BAR access of a created device, for drivers written in JS. */
export function deviceRegions(ctx: PlatformContext, device: IommuDmaDevice): DeviceRegions {
  const op = 'deviceRegions';
  ctx.live(op);
  const d = ctx.reg.device(device, op, 0, 'device');
  if (d.removed) throw statusError('STATUS_DEVICE_REMOVED', op, `${d.pdo.bdf} was removed`, 'device');
  return new GuardedRegions(ctx, d, viaBackend(op, () => ctx.backend.deviceRegions(d.id), { ENODEV: 'STATUS_DEVICE_REMOVED' }));
}

/** The domain's usable IOVA ranges, alignment and page sizes as of now. */
export function geometry(ctx: PlatformContext, domain: IommuDmaDomain): DomainGeometry {
  const op = 'geometry';
  ctx.live(op);
  const dom = ctx.reg.domain(domain, op, 0, 'domain');
  return dom.geometry(op).geometry;
}

/**
 * The backend's DeviceRegions behind the platform's rules: STATUS_INVALID_DEVICE_REQUEST once the
 * platform is closed or the device deleted, STATUS_DEVICE_REMOVED once it was removed, every
 * other failure an IommuError.
 */
class GuardedRegions implements DeviceRegions {
  readonly #ctx: PlatformContext;
  readonly #device: DeviceState;
  readonly #inner: DeviceRegions;

  constructor(ctx: PlatformContext, device: DeviceState, inner: DeviceRegions) {
    this.#ctx = ctx;
    this.#device = device;
    this.#inner = inner;
  }

  /**
   * Check the arguments the platform can judge (types, sizes, BAR numbers, value widths), then run
   * the backend's access. What only the backend can judge (an offset past the end of config space
   * or of the BAR, misalignment, a BAR the device lacks) comes back as its EINVAL/ERANGE and is
   * reported against `rangeArg`.
   */
  #call<T>(op: string, rangeArg: string, fn: (r: DeviceRegions) => T): T {
    this.#ctx.live(op);
    if (this.#device.deleted) throw statusError('STATUS_INVALID_DEVICE_REQUEST', op, `${this.#device.pdo.bdf}'s IOMMU_DMA_DEVICE was deleted`);
    if (this.#device.removed) throw statusError('STATUS_DEVICE_REMOVED', op, `${this.#device.pdo.bdf} was removed`);
    try {
      return fn(this.#inner);
    } catch (e) {
      throw toIommuError(e, op, { ENODEV: 'STATUS_DEVICE_REMOVED' }, { argument: rangeArg });
    }
  }

  /** A config-space access: the offset, the access size, `checkValue` (writes), then the backend's access. */
  #config<T>(op: string, offset: number, size: 1 | 2 | 4, access: (r: DeviceRegions) => T, checkValue?: () => void): T {
    regionOffset(op, offset);
    accessSize(op, size);
    checkValue?.();
    return this.#call(op, 'offset', access);
  }

  /** A BAR register access: the BAR index, an offset aligned to `width`, `checkValue` (writes), then the backend's access. */
  #bar<T>(op: string, bar: number, offset: number, width: 4 | 8, access: (r: DeviceRegions) => T, checkValue?: () => void): T {
    barIndex(op, bar);
    regionOffset(op, offset, width);
    checkValue?.();
    return this.#call(op, 'offset', access);
  }

  configRead(offset: number, size: 1 | 2 | 4): number {
    return this.#config('configRead', offset, size, (r) => r.configRead(offset, size));
  }

  configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    const op = 'configWrite';
    this.#config(op, offset, size, (r) => r.configWrite(offset, size, value), () => unsignedValue(op, value, size * 8));
  }

  barRead32(bar: number, offset: number): number {
    return this.#bar('barRead32', bar, offset, 4, (r) => r.barRead32(bar, offset));
  }

  barWrite32(bar: number, offset: number, value: number): void {
    this.#bar('barWrite32', bar, offset, 4, (r) => r.barWrite32(bar, offset, value), () => unsignedValue('barWrite32', value, 32));
  }

  barRead64(bar: number, offset: number): bigint {
    return this.#bar('barRead64', bar, offset, 8, (r) => r.barRead64(bar, offset));
  }

  barWrite64(bar: number, offset: number, value: bigint): void {
    const op = 'barWrite64';
    this.#bar(op, bar, offset, 8, (r) => r.barWrite64(bar, offset, value), () => {
      if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) throw invalidOption(op, 'value', `must be a bigint within 0..2^64-1 (got ${describe(value)})`);
    });
  }
}

/**
 * A region offset: a non-negative integer; for a BAR register access (`width` 4 or 8) also a
 * multiple of the width. The kernel's VFIO region read/write would take an unaligned offset and
 * split it into narrower device accesses, which is never one register access: refused here, for
 * every backend alike.
 */
function regionOffset(op: string, offset: unknown, width = 1): void {
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
    throw invalidOption(op, 'offset', `must be a non-negative integer number of bytes (got ${describe(offset)})`);
  }
  if (offset % width !== 0) throw invalidOption(op, 'offset', `must be a multiple of ${width} for a ${width * 8}-bit register access (got ${offset})`);
}

function accessSize(op: string, size: unknown): void {
  if (size !== 1 && size !== 2 && size !== 4) throw invalidOption(op, 'size', `must be 1, 2 or 4 bytes (got ${describe(size)})`);
}

function barIndex(op: string, bar: unknown): void {
  if (typeof bar !== 'number' || !Number.isInteger(bar) || bar < 0 || bar > 5) throw invalidOption(op, 'bar', `must be a BAR number 0..5 (got ${describe(bar)})`);
}

function unsignedValue(op: string, value: unknown, bits: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= 2 ** bits) {
    throw invalidOption(op, 'value', `must be an integer within 0..2^${bits}-1 (got ${describe(value)})`);
  }
}
