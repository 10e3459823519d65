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
  return new GuardedRegions(ctx, d, viaBackend(op, () => ctx.backend.deviceRegions(d.id)));
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

  #call<T>(op: string, fn: (r: DeviceRegions) => T): T {
    this.#ctx.live(op);
    if (this.#device.deleted) throw statusError('STATUS_INVALID_DEVICE_REQUEST', op, `${this.#device.pdo.bdf}'s IOMMU_DMA_DEVICE was deleted`);
    try {
      return fn(this.#inner);
    } catch (e) {
      throw toIommuError(e, op, { ENODEV: 'STATUS_DEVICE_REMOVED' });
    }
  }

  configRead(offset: number, size: 1 | 2 | 4): number {
    return this.#call('configRead', (r) => r.configRead(offset, size));
  }

  configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    this.#call('configWrite', (r) => r.configWrite(offset, size, value));
  }

  barRead32(bar: number, offset: number): number {
    return this.#call('barRead32', (r) => r.barRead32(bar, offset));
  }

  barWrite32(bar: number, offset: number, value: number): void {
    this.#call('barWrite32', (r) => r.barWrite32(bar, offset, value));
  }

  barRead64(bar: number, offset: number): bigint {
    return this.#call('barRead64', (r) => r.barRead64(bar, offset));
  }

  barWrite64(bar: number, offset: number, value: bigint): void {
    this.#call('barWrite64', (r) => r.barWrite64(bar, offset, value));
  }
}
