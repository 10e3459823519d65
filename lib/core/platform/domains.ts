/**
 * Domains: CreateDomainEx / CreateDomain (type, flags, logical allocator, reserved regions),
 * DeleteDomain, and attaching devices (AttachDeviceEx / DetachDeviceEx, and the V1 PDO-based
 * AttachDevice / DetachDevice).
 */
import {
  DomainTypeMax,
  DomainTypePassThrough,
  DomainTypeTranslate,
  DomainTypeTranslateS1,
  DomainTypeUnmanaged,
  IommuDmaLogicalAllocatorBuddy,
  IommuDmaLogicalAllocatorNone,
} from '../../wdk/constants.js';
import type {
  IOMMU_DMA_DOMAIN_CREATION_FLAGS,
  IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG,
  IOMMU_DMA_RESERVED_REGION,
} from '../../wdk/types.js';
import { Claim, ClaimKind } from '../iova-space.js';
import { IommuDmaDomain, type IommuDmaDevice, type PhysicalDeviceObject } from '../objects.js';
import type { IommuError } from '../../errors.js';
import { toIommuError, viaBackend } from './backend-call.js';
import type { PlatformContext } from './context.js';
import { availableDomainTypes, checkPdo, v1Device } from './devices.js';
import { installClaim } from './mapping.js';
import { type AllocatorState, type DeviceState, type DomainKind, DomainState } from './state.js';
import { PAGE, PAGE_MASK, U64_MAX, booleanField, countOf, describe, hex, invalidArg, isAbsent, isZeroFlags, linkedList, statusError } from './validate.js';

interface ReservedRegion {
  base: bigint;
  pages: number;
  map: boolean;
}

/** IOMMU_DOMAIN_CREATE_EX. */
export function createDomainEx(
  ctx: PlatformContext,
  DomainType: number,
  Flags: IOMMU_DMA_DOMAIN_CREATION_FLAGS,
  LogicalAllocatorConfig: IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG | null | undefined,
  ReservedRegions: IOMMU_DMA_RESERVED_REGION | readonly IOMMU_DMA_RESERVED_REGION[] | null | undefined,
): IommuDmaDomain {
  const op = 'CreateDomainEx';
  ctx.live(op);
  if (typeof DomainType !== 'number' || !Number.isInteger(DomainType) || DomainType < 0 || DomainType >= DomainTypeMax) {
    throw invalidArg(op, 1, 'DomainType', `must be an IOMMU_DMA_DOMAIN_TYPE 0..${DomainTypeMax - 1} (got ${String(DomainType)})`);
  }
  const flags = typeof Flags === 'object' && Flags !== null ? Flags.AsUlonglong : Flags;
  if (!isZeroFlags(flags)) {
    throw invalidArg(op, 2, 'Flags', 'IOMMU_DMA_DOMAIN_CREATION_FLAGS are all reserved and must be 0');
  }
  const kind = domainKind(ctx, DomainType, op);
  const allocator = allocatorConfig(LogicalAllocatorConfig, DomainType, op);
  const regions = reservedRegions(ReservedRegions, op);
  const id = viaBackend(op, () => ctx.backend.allocDomain(kind), { EOPNOTSUPP: 'STATUS_NOT_SUPPORTED', ENOMEM: 'STATUS_INSUFFICIENT_RESOURCES' });
  const handle = new IommuDmaDomain();
  const dom = new DomainState(handle, id, DomainType, kind, allocator, ctx.backend);
  try {
    for (const r of regions) {
      const start = Number(r.base >> 12n);
      if (dom.space.conflict(start, r.pages)) throw invalidArg(op, 4, 'ReservedRegions', `regions overlap at ${hex(r.base)}`);
      if (r.map) {
        installClaim(dom, op, start, r.pages, [{ pa: r.base, length: BigInt(r.pages) * PAGE }], 3, ClaimKind.Reserved, {
          address: 'STATUS_INVALID_PARAMETER_4',
          physical: 'STATUS_INVALID_PARAMETER_4',
          overlap: 'STATUS_INVALID_PARAMETER_4',
          addressArg: 'ReservedRegions',
          physicalArg: 'ReservedRegions',
        });
      } else dom.space.insert(new Claim(start, r.pages, ClaimKind.Reserved, 0, -1, null, false));
    }
  } catch (e) {
    try {
      ctx.backend.freeDomain(id);
    } catch {
      /* the domain was never handed out */
    }
    throw e;
  }
  ctx.reg.domains.set(handle, dom);
  ctx.reg.liveDomains.add(dom);
  return handle;
}

function allocatorConfig(config: IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG | null | undefined, DomainType: number, op: string): AllocatorState | null {
  if (isAbsent(config)) return null;
  if (typeof config !== 'object') throw invalidArg(op, 3, 'LogicalAllocatorConfig', `must be an IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG or null (got ${describe(config)})`);
  const t = config.LogicalAllocatorType;
  if (t === IommuDmaLogicalAllocatorBuddy) {
    const w = config.BuddyAllocatorConfig?.AddressWidth;
    if (typeof w !== 'number' || !Number.isInteger(w) || w < 13 || w > 63) {
      throw invalidArg(op, 3, 'LogicalAllocatorConfig', 'BuddyAllocatorConfig.AddressWidth must be 13..63 bits');
    }
    if (DomainType !== DomainTypeTranslate) throw invalidArg(op, 3, 'LogicalAllocatorConfig', 'a logical allocator applies to DomainTypeTranslate domains only');
    return { addressWidth: w, maxPage: Number(((1n << BigInt(w)) >> 12n) - 1n) };
  }
  if (t !== IommuDmaLogicalAllocatorNone) {
    throw invalidArg(op, 3, 'LogicalAllocatorConfig', `LogicalAllocatorType ${String(t)} is not IommuDmaLogicalAllocatorNone (0) or IommuDmaLogicalAllocatorBuddy (1)`);
  }
  return null;
}

function domainKind(ctx: PlatformContext, type: number, op: string): DomainKind {
  const caps = ctx.backend.capabilities;
  const need = (bit: number, what: string): void => {
    if ((caps.domainTypes & (1 << bit)) === 0) throw statusError('STATUS_NOT_SUPPORTED', op, `${what} domains are not available on the ${ctx.backend.kind} backend`, 'DomainType');
  };
  switch (type) {
    case DomainTypeTranslate:
      need(type, 'DomainTypeTranslate');
      return 'translate';
    case DomainTypePassThrough:
      need(type, 'DomainTypePassThrough');
      return 'passthrough';
    case DomainTypeUnmanaged:
      need(type, 'DomainTypeUnmanaged (caller-owned page tables)');
      return 'unmanaged';
    case DomainTypeTranslateS1:
    default:
      throw statusError('STATUS_NOT_SUPPORTED', op, 'DomainTypeTranslateS1 has no documented semantics and is not supported', 'DomainType');
  }
}

function reservedRegions(list: IOMMU_DMA_RESERVED_REGION | readonly IOMMU_DMA_RESERVED_REGION[] | null | undefined, op: string): ReservedRegion[] {
  const out: ReservedRegion[] = [];
  if (isAbsent(list)) return out;
  const items: IOMMU_DMA_RESERVED_REGION[] = Array.isArray(list) ? [...list] : linkedList<IOMMU_DMA_RESERVED_REGION>(list, 'RegionNext', op, 4, 'ReservedRegions');
  for (const r of items) {
    if (r === null || typeof r !== 'object' || typeof r.Base !== 'bigint') throw invalidArg(op, 4, 'ReservedRegions', 'each region needs a bigint Base');
    if (r.Base < 0n || r.Base > U64_MAX) throw invalidArg(op, 4, 'ReservedRegions', `Base ${String(r.Base)} is not within 0..2^64-1`);
    if ((r.Base & PAGE_MASK) !== 0n) throw invalidArg(op, 4, 'ReservedRegions', `Base ${hex(r.Base)} is not page-aligned`);
    const n = countOf(r.NumberOfPages);
    if (n === undefined || n === 0n) throw invalidArg(op, 4, 'ReservedRegions', `NumberOfPages must be a positive integer (got ${describe(r.NumberOfPages)})`);
    if (r.Base + n * PAGE - 1n > U64_MAX) throw invalidArg(op, 4, 'ReservedRegions', `region at ${hex(r.Base)} wraps past 2^64`);
    out.push({ base: r.Base, pages: Number(n), map: booleanField(r.ShouldMap, op, 4, 'ReservedRegions.ShouldMap') });
  }
  return out;
}

/** IOMMU_DOMAIN_CREATE (V1): OsManagedPageTable TRUE → Translate; FALSE → caller-owned (Unmanaged). */
export function createDomain(ctx: PlatformContext, OsManagedPageTable: boolean): IommuDmaDomain {
  if (typeof OsManagedPageTable !== 'boolean') throw invalidArg('CreateDomain', 1, 'OsManagedPageTable', 'must be a boolean');
  return createDomainEx(ctx, OsManagedPageTable ? DomainTypeTranslate : DomainTypeUnmanaged, 0n, null, null);
}

/** IOMMU_DOMAIN_DELETE. */
export function deleteDomain(ctx: PlatformContext, Domain: IommuDmaDomain): void {
  const op = 'DeleteDomain';
  ctx.live(op);
  const dom = ctx.reg.domain(Domain, op, 1);
  if (dom.devices.size > 0 || dom.pasids.size > 0) {
    throw statusError('STATUS_RESOURCE_IN_USE', op, `the domain still has ${dom.devices.size + dom.pasids.size} device(s) attached: detach them first`);
  }
  if (dom.tokens.size > 0) {
    throw statusError('STATUS_RESOURCE_IN_USE', op, `the domain still has ${dom.tokens.size} logical address token(s): FreeReservedLogicalAddressRange first`);
  }
  viaBackend(op, () => ctx.backend.freeDomain(dom.id), { EBUSY: 'STATUS_RESOURCE_IN_USE' });
  dom.deleted = true;
  ctx.forgetDomain(dom);
  ctx.reg.liveDomains.delete(dom);
}

/** IOMMU_DOMAIN_ATTACH_DEVICE_EX. */
export function attachDeviceEx(ctx: PlatformContext, Domain: IommuDmaDomain, DmaDevice: IommuDmaDevice): void {
  const op = 'AttachDeviceEx';
  ctx.live(op);
  const dom = ctx.reg.domain(Domain, op, 1);
  const d = ctx.reg.device(DmaDevice, op, 2);
  attach(ctx, dom, d, op);
}

function attach(ctx: PlatformContext, dom: DomainState, d: DeviceState, op: string): void {
  if (d.domain) {
    throw statusError('STATUS_INVALID_PARAMETER', op, `${d.pdo.bdf} is already attached to a domain (${d.domain === dom ? 'this one' : 'another one'}): DetachDeviceEx first`, 'DmaDevice');
  }
  if (d.removed) throw statusError('STATUS_DEVICE_REMOVED', op, `${d.pdo.bdf} was removed`, 'DmaDevice');
  const avail = availableDomainTypes(ctx, d, op);
  if ((avail & (1 << dom.wdkType)) === 0) {
    throw statusError('STATUS_ACCESS_DENIED', op, `${d.pdo.bdf} may not attach to this domain type now (available mask 0x${avail.toString(16)}); see QueryAvailableDomainTypes`, 'DmaDevice');
  }
  viaBackend(op, () => ctx.backend.attach(dom.id, d.id), {
    EINVAL: 'STATUS_ACCESS_DENIED',
    EADDRINUSE: 'STATUS_IN_USE',
    ENODEV: 'STATUS_DEVICE_REMOVED',
    ENOSPC: 'STATUS_INSUFFICIENT_RESOURCES',
  });
  d.domain = dom;
  dom.devices.add(d);
  dom.invalidateGeometry();
}

/** IOMMU_DOMAIN_DETACH_DEVICE_EX. */
export function detachDeviceEx(ctx: PlatformContext, DmaDevice: IommuDmaDevice): void {
  const op = 'DetachDeviceEx';
  ctx.live(op);
  const d = ctx.reg.device(DmaDevice, op, 1);
  detach(ctx, d, op, 1);
}

/**
 * Detach `d`. A device that was removed (known from a device event, or found by the backend's
 * ENODEV) is recorded detached all the same, and the call reports STATUS_DEVICE_REMOVED: the
 * hardware is gone, and the caller's clean-up (DeleteDevice, DeleteDomain, close) must work.
 */
function detach(ctx: PlatformContext, d: DeviceState, op: string, n: number): void {
  const dom = d.domain;
  if (!dom) throw invalidArg(op, n, 'DmaDevice', `${d.pdo.bdf} is not attached to any domain`);
  let failure: IommuError | null = d.removed ? statusError('STATUS_DEVICE_REMOVED', op, `${d.pdo.bdf} was removed; it is now recorded detached`, 'DmaDevice') : null;
  if (!failure) {
    try {
      ctx.backend.detach(d.id);
    } catch (e) {
      failure = toIommuError(e, op, { ENODEV: 'STATUS_DEVICE_REMOVED' });
      if (failure.code !== 'STATUS_DEVICE_REMOVED') throw failure;
      d.removed = true;
    }
  }
  d.domain = null;
  d.fault = null;
  dom.devices.delete(d);
  dom.invalidateGeometry();
  if (failure) throw failure;
}

function checkInputMapping(ctx: PlatformContext, v: unknown, expect: number, op: string, n: number, arg: string): void {
  if (v !== expect) {
    throw invalidArg(op, n, arg, `must be ${expect} for ${ctx.backend.capabilities.arch === 'arm64' ? 'PCI devices' : 'x86 devices'} (input-mapping IDs are for ACPI-enumerated Arm64 devices)`);
  }
}

/** IOMMU_DOMAIN_ATTACH_DEVICE (V1). */
export function attachDevice(ctx: PlatformContext, Domain: IommuDmaDomain, PhysicalDeviceObject: PhysicalDeviceObject, InputMappingIdBase: number, MappingCount: number): void {
  const op = 'AttachDevice';
  ctx.live(op);
  const dom = ctx.reg.domain(Domain, op, 1);
  const pdo = checkPdo(ctx, PhysicalDeviceObject, op, 2);
  checkInputMapping(ctx, InputMappingIdBase, 0, op, 3, 'InputMappingIdBase');
  checkInputMapping(ctx, MappingCount, 1, op, 4, 'MappingCount');
  attach(ctx, dom, v1Device(ctx, pdo, op), op);
}

/** IOMMU_DOMAIN_DETACH_DEVICE (V1). */
export function detachDevice(ctx: PlatformContext, Domain: IommuDmaDomain, PhysicalDeviceObject: PhysicalDeviceObject, InputMappingId: number): void {
  const op = 'DetachDevice';
  ctx.live(op);
  const dom = ctx.reg.domain(Domain, op, 1);
  const pdo = checkPdo(ctx, PhysicalDeviceObject, op, 2);
  checkInputMapping(ctx, InputMappingId, 0, op, 3, 'InputMappingId');
  const d = ctx.byPdo.get(pdo);
  if (!d || d.domain !== dom) throw invalidArg(op, 2, 'PhysicalDeviceObject', `${pdo.bdf} is not attached to this domain`);
  detach(ctx, d, op, 2);
}
