/**
 * Platform services that are not WDK members: DMA memory, a device's config space and BARs, a
 * domain's geometry.
 */
import type { AllocateOptions, DeviceRegions, DomainGeometry } from '../../backend/contract.js';
import { IommuError } from '../../errors.js';
import type { IommuDmaDevice, IommuDmaDomain } from '../objects.js';
import { DmaMemory } from '../physical.js';
import { viaBackend } from './backend-call.js';
import type { PlatformContext } from './context.js';
import { PAGE_MASK } from './validate.js';

/** Allocate DMA-able memory (page-aligned, whole pages). */
export function allocateDmaMemory(ctx: PlatformContext, size: bigint | number, options: AllocateOptions = {}): DmaMemory {
  ctx.live('allocateDmaMemory');
  const bytes = typeof size === 'number' && Number.isSafeInteger(size) ? BigInt(size) : size;
  if (typeof bytes !== 'bigint' || bytes <= 0n) throw new IommuError('STATUS_INVALID_PARAMETER_1', 'size must be a positive bigint or safe integer', { operation: 'allocateDmaMemory', argument: 'size' });
  const rounded = (bytes + PAGE_MASK) & ~PAGE_MASK;
  const mem = viaBackend('allocateDmaMemory', () => ctx.backend.allocateMemory(rounded, options));
  const dm = new DmaMemory(mem);
  ctx.memory.add(dm);
  return dm;
}

/** PCI config space and BAR access of a created device, for drivers written in JS. */
export function deviceRegions(ctx: PlatformContext, device: IommuDmaDevice): DeviceRegions {
  const d = ctx.reg.device(device, 'deviceRegions', 1);
  return viaBackend('deviceRegions', () => ctx.backend.deviceRegions(d.id));
}

/** The domain's usable IOVA ranges, alignment and page sizes as of now. */
export function geometry(ctx: PlatformContext, domain: IommuDmaDomain): DomainGeometry {
  const dom = ctx.reg.domain(domain, 'geometry', 1);
  return viaBackend('geometry', () => dom.geometry().geometry);
}
