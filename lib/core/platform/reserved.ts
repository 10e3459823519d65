/**
 * Reserved logical ranges (tokens): ReserveLogicalAddressRange / FreeReservedLogicalAddressRange,
 * and the segments mapped inside a token (MapReservedLogicalRange / UnmapReservedLogicalRange,
 * whose MappedSegment is a `SegmentHandle`).
 */
import type { PhysicalRun } from '../../backend/contract.js';
import type { StatusName } from '../../status.js';
import type { IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT, IOMMU_MAP_PHYSICAL_ADDRESS } from '../../wdk/types.js';
import { Claim, ClaimKind } from '../iova-space.js';
import { type IommuDmaDomain, LogicalAddressToken } from '../objects.js';
import { OrderedIndex } from '../../util/ordered-index.js';
import { resolvePhysical, spanOf } from '../physical.js';
import { alignedPage } from '../../util/u64.js';
import { toIommuError, viaBackend } from './backend-call.js';
import type { PlatformContext } from './context.js';
import { placeLogical, translateDomain } from './logical.js';
import { backendUnmapRun, fastContiguousRange, mapRun } from './mapping.js';
import { TokenState } from './state.js';
import { PAGE, PAGE_MASK, U64_MAX, checkPermissions, hex, invalidArg, optionalAddress, statusError } from './validate.js';

/** MapReservedLogicalRange's statuses for the backend's errnos. */
const RESERVED_MAP: Partial<Record<string, StatusName>> = {
  EINVAL: 'STATUS_INVALID_PARAMETER_4',
  EFAULT: 'STATUS_INVALID_PARAMETER_4',
  EEXIST: 'STATUS_RESOURCE_IN_USE',
};

/**
 * IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT as MapReservedLogicalRange returns it: frozen
 * public fields (OwningToken, Offset, Size), and, in private fields no caller can reach or forge,
 * the platform that made it, its token and its claim (cleared once unmapped). This replaces a
 * per-platform WeakMap from segment to claim, whose set + delete cost more than the rest of a
 * reserved map + unmap pair.
 */
export class SegmentHandle implements IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT {
  readonly OwningToken: LogicalAddressToken;
  readonly Offset: bigint;
  readonly Size: bigint;
  readonly #owner: PlatformContext;
  readonly #token: TokenState;
  #claim: Claim | null;

  constructor(owner: PlatformContext, token: TokenState, offset: bigint, size: bigint, claim: Claim) {
    this.OwningToken = token.handle;
    this.Offset = offset;
    this.Size = size;
    this.#owner = owner;
    this.#token = token;
    this.#claim = claim;
    Object.freeze(this);
  }

  /** `s` when it is a still-mapped segment made by `owner`, else undefined. */
  static live(s: object, owner: PlatformContext): SegmentHandle | undefined {
    return #claim in s && s.#owner === owner && s.#claim !== null ? s : undefined;
  }

  static tokenOf(s: SegmentHandle): TokenState {
    return s.#token;
  }

  static claimOf(s: SegmentHandle): Claim {
    return s.#claim as Claim;
  }

  static release(s: SegmentHandle): void {
    s.#claim = null;
  }
}

function runsOf(runs: PhysicalRun[]): { pfn: number; runs: PhysicalRun[] | null } {
  return runs.length === 1 ? { pfn: Number(runs[0].pa >> 12n), runs: null } : { pfn: -1, runs };
}

/**
 * IOMMU_RESERVE_LOGICAL_ADDRESS_RANGE: returns the token. (Its Explicit/Min/Max parameter list is
 * MapLogicalRangeEx's: both mirror the WDK prototypes, so the two headers stay alike in shape.)
 */
export function reserveLogicalAddressRange(
  ctx: PlatformContext,
  Domain: IommuDmaDomain,
  Size: bigint | number,
  ExplicitLogicalAddress: bigint | null | undefined,
  MinLogicalAddress: bigint | null | undefined,
  MaxLogicalAddress: bigint | null | undefined,
): LogicalAddressToken {
  const op = 'ReserveLogicalAddressRange';
  ctx.live(op);
  const dom = translateDomain(ctx, Domain, op);
  const size = typeof Size === 'bigint' ? Size : Number.isSafeInteger(Size) ? BigInt(Size) : -1n;
  if (size <= 0n || (size & PAGE_MASK) !== 0n || size > U64_MAX) throw invalidArg(op, 2, 'Size', `${String(Size)} is not a positive multiple of PAGE_SIZE (4096)`);
  const explicit = optionalAddress(ExplicitLogicalAddress, op, 3, 'ExplicitLogicalAddress');
  const min = optionalAddress(MinLogicalAddress, op, 4, 'MinLogicalAddress');
  const max = optionalAddress(MaxLogicalAddress, op, 5, 'MaxLogicalAddress');
  const pages = Number(size >> 12n);
  const start = placeLogical(dom, op, pages, explicit, min, max, 3, 'STATUS_IN_USE');
  const claim = new Claim(start, pages, ClaimKind.Token, 0, -1, null, false);
  claim.segments = new OrderedIndex<Claim>();
  dom.space.insert(claim);
  const handle = new LogicalAddressToken(BigInt(start) * PAGE, size);
  const t = new TokenState(handle, dom, claim);
  ctx.reg.tokens.set(handle, t);
  dom.tokens.add(t);
  return handle;
}

/** IOMMU_FREE_RESERVED_LOGICAL_ADDRESS_RANGE. */
export function freeReservedLogicalAddressRange(ctx: PlatformContext, LogicalAddressToken: LogicalAddressToken): void {
  const op = 'FreeReservedLogicalAddressRange';
  ctx.live(op);
  const t = ctx.reg.token(LogicalAddressToken, op, 1);
  const segs = t.claim.segments!;
  if (segs.size > 0) throw statusError('STATUS_RESOURCE_IN_USE', op, `${segs.size} segment(s) of the token are still mapped: UnmapReservedLogicalRange first`);
  t.domain.space.remove(t.claim);
  t.domain.tokens.delete(t);
  t.freed = true;
}

/** IOMMU_MAP_RESERVED_LOGICAL_RANGE: returns the MappedSegment. */
export function mapReservedLogicalRange(
  ctx: PlatformContext,
  LogicalAddressToken: LogicalAddressToken,
  Offset: bigint | number,
  Permissions: number,
  PhysicalAddressToMap: IOMMU_MAP_PHYSICAL_ADDRESS,
): IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT {
  const op = 'MapReservedLogicalRange';
  ctx.live(op);
  const t = ctx.reg.token(LogicalAddressToken, op, 1);
  if (t.domain.deleted) throw statusError('STATUS_UNSUCCESSFUL', op, 'the token\'s domain was deleted');
  // Fast path: a bigint offset and one ContiguousRange, valid and free, in int32 page numbers;
  // anything else goes through the general path below (same checks, same order, same errors).
  const range = typeof Offset === 'bigint' ? fastContiguousRange(Permissions, PhysicalAddressToMap) : null;
  if (range !== null && typeof Offset === 'bigint') {
    const Base = range.Base;
    const Size = range.Size;
    const offPage = alignedPage(Offset);
    const pfn = alignedPage(Base);
    const pages = alignedPage(Size);
    const claim = t.claim;
    const segs = claim.segments!;
    if (offPage >= 0 && pfn >= 0 && pages > 0 && offPage + pages <= claim.pages) {
      const prev = segs.floor(offPage + pages - 1);
      if (prev === undefined || prev.end <= offPage) {
        const dom = t.domain;
        const iova = t.handle.LogicalAddressBase + Offset;
        try {
          mapRun(dom.backend, dom.id, claim.start + offPage, pages, pfn, Permissions, iova, Base, Size, spanOf(range));
        } catch (e) {
          throw toIommuError(e, op, RESERVED_MAP, { iova, length: Size, argument: 'PhysicalAddressToMap' });
        }
        const seg = new Claim(offPage, pages, ClaimKind.Logical, Permissions, pfn, null, true);
        segs.set(offPage, seg);
        return new SegmentHandle(ctx, t, Offset, Size, seg);
      }
    }
  }
  const off = typeof Offset === 'bigint' ? Offset : Number.isSafeInteger(Offset) ? BigInt(Offset) : -1n;
  if (off < 0n || (off & PAGE_MASK) !== 0n) throw invalidArg(op, 2, 'Offset', `${String(Offset)} is not a page-aligned byte offset`);
  const perms = checkPermissions(Permissions, op, 3);
  const phys = resolvePhysical(PhysicalAddressToMap, 'STATUS_INVALID_PARAMETER_4', op, 'PhysicalAddressToMap');
  const size = t.handle.Size;
  if (off + phys.length > size) {
    throw statusError('STATUS_INVALID_PARAMETER_MIX', op, `Offset ${hex(off)} + ${hex(phys.length)} bytes exceeds the token's ${hex(size)} bytes`);
  }
  const offPage = Number(off >> 12n);
  const pages = Number(phys.length >> 12n);
  const segs = t.claim.segments!;
  const prev = segs.floor(offPage + pages - 1);
  if (prev && prev.end > offPage) {
    throw statusError('STATUS_RESOURCE_IN_USE', op, `Offset ${hex(off)}+${hex(phys.length)} overlaps a mapped segment at offset ${hex(BigInt(prev.start) * PAGE)}`);
  }
  const dom = t.domain;
  const start = t.claim.start + offPage;
  const { pfn, runs } = runsOf(phys.runs);
  const seg = new Claim(offPage, pages, ClaimKind.Logical, perms, pfn, runs, perms !== 0);
  if (seg.backed) {
    const iova = BigInt(start) * PAGE;
    viaBackend(op, () => dom.backend.map(dom.id, iova, phys.runs, perms), RESERVED_MAP, { iova, length: phys.length, argument: 'PhysicalAddressToMap' });
  }
  segs.set(offPage, seg);
  return new SegmentHandle(ctx, t, off, phys.length, seg);
}

/** IOMMU_UNMAP_RESERVED_LOGICAL_RANGE. */
export function unmapReservedLogicalRange(ctx: PlatformContext, MappedSegment: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT): void {
  const op = 'UnmapReservedLogicalRange';
  ctx.live(op);
  const seg = MappedSegment && typeof MappedSegment === 'object' ? SegmentHandle.live(MappedSegment, ctx) : undefined;
  if (!seg) throw statusError('STATUS_INVALID_PARAMETER', op, 'MappedSegment is not a mapped segment from MapReservedLogicalRange (or was already unmapped)', 'MappedSegment');
  const t = SegmentHandle.tokenOf(seg);
  const claim = SegmentHandle.claimOf(seg);
  // the segment's pages (token start + segment start, its page count); iova = token base + Offset, its own immutable bigint
  if (claim.backed) backendUnmapRun(t.domain, op, t.claim.start + claim.start, claim.pages, t.handle.LogicalAddressBase + seg.Offset);
  t.claim.segments!.delete(claim.start);
  SegmentHandle.release(seg);
}
