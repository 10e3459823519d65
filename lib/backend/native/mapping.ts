/**
 * The area shadow's slow paths, shared by both kernel interfaces: the general map and unmap (every
 * argument check and error the fast paths in backend.ts leave to them), multi-piece kernel maps,
 * replay into a kernel that forgot (type1), and the emulated identity maps of passthrough domains.
 * Each function takes the ops table it drives; the kernel is reached only through it.
 */
import type { DomainGeometry, MapSource } from '../contract.js';
import { checkSpan, isSpan } from '../memory-span.js';
import type { NativeAllocation, NativeMemoryPool, Piece } from './memory.js';
import type { KernelOps } from './ops.js';
import { AreaRec, type DomainRec, type IdentityRec, U64_END } from './records.js';
import { ERR, PAGE, U64_MAX, checkU64, errnoOf, fail, hex } from './util.js';

/** Map pieces back to back from `iova`; all or nothing. */
export function kernelMapPieces<KD>(ops: KernelOps<KD, unknown>, dom: DomainRec<KD>, iova: bigint, pieces: readonly Piece[], perms: number): void {
  let at = iova;
  let done = 0;
  try {
    for (const p of pieces) {
      ops.map(dom, at, p, perms);
      at += p.length;
      done++;
    }
  } catch (e) {
    if (done > 0) {
      try {
        ops.unmap(dom, iova, at - iova);
      } catch {
        /* best effort */
      }
    }
    throw e;
  }
}

/** The kernel side of removing whole areas covering exactly [iova, iova + length). */
export function unmapAreas<KD>(ops: KernelOps<KD, unknown>, dom: DomainRec<KD>, iova: bigint, length: bigint): void {
  if (dom.type === 'translate' && ops.active(dom)) {
    try {
      ops.unmap(dom, iova, length);
    } catch (e) {
      // type1 v2 refuses to bisect with EINVAL; the contract says ENOENT for a cut.
      if (errnoOf(e) === ERR.EINVAL) fail(ERR.ENOENT, ops.unmapSyscall, 'the kernel refused to cut a mapping');
      throw e;
    }
  }
}

/** The kernel side of a new area (translate domains the kernel knows of). */
export function mapArea<KD>(ops: KernelOps<KD, unknown>, dom: DomainRec<KD>, iova: bigint, pieces: readonly Piece[], perms: number): void {
  if (dom.type === 'translate' && ops.active(dom)) {
    if (pieces.length === 1) ops.map(dom, iova, pieces[0], perms);
    else kernelMapPieces(ops, dom, iova, pieces, perms);
  }
}

/** map() with every check; `geometry` is read only once the arguments are known good. */
export function mapGeneral<KD>(ops: KernelOps<KD, unknown>, pool: NativeMemoryPool, dom: DomainRec<KD>, geometry: () => DomainGeometry, iova: bigint, source: MapSource, perms: number): void {
  const syscall = ops.mapSyscall;
  checkU64(iova, 'iova', syscall);
  if (typeof perms !== 'number' || !Number.isInteger(perms)) throw new TypeError('perms must be an integer');
  if (perms === 0 || (perms & ~3) !== 0) fail(ERR.EINVAL, syscall, `perms ${perms}: must be read (1) and/or write (2)`);
  let total = 0n;
  if (isSpan(source)) {
    checkSpan(source, syscall);
    total = source.length;
  } else {
    for (let k = 0; k < source.length; k++) {
      const r = source[k];
      if (typeof r !== 'object' || r === null || typeof r.pa !== 'bigint' || typeof r.length !== 'bigint') throw new TypeError('each run must be { pa: bigint, length: bigint }');
      if (r.length <= 0n || r.pa < 0n) fail(ERR.EINVAL, syscall, `run ${hex(r.pa)}+${hex(r.length)}`);
      total = k === 0 ? r.length : total + r.length;
    }
  }
  if (total === 0n) fail(ERR.EINVAL, syscall, 'nothing to map');
  const end = iova + total;
  if (end > U64_END) fail(ERR.EOVERFLOW, syscall, 'iova + length wraps');
  const g = dom.geometry ?? geometry();
  if (iova % g.alignment !== 0n || total % g.alignment !== 0n) fail(ERR.EINVAL, syscall, `iova ${hex(iova)} / length ${hex(total)} not aligned to ${hex(g.alignment)}`);
  let inside = false;
  for (const r of g.ranges)
    if (r.start <= iova && end <= r.last + 1n) {
      inside = true;
      break;
    }
  if (!inside) fail(ERR.EINVAL, syscall, `${hex(iova)}..${hex(end - 1n)} is outside the usable IOVA ranges`);
  const next = dom.areas.firstEndingAfter(iova);
  if (next !== undefined && next.iova < end) fail(ERR.EEXIST, syscall, `overlaps the area at ${hex(next.iova)}`);
  const pieces = pool.pieces(source, syscall);
  mapArea(ops, dom, iova, pieces, perms);
  dom.areas.insert(new AreaRec(iova, total, Number(end >> 12n), perms, pieces));
}

/** unmap() with every check: whole areas inside [iova, iova + length), else ENOENT. */
export function unmapGeneral<KD>(ops: KernelOps<KD, unknown>, dom: DomainRec<KD>, iova: bigint, length: bigint): bigint {
  const syscall = ops.unmapSyscall;
  checkU64(iova, 'iova', syscall);
  checkU64(length, 'length', syscall);
  if (length === 0n) fail(ERR.EINVAL, syscall, 'length is 0');
  const end = iova + length;
  if (end > U64_END) fail(ERR.EOVERFLOW, syscall, 'iova + length wraps');
  const hits = dom.areas.overlapping(iova, end);
  if (hits.length === 0) {
    // unmap-all of an empty domain succeeds (iommufd's iopt_unmap_all turns ENOENT into 0; type1's
    // VFIO_DMA_UNMAP_FLAG_ALL unmaps nothing): nothing to ask the kernel
    if (iova === 0n && length === U64_MAX) return 0n;
    fail(ERR.ENOENT, syscall, `nothing mapped in ${hex(iova)}+${hex(length)}`);
  }
  const a0 = hits[0];
  const an = hits[hits.length - 1];
  if (a0.iova < iova || an.end > end) fail(ERR.ENOENT, syscall, 'the range cuts an area (areas are removed whole)');
  unmapAreas(ops, dom, a0.iova, hits.length === 1 ? a0.length : an.end - a0.iova);
  let bytes = 0n;
  for (const a of hits) {
    dom.areas.remove(a);
    bytes = bytes === 0n ? a.length : bytes + a.length;
  }
  return bytes;
}

/**
 * How many contract-area pieces map allocation `a` (its free() is EBUSY while > 0), counted from
 * the records that hold them, with no counter of its own: the addon's pins (one per kernel map of
 * the region: C++ `Region::pins`, the record memory safety needs), plus the pieces of areas the
 * kernel does not hold right now (a type1 domain before its first attach or after its last detach;
 * passthrough domains, whose areas change no translation), less the identity maps of passthrough
 * domains (kernel maps that freeing `a` removes itself, before the addon's own check). Free is
 * rare: the walk is over the domains the kernel does not hold, and `a`'s identity records.
 */
export function mapCount<KD>(ops: KernelOps<KD, unknown>, domains: Iterable<DomainRec<KD>>, a: NativeAllocation): number {
  let n = a.native.pins;
  for (const dom of domains) {
    if (dom.type !== 'translate' || !ops.active(dom)) for (const area of dom.areas) for (const p of area.pieces) if (p.alloc === a) n++;
    const ids = dom.identity.get(a.id);
    if (ids !== undefined) for (const r of ids) if (r.mapped) n--;
  }
  return n;
}

/** Drop every shadow area of `dom` (the kernel side, with the addon's pins, is the caller's). */
export function dropAreas(dom: DomainRec): void {
  dom.areas.clear();
}

/** Replay every shadow area / identity map into the kernel (type1 first attach). All or nothing. */
export function replay<KD>(ops: KernelOps<KD, unknown>, dom: DomainRec<KD>): void {
  const done: { iova: bigint; length: bigint }[] = [];
  try {
    if (dom.type === 'translate') {
      for (const a of dom.areas) {
        kernelMapPieces(ops, dom, a.iova, a.pieces, a.perms);
        done.push(a);
      }
    } else {
      for (const recs of dom.identity.values())
        for (const r of recs) {
          try {
            ops.map(dom, r.iova, r.piece, 3);
            r.mapped = true;
            done.push({ iova: r.iova, length: r.piece.length });
          } catch (e) {
            r.mapped = false;
            r.error = (e as Error).message;
          }
        }
    }
  } catch (e) {
    for (const d of done) {
      try {
        ops.unmap(dom, d.iova, d.length);
      } catch {
        /* best effort */
      }
    }
    throw e;
  }
}

/** The kernel dropped every mapping of `dom`: identity maps are no longer installed. */
export function forgot(dom: DomainRec): void {
  for (const recs of dom.identity.values()) for (const r of recs) r.mapped = false;
}

// ---- emulated identity (passthrough) ---------------------------------------------------

/** Map allocation `a` into passthrough domain `dom` at IOVA = PA, one record per contiguous run. */
export function identityMapAlloc<KD>(ops: KernelOps<KD, unknown>, dom: DomainRec<KD>, a: NativeAllocation): void {
  const recs: IdentityRec[] = [];
  let off = 0n;
  for (const run of a.runs(0n, a.size)) {
    const piece: Piece = { alloc: a, offset: off, length: (run.length + PAGE - 1n) & ~(PAGE - 1n) };
    const rec: IdentityRec = { iova: run.pa, piece, mapped: false };
    if (ops.active(dom)) {
      try {
        ops.map(dom, run.pa, piece, 3);
        rec.mapped = true;
      } catch (e) {
        rec.error = (e as Error).message;
      }
    }
    recs.push(rec);
    off += run.length;
  }
  dom.identity.set(a.id, recs);
}

/** Allocation `a` is being freed: unmap its identity maps from every domain. */
export function identityRemove<KD>(ops: KernelOps<KD, unknown>, domains: Iterable<DomainRec<KD>>, a: NativeAllocation): void {
  for (const dom of domains) {
    const recs = dom.identity.get(a.id);
    if (!recs) continue;
    for (const r of recs)
      if (r.mapped && ops.active(dom)) {
        try {
          ops.unmap(dom, r.iova, r.piece.length);
        } catch {
          /* already gone */
        }
      }
    dom.identity.delete(a.id);
  }
}
