/**
 * Map and unmap over a domain's claims and the backend's leaf operations. Windows lets a caller
 * unmap any page sub-range of a mapping; Linux (and the backend contract) only removes whole
 * areas, so a partial unmap removes the area and maps the kept head/tail again. Every operation
 * validates fully before its first backend call, so a failure leaves no partial state.
 */
import type { IommuBackend, MapSource, MemorySpan, PhysicalRun } from '../../backend/contract.js';
import type { IommuError } from '../../errors.js';
import type { StatusName } from '../../status.js';
import { MapPhysicalAddressTypeContiguousRange } from '../../wdk/constants.js';
import { Claim, ClaimKind } from '../iova-space.js';
import { sliceRuns } from '../physical.js';
import { toIommuError } from './backend-call.js';
import type { DomainState } from './state.js';
import { PAGE, statusError } from './validate.js';

export { PAGE };

/** Statuses a map's kernel errnos turn into, per member (which argument is "the address"). */
export interface MapStatuses {
  /** EINVAL (outside the usable ranges, alignment) and EOVERFLOW. */
  readonly address: StatusName;
  /** EFAULT: the physical memory is not memory the platform can map. */
  readonly physical: StatusName;
  /** EEXIST / EADDRINUSE. */
  readonly overlap: StatusName;
  /** The member's argument names for `address` and `physical` failures (`IommuError.argument`). */
  readonly addressArg?: string;
  readonly physicalArg?: string;
}

/**
 * The fast paths' test of a map request: permissions read and/or write, and a ContiguousRange
 * description with bigint Base and Size. Returns that range (no copy), or null when anything is
 * different; the caller then takes its general path, which checks everything in the WDK's order.
 */
export function fastContiguousRange(Permissions: unknown, PhysicalAddressToMap: unknown): { readonly Base: bigint; readonly Size: bigint } | null {
  if (Permissions !== 3 && Permissions !== 1 && Permissions !== 2) return null;
  if (PhysicalAddressToMap === null || typeof PhysicalAddressToMap !== 'object') return null;
  const d = PhysicalAddressToMap as { MapType?: unknown; ContiguousRange?: { Base?: unknown; Size?: unknown } };
  if (d.MapType !== MapPhysicalAddressTypeContiguousRange) return null;
  const r = d.ContiguousRange;
  return r !== undefined && r !== null && typeof r.Base === 'bigint' && typeof r.Size === 'bigint' ? (r as { Base: bigint; Size: bigint }) : null;
}

/** Install one claim: the kernel mapping (unless perms are 0) and the bookkeeping. */
export function installClaim(
  dom: DomainState,
  operation: string,
  start: number,
  pages: number,
  runs: readonly PhysicalRun[],
  perms: number,
  kind: ClaimKind,
  st: MapStatuses,
): Claim {
  const single = runs.length === 1;
  const pfn = single ? Number(runs[0].pa >> 12n) : -1;
  const backed = perms !== 0;
  if (backed) backendMap(dom, operation, pageBytes(start), runs, perms, pages, st);
  const claim = new Claim(start, pages, kind, perms, pfn, single ? null : runs.slice(), backed);
  dom.space.insert(claim);
  return claim;
}

/** `pages` 4 KiB pages in bytes, as a bigint (one allocation; none for a single page). */
export function pageBytes(pages: number): bigint {
  if (pages === 1) return PAGE;
  return pages <= MAX_SAFE_PAGES ? BigInt(pages * 4096) : BigInt(pages) * PAGE;
}
const MAX_SAFE_PAGES = Math.floor(Number.MAX_SAFE_INTEGER / 4096);

/**
 * The backend's map of one area at `iova`, its errnos turned into the member's statuses (what
 * `kernel()` does, without a closure per call).
 */
export function backendMap(dom: DomainState, operation: string, iova: bigint, source: MapSource, perms: number, pages: number, st: MapStatuses): void {
  try {
    dom.backend.map(dom.id, iova, source, perms);
  } catch (e) {
    throw mapError(e, operation, iova, pages, st);
  }
}

const INT32_MAX = 0x7fffffff;

/**
 * A fast path's map of one physically contiguous run whose addresses it has already turned into
 * int32 page numbers (`alignedPage`): IOVA page `page`, `pages` pages, PA page `pfn`; `iova`, `pa`
 * and `length` are the same values as the bigints it read (once: a ContiguousRange is the
 * caller's object). Backends with the page-number lane (`mapPageRun`) take the numbers, so
 * nothing is converted or checked twice; the others get `map` with the bigints, as does a number
 * at or above 2^31, outside the lane's domain (a Buddy placement high in a wide domain). The one
 * place the fast paths describe memory to a backend. `span`: the memory's identity when the caller
 * described DmaMemory (`spanOf`), passed to `map` instead of the run (same pages; the backend then
 * needs no PA → memory lookup). Throws what the backend throws.
 */
export function mapRun(backend: IommuBackend, id: number, page: number, pages: number, pfn: number, perms: number, iova: bigint, pa: bigint, length: bigint, span?: MemorySpan): void {
  if (backend.mapPageRun !== undefined && page <= INT32_MAX && pages <= INT32_MAX && pfn <= INT32_MAX) backend.mapPageRun(id, page, pages, pfn, perms);
  else backend.map(id, iova, span ?? [{ pa, length }], perms);
}

/** `mapRun` with its errnos turned into the member's statuses (as `backendMap`). */
export function backendMapRun(dom: DomainState, operation: string, page: number, pages: number, pfn: number, perms: number, iova: bigint, pa: bigint, length: bigint, st: MapStatuses, span?: MemorySpan): void {
  try {
    mapRun(dom.backend, dom.id, page, pages, pfn, perms, iova, pa, length, span);
  } catch (e) {
    throw mapError(e, operation, iova, pages, st);
  }
}

/** A map's backend failure as the member's IommuError. */
function mapError(e: unknown, operation: string, iova: bigint, pages: number, st: MapStatuses): IommuError {
  return toIommuError(e, operation, {
    EINVAL: st.address,
    EOVERFLOW: st.address,
    EFAULT: st.physical,
    EEXIST: st.overlap,
    EADDRINUSE: st.overlap,
  }, {
    iova,
    length: pageBytes(pages),
    argumentFor: { EINVAL: st.addressArg, EOVERFLOW: st.addressArg, EFAULT: st.physicalArg, EEXIST: st.addressArg, EADDRINUSE: st.addressArg },
  });
}

/** The backend's unmap of [iova, iova+length), errnos turned into statuses. */
export function backendUnmap(dom: DomainState, operation: string, iova: bigint, length: bigint): void {
  try {
    dom.backend.unmap(dom.id, iova, length);
  } catch (e) {
    throw toIommuError(e, operation, {}, { iova, length });
  }
}

/**
 * A fast path's unmap of exactly one area, pages [page, page+pages) in int32 page numbers, `iova`
 * the same address as the caller's bigint: through the page-number lane (`unmapPageRange`) when
 * the backend has one and both numbers are below 2^31, else `unmap`. Errnos turned into statuses
 * as `backendUnmap`.
 */
export function backendUnmapRun(dom: DomainState, operation: string, page: number, pages: number, iova: bigint): void {
  const backend = dom.backend;
  try {
    if (backend.unmapPageRange !== undefined && page <= INT32_MAX && pages <= INT32_MAX) backend.unmapPageRange(dom.id, page, pages);
    else backend.unmap(dom.id, iova, pageBytes(pages));
  } catch (e) {
    throw toIommuError(e, operation, {}, { iova, length: pageBytes(pages) });
  }
}

/** Remove a whole claim (kernel area and bookkeeping). */
export function removeClaim(dom: DomainState, operation: string, claim: Claim): void {
  if (claim.backed) backendUnmap(dom, operation, pageBytes(claim.start), pageBytes(claim.pages));
  dom.space.remove(claim);
}

/**
 * Unmap pages [start, start+pages) that must all be covered by claims of `kind` (no gaps).
 * Claims cut by the range are split: the kept parts are mapped again with their own pages.
 */
export function unmapPages(dom: DomainState, operation: string, start: number, pages: number, kind: ClaimKind, argument: string): void {
  const end = start + pages;
  const claims = dom.space.overlapping(start, pages);
  // validate coverage before touching anything
  let cursor = start;
  for (const c of claims) {
    if (c.kind !== kind || c.start > cursor) break;
    cursor = c.end;
  }
  if (cursor < end || claims.some((c) => c.kind !== kind)) {
    const what = kind === ClaimKind.Identity ? 'identity-mapped' : 'mapped by MapLogicalRange(Ex)';
    throw statusError(
      'STATUS_INVALID_PARAMETER',
      operation,
      `range 0x${(BigInt(start) * PAGE).toString(16)}+0x${(BigInt(pages) * PAGE).toString(16)} is not entirely ${what} (first page not covered: 0x${(BigInt(cursor) * PAGE).toString(16)})`,
      argument,
    );
  }
  for (const c of claims) {
    const keepHead = start > c.start ? start - c.start : 0;
    const keepTail = c.end > end ? c.end - end : 0;
    const runs = c.physical();
    removeClaim(dom, operation, c);
    const pieces: Array<[number, number]> = [];
    if (keepHead > 0) pieces.push([c.start, keepHead]);
    if (keepTail > 0) pieces.push([end, keepTail]);
    for (const [ps, pp] of pieces) {
      const off = BigInt(ps - c.start) * PAGE;
      const pieceRuns = sliceRuns(runs, off, BigInt(pp) * PAGE);
      try {
        installClaim(dom, operation, ps, pp, pieceRuns, c.perms, c.kind, REMAP_STATUSES);
      } catch (e) {
        // The kept part could not be mapped again: it is now unmapped, and the error says so.
        throw statusError(
          'STATUS_UNSUCCESSFUL',
          operation,
          `splitting a mapping failed: pages 0x${(BigInt(ps) * PAGE).toString(16)}+0x${(BigInt(pp) * PAGE).toString(16)} could not be mapped again and are now unmapped (${(e as Error).message})`,
        );
      }
    }
  }
}

const REMAP_STATUSES: MapStatuses = {
  address: 'STATUS_UNSUCCESSFUL',
  physical: 'STATUS_UNSUCCESSFUL',
  overlap: 'STATUS_UNSUCCESSFUL',
};
