/**
 * Logical mappings: MapLogicalRangeEx / MapLogicalRange / UnmapLogicalRange, and the placement of
 * a new logical claim (an explicit address checked against the domain's usable ranges and
 * claims, or the Buddy allocator's choice). Shared with the reserved-token family.
 */
import type { IOMMU_MAP_PHYSICAL_ADDRESS, MDL } from '../../wdk/types.js';
import { Claim, ClaimKind, type PageRange } from '../iova-space.js';
import type { IommuDmaDomain } from '../objects.js';
import { resolveMdlArgument, resolvePhysical, spanOf } from '../physical.js';
import { alignedPage, exactNumber } from '../../util/u64.js';
import type { PlatformContext } from './context.js';
import { type MapStatuses, backendMapRun, backendUnmapRun, fastContiguousRange, installClaim, removeClaim, unmapPages } from './mapping.js';
import type { DomainState } from './state.js';
import { PAGE, PAGE_MASK, U64_MAX, checkPermissions, hex, invalidArg, optionalAddress, statusError } from './validate.js';

const MAP_EX: MapStatuses = {
  address: 'STATUS_INVALID_PARAMETER_4',
  physical: 'STATUS_INVALID_PARAMETER_3',
  overlap: 'STATUS_IN_USE',
  addressArg: 'ExplicitLogicalAddress',
  physicalArg: 'PhysicalAddressToMap',
};
const MAP_V1: MapStatuses = { ...MAP_EX, addressArg: 'LogicalAddress', physicalArg: 'Mdl' };

export function translateDomain(ctx: PlatformContext, Domain: IommuDmaDomain, op: string): DomainState {
  const dom = ctx.domain(Domain, op);
  if (dom.kind !== 'translate') throw invalidArg(op, 1, 'Domain', 'is not a DomainTypeTranslate domain');
  return dom;
}

export function claimName(c: Claim): string {
  return ['a logical mapping', 'an identity mapping', 'a reserved logical range (token)', 'a reserved region'][c.kind];
}

/** Whether pages [start, start+pages) lie inside one usable range. */
function usable(ranges: readonly PageRange[], start: number, pages: number): boolean {
  const last = start + pages - 1;
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i];
    if (r.start <= start && r.last >= last) return true;
  }
  return false;
}

/** STATUS_INVALID_PARAMETER_n unless pages [start, start+pages) lie in one usable IOVA range. */
export function checkUsable(dom: DomainState, op: string, start: number, pages: number, n: number, arg: string): void {
  if (!usable(dom.geometry(op).pages, start, pages)) {
    const g = dom.geometry(op).geometry.ranges.map((r) => `${hex(r.start)}-${hex(r.last)}`).join(', ');
    throw invalidArg(op, n, arg, `range ${hex(BigInt(start) * PAGE)}+${hex(BigInt(pages) * PAGE)} is outside the domain's usable IOVA ranges (${g})`);
  }
}

/** The Buddy policy's alignment for a claim of `pages` pages: the next power of two. */
function buddyAlignment(pages: number): number {
  let align = 1;
  while (align < pages) align *= 2;
  return align;
}

/**
 * Choose or check the logical address of a new claim of `pages` pages.
 * `nAddr` is the position of the explicit address (its misalignment status).
 */
export function placeLogical(
  dom: DomainState,
  op: string,
  pages: number,
  explicit: bigint | undefined,
  min: bigint | undefined,
  max: bigint | undefined,
  nAddr: number,
  overlap: 'STATUS_IN_USE' | 'STATUS_RESOURCE_IN_USE',
): number {
  const length = BigInt(pages) * PAGE;
  if (dom.allocator) {
    if (explicit !== undefined) {
      throw statusError('STATUS_NOT_SUPPORTED', op, 'this domain has a Buddy logical allocator, which does not accept an ExplicitLogicalAddress', 'ExplicitLogicalAddress');
    }
    const lo = min === undefined ? 1 : Math.max(1, Number((min + PAGE_MASK) >> 12n));
    const hi = Math.min(dom.allocator.maxPage, max === undefined ? Number.MAX_SAFE_INTEGER : Number(((max + 1n) >> 12n) - 1n));
    if (min !== undefined && max !== undefined && min > max) {
      throw statusError('STATUS_INVALID_PARAMETER_MIX', op, `MinLogicalAddress ${hex(min)} > MaxLogicalAddress ${hex(max)}`);
    }
    const align = buddyAlignment(pages);
    const p = dom.space.allocate(pages, align, lo, hi, dom.geometry(op).pages);
    if (p < 0) {
      if (min !== undefined || max !== undefined) {
        throw statusError('STATUS_INVALID_PARAMETER_MIX', op, `no free ${hex(length)}-byte range aligned to ${hex(BigInt(align) * PAGE)} between ${hex(BigInt(lo) * PAGE)} and ${hex(BigInt(hi + 1) * PAGE - 1n)}`);
      }
      throw statusError('STATUS_INSUFFICIENT_RESOURCES', op, `logical address space exhausted: no free ${hex(length)}-byte range within ${dom.allocator.addressWidth} bits`);
    }
    return p;
  }
  if (explicit === undefined) {
    throw statusError('STATUS_NOT_SUPPORTED', op, 'this domain has no logical allocator: an ExplicitLogicalAddress is required', 'ExplicitLogicalAddress');
  }
  if ((explicit & PAGE_MASK) !== 0n) throw invalidArg(op, nAddr, 'ExplicitLogicalAddress', `${hex(explicit)} is not page-aligned`);
  if (explicit + length - 1n > U64_MAX) throw invalidArg(op, nAddr, 'ExplicitLogicalAddress', `${hex(explicit)} + ${hex(length)} wraps past 2^64`);
  const start = Number(explicit >> 12n);
  checkUsable(dom, op, start, pages, nAddr, 'ExplicitLogicalAddress');
  const c = dom.space.conflict(start, pages);
  if (c) throw statusError(overlap, op, `${hex(explicit)}+${hex(length)} overlaps ${claimName(c)} at ${hex(BigInt(c.start) * PAGE)}+${hex(BigInt(c.pages) * PAGE)}`, 'ExplicitLogicalAddress');
  return start;
}

/**
 * IOMMU_MAP_LOGICAL_RANGE_EX: returns LogicalAddressOut. (Its Explicit/Min/Max parameters are the
 * WDK's, shared with ReserveLogicalAddressRange: the signatures mirror the WDK prototypes.)
 */
export function mapLogicalRangeEx(
  ctx: PlatformContext,
  Domain: IommuDmaDomain,
  Permissions: number,
  PhysicalAddressToMap: IOMMU_MAP_PHYSICAL_ADDRESS,
  ExplicitLogicalAddress: bigint | null | undefined,
  MinLogicalAddress: bigint | null | undefined,
  MaxLogicalAddress: bigint | null | undefined,
): bigint {
  const op = 'MapLogicalRangeEx';
  ctx.live(op);
  const dom = translateDomain(ctx, Domain, op);
  // Fast path: a valid map of one contiguous range at an explicit address (domain without an
  // allocator) or at the Buddy allocator's choice (no Explicit/Min/Max), all in exact numbers. Any
  // doubt falls through to the general path below, which checks (and fails) in the WDK's order.
  const noBounds = (MinLogicalAddress === undefined || MinLogicalAddress === null) && (MaxLogicalAddress === undefined || MaxLogicalAddress === null);
  const range = noBounds ? fastContiguousRange(Permissions, PhysicalAddressToMap) : null;
  if (range !== null) {
    const Base = range.Base;
    const Size = range.Size;
    // page numbers (int32: addresses below 8 TiB, page-aligned), or -1
    const pfn = alignedPage(Base);
    const pages = alignedPage(Size);
    let start = -1;
    if (pfn >= 0 && pages > 0) {
      if (dom.allocator === null) {
        if (typeof ExplicitLogicalAddress === 'bigint') {
          const s = alignedPage(ExplicitLogicalAddress);
          if (s >= 0 && usable(dom.geometry(op).pages, s, pages) && dom.space.conflict(s, pages) === undefined) start = s;
        }
      } else if (ExplicitLogicalAddress === undefined || ExplicitLogicalAddress === null) {
        // -1 when nothing fits: the general path places again and reports why
        start = dom.space.allocate(pages, buddyAlignment(pages), 1, dom.allocator.maxPage, dom.geometry(op).pages);
      }
    }
    if (start >= 0) {
      const iova = typeof ExplicitLogicalAddress === 'bigint' ? ExplicitLogicalAddress : BigInt(start) * PAGE;
      backendMapRun(dom, op, start, pages, pfn, Permissions, iova, Base, Size, MAP_EX, spanOf(range));
      dom.space.insert(dom.space.claim(start, pages, ClaimKind.Logical, Permissions, pfn, null, true));
      return iova;
    }
  }
  const perms = checkPermissions(Permissions, op, 2);
  const phys = resolvePhysical(PhysicalAddressToMap, 'STATUS_INVALID_PARAMETER_3', op, 'PhysicalAddressToMap');
  const explicit = optionalAddress(ExplicitLogicalAddress, op, 4, 'ExplicitLogicalAddress');
  const min = optionalAddress(MinLogicalAddress, op, 5, 'MinLogicalAddress');
  const max = optionalAddress(MaxLogicalAddress, op, 6, 'MaxLogicalAddress');
  const pages = Number(phys.length >> 12n);
  const start = placeLogical(dom, op, pages, explicit, min, max, 4, 'STATUS_IN_USE');
  installClaim(dom, op, start, pages, phys.runs, perms, ClaimKind.Logical, MAP_EX);
  return BigInt(start) * PAGE;
}

/** IOMMU_MAP_LOGICAL_RANGE (V1): map an MDL at LogicalAddress. */
export function mapLogicalRange(ctx: PlatformContext, Domain: IommuDmaDomain, Permissions: number, Mdl: MDL, LogicalAddress: bigint): void {
  const op = 'MapLogicalRange';
  ctx.live(op);
  const dom = translateDomain(ctx, Domain, op);
  const perms = checkPermissions(Permissions, op, 2);
  const phys = resolveMdlArgument(Mdl, 'STATUS_INVALID_PARAMETER_3', op, 'Mdl');
  if (typeof LogicalAddress !== 'bigint') throw invalidArg(op, 4, 'LogicalAddress', 'must be a bigint');
  if (LogicalAddress < 0n || LogicalAddress > U64_MAX) throw invalidArg(op, 4, 'LogicalAddress', 'must be within 0..2^64-1');
  if (dom.allocator) throw statusError('STATUS_NOT_SUPPORTED', op, 'this domain has a Buddy logical allocator, which does not accept explicit addresses', 'LogicalAddress');
  const pages = Number(phys.length >> 12n);
  const start = placeLogical(dom, op, pages, LogicalAddress, undefined, undefined, 4, 'STATUS_IN_USE');
  installClaim(dom, op, start, pages, phys.runs, perms, ClaimKind.Logical, MAP_V1);
}

/** IOMMU_UNMAP_LOGICAL_RANGE: any page sub-range of logical mappings (Ex or V1). */
export function unmapLogicalRange(ctx: PlatformContext, Domain: IommuDmaDomain, LogicalAddress: bigint, NumberOfPages: bigint | number): void {
  const op = 'UnmapLogicalRange';
  ctx.live(op);
  const dom = ctx.domain(Domain, op);
  if (dom.kind !== 'translate') throw invalidArg(op, 1, 'Domain', 'is not a DomainTypeTranslate domain');
  // Fast path: exactly one whole logical claim, addressed in exact numbers.
  if (typeof LogicalAddress === 'bigint') {
    const start = alignedPage(LogicalAddress); // int32 page number, or -1
    const np = typeof NumberOfPages === 'number' ? NumberOfPages : typeof NumberOfPages === 'bigint' ? exactNumber(NumberOfPages) : 0;
    if (start >= 0 && np > 0) {
      const c = dom.space.at(start);
      if (c !== undefined && c.start === start && c.pages === np && c.kind === ClaimKind.Logical) {
        if (c.backed) backendUnmapRun(dom, op, start, np, LogicalAddress);
        dom.space.release(c);
        return;
      }
    }
  }
  if (typeof LogicalAddress !== 'bigint' || LogicalAddress < 0n || LogicalAddress > U64_MAX) throw invalidArg(op, 2, 'LogicalAddress', 'must be a bigint within 0..2^64-1');
  if ((LogicalAddress & PAGE_MASK) !== 0n) throw invalidArg(op, 2, 'LogicalAddress', `${hex(LogicalAddress)} is not page-aligned`);
  const n = typeof NumberOfPages === 'bigint' ? NumberOfPages : Number.isSafeInteger(NumberOfPages) ? BigInt(NumberOfPages) : -1n;
  if (n <= 0n) throw invalidArg(op, 3, 'NumberOfPages', 'must be a positive integer');
  if (LogicalAddress + n * PAGE - 1n > U64_MAX) throw invalidArg(op, 3, 'NumberOfPages', `${hex(LogicalAddress)} + ${n} pages wraps past 2^64`);
  const start = Number(LogicalAddress >> 12n);
  const pages = Number(n);
  // exactly one whole claim
  const c = dom.space.at(start);
  if (c && c.start === start && c.pages === pages && c.kind === ClaimKind.Logical) {
    removeClaim(dom, op, c);
    return;
  }
  unmapPages(dom, op, start, pages, ClaimKind.Logical, 'LogicalAddress');
}
