/**
 * What the two native backends share: handles, the shadow of every domain's areas (the contract's
 * one-area-per-map unit, made of VA-contiguous kernel pieces), argument checks that must hold even
 * when the kernel is not consulted (type1 before the first attach), emulated-identity passthrough
 * domains, memory, faults from the kernel log, device enumeration and regions, ordered close.
 * Subclasses supply the kernel operations.
 */
import { alignedPage } from '../../util/u64.js';
import { AreaIndex } from './areas.js';
import type {
  AllocateOptions,
  Arm64DomainConfig,
  BackendCapabilities,
  BackendFault,
  BackendKind,
  BackendMemory,
  DeviceEvent,
  DeviceRegions,
  DomainGeometry,
  IommuBackend,
  MemoryInfo,
  PciDeviceInfo,
  PhysicalRun,
} from '../contract.js';
import type { NativeAddon, NativeHandle } from './addon-types.js';
import { HotCalls } from './hot.js';
import { KmsgReader, type ParsedFault, faultMatchesBdf } from './kmsg.js';
import { type NativeAllocation, NativeMemoryPool, type Piece } from './memory.js';
import { VfioRegions } from './regions.js';
import { type SysPaths, type SysPciDevice, type UsableVia, listPciDevices, readPciDevice, toPciDeviceInfo, whyNotUsable } from './sysfs.js';
import { ERR, PAGE, U64_MAX, checkHandle, checkU64, errnoOf, fail, hex } from './util.js';

export const DOMAIN_TYPE_TRANSLATE = 0;
export const DOMAIN_TYPE_PASSTHROUGH = 1;

/** One contract area: [iova, iova+length) with one permission, backed by kernel pieces. */
export interface AreaRec {
  readonly iova: bigint;
  readonly length: bigint;
  /** iova + length (exclusive), kept so lookups do no arithmetic. */
  readonly end: bigint;
  /** end >> 12 (exact as a number). */
  readonly endPage: number;
  readonly perms: number;
  readonly pieces: readonly Piece[];
}

/** An identity map of one physically contiguous run of an allocation (passthrough domains). */
interface IdentityRec {
  readonly iova: bigint;
  readonly piece: Piece;
  mapped: boolean;
  error?: string;
}

export interface DomainRec {
  readonly id: number;
  readonly type: 'translate' | 'passthrough';
  readonly devices: Set<number>;
  /** Ordered by iova. */
  readonly areas: AreaIndex<AreaRec>;
  /** allocation id → identity records (passthrough only). */
  readonly identity: Map<number, IdentityRec[]>;
  geometry: DomainGeometry | null;
}

export interface DeviceRec {
  readonly id: number;
  readonly bdf: string;
  readonly sys: SysPciDevice;
  domain: number | null;
  readonly regions: VfioRegions;
  maxPasidLog2: number;
}

export interface NativeBackendOptions {
  readonly addon: NativeAddon;
  readonly paths: SysPaths;
  readonly reason: string;
  readonly memoryInfo: MemoryInfo;
  /** Kernel log readable (faultSource 'kmsg'), else 'none'. */
  readonly kmsg: boolean;
}

/** 2^64: exclusive ends may reach it, never pass it. */
const U64_END = 1n << 64n;

export const DEFAULT_GEOMETRY: DomainGeometry = {
  ranges: [{ start: 0n, last: U64_MAX }],
  alignment: PAGE,
  pageSizes: PAGE,
  addressWidth: 64,
};

/** Pages at or above this are left to the general paths (the fast paths use int32 page numbers). */
const FAST_PAGE_LIMIT = 0x7fffffff;

/**
 * A geometry's usable ranges as [firstPage, endPage) pairs below FAST_PAGE_LIMIT, for the map fast
 * path; null when its alignment is not 4 KiB (then every map takes the general path).
 */
function fastRangesOf(g: DomainGeometry): Float64Array | null {
  if (g.alignment !== PAGE) return null;
  const out: number[] = [];
  for (const r of g.ranges) {
    const first = (r.start + PAGE - 1n) >> 12n;
    const end = (r.last + 1n) >> 12n;
    const lim = BigInt(FAST_PAGE_LIMIT);
    const e = end < lim ? end : lim;
    if (first < e) out.push(Number(first), Number(e));
  }
  return Float64Array.from(out);
}

export function addressWidthOf(ranges: readonly { last: bigint }[]): number {
  let max = 0n;
  for (const r of ranges) if (r.last > max) max = r.last;
  return max === 0n ? 0 : max.toString(2).length;
}

export abstract class NativeBackendBase implements IommuBackend {
  abstract readonly kind: BackendKind;
  abstract readonly capabilities: BackendCapabilities;
  readonly reason: string;
  readonly memoryInfo: MemoryInfo;
  protected readonly addon: NativeAddon;
  /** The addon's zero-argument map/unmap calls, for kernelMap/kernelUnmap. */
  protected readonly hot: HotCalls;
  protected readonly paths: SysPaths;
  protected readonly pool: NativeMemoryPool;
  protected readonly domains = new Map<number, DomainRec>();
  protected readonly devices = new Map<number, DeviceRec>();
  protected readonly kmsgOk: boolean;
  protected abstract readonly via: UsableVia;
  #nextHandle = 1;
  #closed = false;
  #kmsg: KmsgReader | null = null;
  #kmsgUnsub: (() => void) | null = null;
  #faultListeners = new Set<(f: BackendFault) => void>();
  #deviceListeners = new Set<(e: DeviceEvent) => void>();

  constructor(o: NativeBackendOptions) {
    this.addon = o.addon;
    this.hot = new HotCalls(o.addon);
    this.paths = o.paths;
    this.reason = o.reason;
    this.memoryInfo = o.memoryInfo;
    this.kmsgOk = o.kmsg;
    this.pool = new NativeMemoryPool(o.addon, o.memoryInfo);
    this.pool.hooks = {
      allocated: (a) => this.#identityAdd(a),
      freeing: (a) => this.#identityRemove(a),
    };
  }

  // ---- kernel operations supplied by the backends ------------------------------------------

  /** Kernel mappings can be installed now (type1: a group is in the container). */
  protected abstract kernelActive(dom: DomainRec): boolean;
  /** Install one kernel area: `piece` at `iova`. */
  protected abstract kernelMap(dom: DomainRec, iova: bigint, piece: Piece, perms: number): void;
  /** Remove whole kernel mappings covering exactly [iova, iova + length); nothing there → ENOENT. */
  protected abstract kernelUnmap(dom: DomainRec, iova: bigint, length: bigint): void;
  protected abstract kernelGeometry(dom: DomainRec): DomainGeometry;
  protected abstract kernelOpenDevice(id: number, bdf: string, sys: SysPciDevice): DeviceRec;
  protected abstract kernelCloseDevice(dev: DeviceRec): void;
  protected abstract kernelAllocDomain(id: number, type: 'translate' | 'passthrough'): DomainRec;
  protected abstract kernelFreeDomain(dom: DomainRec): void;
  protected abstract kernelAttach(dom: DomainRec, dev: DeviceRec): void;
  protected abstract kernelDetach(dom: DomainRec, dev: DeviceRec): void;
  /** Close the backend's own fds (iommufd, parking container). */
  protected abstract kernelClose(): void;
  protected abstract kernelInspect(): Record<string, unknown>;

  // ---- helpers -----------------------------------------------------------------------------

  get closed(): boolean {
    return this.#closed;
  }

  protected checkOpen(syscall: string): void {
    if (this.#closed) fail(ERR.EBADF, syscall, 'the backend is closed');
  }

  protected newHandle(): number {
    return this.#nextHandle++;
  }

  protected domain(h: unknown, syscall: string): DomainRec {
    checkHandle(h, 'domain');
    this.checkOpen(syscall);
    const d = this.domains.get(h);
    if (!d) fail(ERR.ENOENT, syscall, `no domain ${h}`);
    return d;
  }

  protected device(h: unknown, syscall: string): DeviceRec {
    checkHandle(h, 'device');
    this.checkOpen(syscall);
    const d = this.devices.get(h);
    if (!d) fail(ERR.ENOENT, syscall, `no device ${h}`);
    return d;
  }

  /** Devices this backend opened that share an IOMMU group with `dev` (including it). */
  protected groupPeers(dev: DeviceRec): DeviceRec[] {
    return [...this.devices.values()].filter((d) => d.sys.iommuGroup === dev.sys.iommuGroup);
  }

  // ---- enumeration, memory ---------------------------------------------------------------

  enumerateDevices(): PciDeviceInfo[] {
    this.checkOpen('enumerate');
    const opened = new Map([...this.devices.values()].map((d) => [d.bdf, d]));
    return listPciDevices(this.paths).map((d) => toPciDeviceInfo(this.paths, d, this.via, opened.get(d.bdf)?.maxPasidLog2));
  }

  allocateMemory(size: bigint, options?: AllocateOptions): BackendMemory {
    this.checkOpen('mmap');
    return this.pool.allocate(size, options);
  }

  // ---- devices -----------------------------------------------------------------------------

  openDevice(bdf: string): number {
    if (typeof bdf !== 'string') throw new TypeError('bdf must be a string');
    this.checkOpen('open');
    const b = bdf.toLowerCase();
    const sys = readPciDevice(this.paths, b);
    if (!sys) fail(ERR.ENOENT, 'open', `no PCI device ${bdf}`);
    for (const d of this.devices.values()) if (d.bdf === b) fail(ERR.EBUSY, 'open', `${b} is already open`);
    const why = whyNotUsable(this.paths, sys, this.via);
    if (why) fail(ERR.ENODEV, 'open', `${b}: ${why}`);
    const id = this.newHandle();
    const rec = this.kernelOpenDevice(id, b, sys);
    this.devices.set(id, rec);
    return id;
  }

  closeDevice(device: number): void {
    checkHandle(device, 'device');
    const dev = this.devices.get(device);
    if (!dev) return;
    if (dev.domain !== null) this.detach(device);
    this.devices.delete(device);
    this.kernelCloseDevice(dev);
  }

  deviceRegions(device: number): DeviceRegions {
    return this.device(device, 'deviceRegions').regions;
  }

  availableDomainTypes(device: number): number {
    this.device(device, 'availableDomainTypes');
    return (1 << DOMAIN_TYPE_TRANSLATE) | (1 << DOMAIN_TYPE_PASSTHROUGH);
  }

  inputMappingIds(device: number): number[] {
    this.device(device, 'inputMappingIds');
    fail(ERR.ENOTSUP, 'inputMappingIds', 'input-mapping (stream) IDs are an Arm64 concept; not available here');
  }

  // ---- domains -----------------------------------------------------------------------------

  allocDomain(type: 'translate' | 'passthrough' | 'unmanaged'): number {
    this.checkOpen('allocDomain');
    if (type !== 'translate' && type !== 'passthrough' && type !== 'unmanaged') throw new TypeError(`unknown domain type ${String(type)}`);
    if (type === 'unmanaged') fail(ERR.ENOTSUP, 'allocDomain', 'caller-owned page tables need nested translation, which this platform does not offer');
    const id = this.newHandle();
    const dom = this.kernelAllocDomain(id, type);
    this.domains.set(id, dom);
    if (type === 'passthrough') {
      try {
        for (const a of this.pool.allocations.values()) this.#identityMapAlloc(dom, a);
      } catch (e) {
        this.domains.delete(id);
        this.kernelFreeDomain(dom);
        throw e;
      }
    }
    return id;
  }

  configureDomain(domain: number, _config: Arm64DomainConfig): void {
    this.domain(domain, 'configureDomain');
    fail(ERR.EINVAL, 'configureDomain', 'not an unmanaged domain');
  }

  flushDomain(domain: number, _vaList?: readonly bigint[], _lastLevel?: boolean): void {
    this.domain(domain, 'flushDomain');
    fail(ERR.EINVAL, 'flushDomain', 'not an unmanaged domain');
  }

  freeDomain(domain: number): void {
    const dom = this.domain(domain, 'freeDomain');
    if (dom.devices.size > 0) fail(ERR.EBUSY, 'freeDomain', `${dom.devices.size} device(s) still attached`);
    for (const a of dom.areas) for (const p of a.pieces) p.alloc.mapRefs--;
    dom.areas.clear();
    this.domains.delete(domain);
    this.kernelFreeDomain(dom);
    dom.identity.clear();
  }

  geometry(domain: number): DomainGeometry {
    const dom = this.domain(domain, 'geometry');
    if (!dom.geometry) dom.geometry = this.kernelGeometry(dom);
    return dom.geometry;
  }

  attach(domain: number, device: number): void {
    const dom = this.domain(domain, 'attach');
    const dev = this.device(device, 'attach');
    if (dev.domain !== null) fail(ERR.EBUSY, 'attach', `${dev.bdf} is attached to domain ${dev.domain}`);
    for (const peer of this.groupPeers(dev))
      if (peer !== dev && peer.domain !== null && peer.domain !== domain)
        fail(ERR.EINVAL, 'attach', `${peer.bdf} of the same IOMMU group is attached to domain ${peer.domain}`);
    this.kernelAttach(dom, dev);
    dev.domain = domain;
    dom.devices.add(device);
    dom.geometry = null;
  }

  detach(device: number): void {
    const dev = this.device(device, 'detach');
    if (dev.domain === null) fail(ERR.EINVAL, 'detach', `${dev.bdf} is not attached`);
    const dom = this.domains.get(dev.domain);
    if (dom) {
      this.kernelDetach(dom, dev);
      dom.devices.delete(device);
      dom.geometry = null;
    }
    dev.domain = null;
  }

  attachPasid(domain: number, device: number, pasid: number): void {
    this.domain(domain, 'attachPasid');
    const dev = this.device(device, 'attachPasid');
    void pasid;
    fail(ERR.ENOTSUP, 'attachPasid', dev.maxPasidLog2 === 0 ? `${dev.bdf} has no PASID capability` : 'PASID attach is not implemented by this backend');
  }

  detachPasid(device: number, pasid: number): void {
    const dev = this.device(device, 'detachPasid');
    void pasid;
    fail(ERR.ENOTSUP, 'detachPasid', `${dev.bdf}: PASID attach is not implemented by this backend`);
  }

  // ---- mappings ----------------------------------------------------------------------------

  /** Usable page ranges of each geometry object (see fastRangesOf); a new geometry gets its own. */
  #fastRanges = new WeakMap<DomainGeometry, Float64Array | null>();

  /**
   * The open translate domain `h` with a known geometry, for the fast paths; undefined sends the
   * call to the general path (which reports whatever is wrong).
   */
  #fastDomain(h: number): DomainRec | undefined {
    if (this.#closed || typeof h !== 'number') return undefined;
    const dom = this.domains.get(h);
    return dom !== undefined && dom.type === 'translate' && dom.geometry !== null ? dom : undefined;
  }

  map(domain: number, iova: bigint, runs: readonly PhysicalRun[], perms: number): void {
    // Fast path: one whole-page run at a page-aligned IOVA below 8 TiB, inside a usable range and
    // clear of other areas, in page numbers (no bigint arithmetic, which under an emulator costs
    // more than the rest of the call). Anything else, including every error, takes the general
    // path below, which checks the same things and reports them.
    const dom = this.#fastDomain(domain);
    if (dom !== undefined && Array.isArray(runs) && runs.length === 1 && (perms === 1 || perms === 2 || perms === 3) && typeof iova === 'bigint') {
      const r = runs[0];
      if (typeof r === 'object' && r !== null && typeof r.pa === 'bigint' && typeof r.length === 'bigint') {
        const first = alignedPage(iova);
        const pages = alignedPage(r.length);
        const end = first + pages;
        if (first >= 0 && pages > 0 && end <= FAST_PAGE_LIMIT && this.#inFastRange(dom.geometry!, first, end) && !dom.areas.overlapsPages(first, end)) {
          const pieces = this.pool.resolve(runs, this.mapSyscall);
          this.#mapArea(dom, iova, pieces, perms);
          dom.areas.insertAt(first, { iova, length: r.length, end: iova + r.length, endPage: end, perms, pieces });
          for (let k = 0; k < pieces.length; k++) pieces[k].alloc.mapRefs++;
          return;
        }
      }
    }
    this.#mapGeneral(domain, iova, runs, perms);
  }

  #inFastRange(g: DomainGeometry, first: number, end: number): boolean {
    let fr = this.#fastRanges.get(g);
    if (fr === undefined) {
      fr = fastRangesOf(g);
      this.#fastRanges.set(g, fr);
    }
    if (fr === null) return false;
    for (let i = 0; i < fr.length; i += 2) if (fr[i] <= first && end <= fr[i + 1]) return true;
    return false;
  }

  /** The kernel side of a new area (translate domains the kernel knows of). */
  #mapArea(dom: DomainRec, iova: bigint, pieces: readonly Piece[], perms: number): void {
    if (dom.type === 'translate' && this.kernelActive(dom)) {
      if (pieces.length === 1) this.kernelMap(dom, iova, pieces[0], perms);
      else this.#kernelMapPieces(dom, iova, pieces, perms);
    }
  }

  #mapGeneral(domain: number, iova: bigint, runs: readonly PhysicalRun[], perms: number): void {
    const syscall = this.mapSyscall;
    const dom = this.domain(domain, syscall);
    checkU64(iova, 'iova', syscall);
    if (!Array.isArray(runs)) throw new TypeError('runs must be an array');
    if (typeof perms !== 'number' || !Number.isInteger(perms)) throw new TypeError('perms must be an integer');
    if (perms === 0 || (perms & ~3) !== 0) fail(ERR.EINVAL, syscall, `perms ${perms}: must be read (1) and/or write (2)`);
    let total = 0n;
    for (let k = 0; k < runs.length; k++) {
      const r = runs[k];
      if (typeof r !== 'object' || r === null || typeof r.pa !== 'bigint' || typeof r.length !== 'bigint') throw new TypeError('each run must be { pa: bigint, length: bigint }');
      if (r.length <= 0n || r.pa < 0n) fail(ERR.EINVAL, syscall, `run ${hex(r.pa)}+${hex(r.length)}`);
      total = k === 0 ? r.length : total + r.length;
    }
    if (total === 0n) fail(ERR.EINVAL, syscall, 'nothing to map');
    const end = iova + total;
    if (end > U64_END) fail(ERR.EOVERFLOW, syscall, 'iova + length wraps');
    const g = dom.geometry ?? this.geometry(domain);
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
    const pieces = this.pool.resolve(runs, syscall);
    this.#mapArea(dom, iova, pieces, perms);
    const rec: AreaRec = { iova, length: total, end, endPage: Number(end >> 12n), perms, pieces };
    dom.areas.insert(rec);
    for (let k = 0; k < pieces.length; k++) pieces[k].alloc.mapRefs++;
  }

  /** Map pieces back to back from `iova`; all or nothing. */
  #kernelMapPieces(dom: DomainRec, iova: bigint, pieces: readonly Piece[], perms: number): void {
    let at = iova;
    let done = 0;
    try {
      for (const p of pieces) {
        this.kernelMap(dom, at, p, perms);
        at += p.length;
        done++;
      }
    } catch (e) {
      if (done > 0) {
        try {
          this.kernelUnmap(dom, iova, at - iova);
        } catch {
          /* best effort */
        }
      }
      throw e;
    }
  }

  protected abstract readonly mapSyscall: string;
  protected abstract readonly unmapSyscall: string;

  unmap(domain: number, iova: bigint, length: bigint): bigint {
    // Fast path: exactly one whole area at a page-aligned IOVA below 8 TiB, found by its first
    // page. Anything else (several areas, a cut, nothing there, bad arguments) takes the general
    // path below.
    const dom = this.#fastDomain(domain);
    if (dom !== undefined && typeof iova === 'bigint' && typeof length === 'bigint') {
      const first = alignedPage(iova);
      const pages = alignedPage(length);
      const a = first >= 0 && pages > 0 ? dom.areas.atPage(first) : undefined;
      if (a !== undefined && a.endPage === first + pages) {
        this.#unmapAreas(dom, iova, length);
        dom.areas.removeAt(first);
        for (let k = 0; k < a.pieces.length; k++) a.pieces[k].alloc.mapRefs--;
        return a.length;
      }
    }
    return this.#unmapGeneral(domain, iova, length);
  }

  /** The kernel side of removing whole areas covering exactly [iova, iova + length). */
  #unmapAreas(dom: DomainRec, iova: bigint, length: bigint): void {
    if (dom.type === 'translate' && this.kernelActive(dom)) {
      try {
        this.kernelUnmap(dom, iova, length);
      } catch (e) {
        // type1 v2 refuses to bisect with EINVAL; the contract says ENOENT for a cut.
        if (errnoOf(e) === ERR.EINVAL) fail(ERR.ENOENT, this.unmapSyscall, 'the kernel refused to cut a mapping');
        throw e;
      }
    }
  }

  #unmapGeneral(domain: number, iova: bigint, length: bigint): bigint {
    const syscall = this.unmapSyscall;
    const dom = this.domain(domain, syscall);
    checkU64(iova, 'iova', syscall);
    checkU64(length, 'length', syscall);
    if (length === 0n) fail(ERR.EINVAL, syscall, 'length is 0');
    const end = iova + length;
    if (end > U64_END) fail(ERR.EOVERFLOW, syscall, 'iova + length wraps');
    const hits = dom.areas.overlapping(iova, end);
    if (hits.length === 0) fail(ERR.ENOENT, syscall, `nothing mapped in ${hex(iova)}+${hex(length)}`);
    const a0 = hits[0];
    const an = hits[hits.length - 1];
    if (a0.iova < iova || an.end > end) fail(ERR.ENOENT, syscall, 'the range cuts an area (areas are removed whole)');
    this.#unmapAreas(dom, a0.iova, hits.length === 1 ? a0.length : an.end - a0.iova);
    let bytes = 0n;
    for (const a of hits) {
      dom.areas.remove(a);
      bytes = bytes === 0n ? a.length : bytes + a.length;
      for (let k = 0; k < a.pieces.length; k++) a.pieces[k].alloc.mapRefs--;
    }
    return bytes;
  }

  /** Replay every shadow area / identity map into the kernel (type1 first attach). All or nothing. */
  protected replay(dom: DomainRec): void {
    const done: { iova: bigint; length: bigint }[] = [];
    try {
      if (dom.type === 'translate') {
        for (const a of dom.areas) {
          this.#kernelMapPieces(dom, a.iova, a.pieces, a.perms);
          done.push(a);
        }
      } else {
        for (const recs of dom.identity.values())
          for (const r of recs) {
            try {
              this.kernelMap(dom, r.iova, r.piece, 3);
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
          this.kernelUnmap(dom, d.iova, d.length);
        } catch {
          /* best effort */
        }
      }
      throw e;
    }
  }

  /** The kernel dropped every mapping of `dom` (type1: last group left). */
  protected kernelForgot(dom: DomainRec): void {
    for (const recs of dom.identity.values()) for (const r of recs) r.mapped = false;
  }

  // ---- emulated identity (passthrough) ---------------------------------------------------

  #identityMapAlloc(dom: DomainRec, a: NativeAllocation): void {
    const recs: IdentityRec[] = [];
    let off = 0n;
    for (const run of a.runs(0n, a.size)) {
      const piece: Piece = { alloc: a, offset: off, length: (run.length + PAGE - 1n) & ~(PAGE - 1n) };
      const rec: IdentityRec = { iova: run.pa, piece, mapped: false };
      if (this.kernelActive(dom)) {
        try {
          this.kernelMap(dom, run.pa, piece, 3);
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

  #identityAdd(a: NativeAllocation): void {
    for (const dom of this.domains.values()) if (dom.type === 'passthrough') this.#identityMapAlloc(dom, a);
  }

  #identityRemove(a: NativeAllocation): void {
    for (const dom of this.domains.values()) {
      const recs = dom.identity.get(a.id);
      if (!recs) continue;
      for (const r of recs)
        if (r.mapped && this.kernelActive(dom)) {
          try {
            this.kernelUnmap(dom, r.iova, r.piece.length);
          } catch {
            /* already gone */
          }
        }
      dom.identity.delete(a.id);
    }
  }

  // ---- events ------------------------------------------------------------------------------

  onFault(listener: (fault: BackendFault) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    this.checkOpen('onFault');
    this.#faultListeners.add(listener);
    if (this.kmsgOk && !this.#kmsg) {
      this.#kmsg = new KmsgReader(this.addon);
      try {
        this.#kmsgUnsub = this.#kmsg.subscribe((f) => this.#dispatchFault(f));
      } catch {
        this.#kmsg = null; // unreadable after all: no faults
      }
    }
    return () => {
      this.#faultListeners.delete(listener);
      if (this.#faultListeners.size === 0) this.#stopKmsg();
    };
  }

  #stopKmsg(): void {
    this.#kmsgUnsub?.();
    this.#kmsgUnsub = null;
    this.#kmsg?.close();
    this.#kmsg = null;
  }

  /** Read the kernel log now (tests and waitForFault can call it instead of waiting for the timer). */
  pollFaults(): void {
    this.#kmsg?.poll();
  }

  #dispatchFault(f: ParsedFault): void {
    for (const dev of this.devices.values()) {
      if (!faultMatchesBdf(f, dev.bdf)) continue;
      let kind: BackendFault['kind'] = f.kindHint ?? 'other';
      const dom = dev.domain !== null ? this.domains.get(dev.domain) : undefined;
      if (f.vendor === 'intel' && (f.reasonCode === 5 || f.reasonCode === 6)) {
        if (!dom || dom.type !== 'translate') kind = 'translation';
        else {
          const a = dom.areas.firstEndingAfter(f.iova);
          if (!a || a.iova > f.iova) kind = 'translation';
          else kind = 'permission';
        }
      }
      const fault: BackendFault = {
        bdf: dev.bdf,
        iova: f.iova,
        write: f.write ?? false,
        ...(f.pasid !== undefined ? { pasid: f.pasid } : {}),
        kind,
        ...(f.reasonCode !== undefined ? { reasonCode: f.reasonCode } : {}),
        reason: f.reason,
        source: 'kmsg',
        raw: f.raw,
        timestamp: Date.now(),
      };
      for (const l of [...this.#faultListeners]) {
        try {
          l(fault);
        } catch {
          /* a listener's error is its own */
        }
      }
    }
  }

  onDeviceEvent(listener: (event: DeviceEvent) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    // No hot-plug source is watched (uevents need a netlink socket); the set is kept so a later
    // source can feed it.
    this.#deviceListeners.add(listener);
    return () => this.#deviceListeners.delete(listener);
  }

  // ---- inspection, close ---------------------------------------------------------------------

  inspect(): unknown {
    return {
      kind: this.kind,
      reason: this.reason,
      closed: this.#closed,
      capabilities: this.capabilities,
      memoryInfo: this.memoryInfo,
      devices: [...this.devices.values()].map((d) => ({ handle: d.id, bdf: d.bdf, group: d.sys.iommuGroup, domain: d.domain })),
      domains: [...this.domains.values()].map((d) => ({
        handle: d.id,
        type: d.type,
        devices: [...d.devices],
        areas: [...d.areas].map((a) => ({ iova: hex(a.iova), length: hex(a.length), perms: a.perms, kernelPieces: a.pieces.length })),
        identity: [...d.identity.values()].flat().map((r) => ({ iova: hex(r.iova), length: hex(r.piece.length), mapped: r.mapped, ...(r.error ? { error: r.error } : {}) })),
      })),
      memory: [...this.pool.allocations.values()].map((a) => ({ id: a.id, size: hex(a.size), lazy: a.lazy, mapRefs: a.mapRefs })),
      native: this.addon.stats(),
      kernel: this.kernelInspect(),
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#stopKmsg();
    this.#faultListeners.clear();
    this.#deviceListeners.clear();
    const step = (fn: () => void) => {
      try {
        fn();
      } catch {
        /* keep closing */
      }
    };
    // areas → detach → destroy domains → close devices → backend fds → memory
    for (const dom of this.domains.values()) {
      if (dom.type === 'translate' && dom.areas.length > 0 && this.kernelActive(dom)) step(() => this.kernelUnmap(dom, 0n, U64_MAX));
      for (const a of dom.areas) for (const p of a.pieces) p.alloc.mapRefs--;
      dom.areas.clear();
    }
    for (const dev of this.devices.values()) {
      if (dev.domain !== null) {
        const dom = this.domains.get(dev.domain);
        if (dom) step(() => this.kernelDetach(dom, dev));
        dom?.devices.delete(dev.id);
        dev.domain = null;
      }
    }
    for (const dom of this.domains.values()) step(() => this.kernelFreeDomain(dom));
    this.domains.clear();
    for (const dev of this.devices.values()) step(() => this.kernelCloseDevice(dev));
    this.devices.clear();
    step(() => this.kernelClose());
    this.#closed = true;
    step(() => this.pool.releaseAll());
  }

  /** Make the device fd accessor for VfioRegions. */
  protected regionsFor(get: () => NativeHandle | null, bdf: string): VfioRegions {
    return new VfioRegions(this.addon, () => {
      const h = get();
      if (!h || h.closed) fail(ERR.EBADF, 'vfio region access', `${bdf} is closed`);
      return h;
    });
  }
}
