/**
 * Identity mappings (IOVA = physical address): MapIdentityRangeEx / UnmapIdentityRangeEx and
 * their V1 MDL twins. A physical description of several runs becomes one claim per run, all
 * validated before the first is mapped and rolled back together on failure.
 */
import type { StatusName } from '../../status.js';
import type { IOMMU_MAP_PHYSICAL_ADDRESS, MDL } from '../../wdk/types.js';
import { type Claim, ClaimKind } from '../iova-space.js';
import type { IommuDmaDomain } from '../objects.js';
import { type ResolvedPhysical, resolveMdlArgument, resolvePhysical } from '../physical.js';
import type { PlatformContext } from './context.js';
import { checkUsable, claimName } from './logical.js';
import { installClaim, removeClaim, unmapPages } from './mapping.js';
import type { DomainState } from './state.js';
import { PAGE, checkPermissions, hex, invalidArg, statusError } from './validate.js';

function identityDomain(ctx: PlatformContext, Domain: IommuDmaDomain, op: string): DomainState {
  const dom = ctx.reg.domain(Domain, op, 1);
  if (dom.kind !== 'translate' && dom.kind !== 'passthrough') {
    throw invalidArg(op, 1, 'Domain', 'is not a DomainTypeTranslate or DomainTypePassThrough domain');
  }
  if (dom.allocator) {
    throw statusError('STATUS_NOT_SUPPORTED', op, 'identity maps need explicit addresses, which this domain\'s Buddy logical allocator does not allow');
  }
  return dom;
}

function mapIdentity(dom: DomainState, op: string, perms: number, phys: ResolvedPhysical, nPhys: number, arg: string): void {
  const code = `STATUS_INVALID_PARAMETER_${nPhys}` as StatusName;
  const pieces = phys.runs.map((r) => ({ start: Number(r.pa >> 12n), pages: Number(r.length >> 12n), run: r }));
  // validate every piece (usable, no overlap with others or each other) before mapping any
  const sorted = pieces.slice().sort((a, b) => a.start - b.start);
  for (let i = 0; i < sorted.length; i++) {
    const p = sorted[i];
    if (i > 0 && sorted[i - 1].start + sorted[i - 1].pages > p.start) {
      throw statusError('STATUS_IN_USE', op, `the physical description names page ${hex(BigInt(p.start) * PAGE)} twice`);
    }
    checkUsable(dom, op, p.start, p.pages, nPhys, arg);
    const c = dom.space.conflict(p.start, p.pages);
    if (c) throw statusError('STATUS_IN_USE', op, `identity range ${hex(p.run.pa)}+${hex(p.run.length)} overlaps ${claimName(c)} at ${hex(BigInt(c.start) * PAGE)}`);
  }
  const done: Claim[] = [];
  try {
    for (const p of pieces) {
      done.push(installClaim(dom, op, p.start, p.pages, [p.run], perms, ClaimKind.Identity, { address: code, physical: code, overlap: 'STATUS_IN_USE', addressArg: arg, physicalArg: arg }));
    }
  } catch (e) {
    for (const c of done.reverse()) {
      try {
        removeClaim(dom, op, c);
      } catch {
        /* best effort: the original error is what the caller needs */
      }
    }
    throw e;
  }
}

function unmapIdentity(dom: DomainState, op: string, phys: ResolvedPhysical, arg: string): void {
  // validate all pieces first
  for (const r of phys.runs) {
    const start = Number(r.pa >> 12n);
    const pages = Number(r.length >> 12n);
    let cursor = start;
    for (const c of dom.space.overlapping(start, pages)) {
      if (c.kind !== ClaimKind.Identity || c.start > cursor) break;
      cursor = c.end;
    }
    if (cursor < start + pages) {
      throw statusError('STATUS_INVALID_PARAMETER', op, `physical range ${hex(r.pa)}+${hex(r.length)} is not identity-mapped in this domain`, arg);
    }
  }
  for (const r of phys.runs) unmapPages(dom, op, Number(r.pa >> 12n), Number(r.length >> 12n), ClaimKind.Identity, arg);
}

/** Resolves a member's physical description (an IOMMU_MAP_PHYSICAL_ADDRESS for the Ex members, an MDL for V1). */
type Resolve<A> = (arg: A, code: StatusName, op: string, argument: string) => ResolvedPhysical;

/** A map member: live platform, an identity-capable `Domain` (argument 1), `Permissions` (2), the physical description (3). */
function mapMember<A>(ctx: PlatformContext, op: string, Domain: IommuDmaDomain, Permissions: number, phys: A, resolve: Resolve<A>, argument: string): void {
  ctx.live(op);
  const dom = identityDomain(ctx, Domain, op);
  const perms = checkPermissions(Permissions, op, 2);
  mapIdentity(dom, op, perms, resolve(phys, 'STATUS_INVALID_PARAMETER_3', op, argument), 3, argument);
}

/** An unmap member: live platform, an identity-capable `Domain` (argument 1), the physical description (2). */
function unmapMember<A>(ctx: PlatformContext, op: string, Domain: IommuDmaDomain, phys: A, resolve: Resolve<A>, argument: string): void {
  ctx.live(op);
  const dom = identityDomain(ctx, Domain, op);
  unmapIdentity(dom, op, resolve(phys, 'STATUS_INVALID_PARAMETER_2', op, argument), argument);
}

/** IOMMU_MAP_IDENTITY_RANGE_EX. */
export function mapIdentityRangeEx(ctx: PlatformContext, Domain: IommuDmaDomain, Permissions: number, PhysicalAddressToMap: IOMMU_MAP_PHYSICAL_ADDRESS): void {
  mapMember(ctx, 'MapIdentityRangeEx', Domain, Permissions, PhysicalAddressToMap, resolvePhysical, 'PhysicalAddressToMap');
}

/** IOMMU_UNMAP_IDENTITY_RANGE_EX. */
export function unmapIdentityRangeEx(ctx: PlatformContext, Domain: IommuDmaDomain, MappedPhysicalAddress: IOMMU_MAP_PHYSICAL_ADDRESS): void {
  unmapMember(ctx, 'UnmapIdentityRangeEx', Domain, MappedPhysicalAddress, resolvePhysical, 'MappedPhysicalAddress');
}

/** IOMMU_MAP_IDENTITY_RANGE (V1). */
export function mapIdentityRange(ctx: PlatformContext, Domain: IommuDmaDomain, Permissions: number, Mdl: MDL): void {
  mapMember(ctx, 'MapIdentityRange', Domain, Permissions, Mdl, resolveMdlArgument, 'Mdl');
}

/** IOMMU_UNMAP_IDENTITY_RANGE (V1). */
export function unmapIdentityRange(ctx: PlatformContext, Domain: IommuDmaDomain, Mdl: MDL): void {
  unmapMember(ctx, 'UnmapIdentityRange', Domain, Mdl, resolveMdlArgument, 'Mdl');
}
