/**
 * NativeBackend: the contract (../contract.ts) over one kernel-operations table (ops.ts), the same
 * class for iommufd and VFIO type1. It owns handles, the device and domain records with each
 * domain's area shadow (the contract's one-area-per-map unit, made of VA-contiguous kernel
 * pieces), the checks that must hold even when the kernel is not consulted (type1 before the first
 * attach), memory, faults and ordered close. map/unmap have fast paths here (one ops call each);
 * their general paths, replay and emulated identity are in mapping.ts.
 */
import { alignedPage } from '../../util/u64.js';
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
  MapSource,
  MemoryInfo,
  PciDeviceInfo,
} from '../contract.js';
import type { NativeAddon } from './addon-types.js';
import { sourceBytes } from '../memory-span.js';
import { KmsgFaults } from './faults.js';
import { HotCalls } from './hot.js';
import { dropAreas, forgot, identityMapAlloc, identityRemove, mapArea, mapCount, mapGeneral, replay, unmapAreas, unmapGeneral } from './mapping.js';
import { explainLimit } from './limits.js';
import { NativeMemoryPool } from './memory.js';
import { RemovalWatch } from './removal.js';
import type { KernelOps, OpsHost } from './ops.js';
import { AreaRec, type DeviceRec, type DomainRec, FAST_PAGE_LIMIT, type NativeBackendOptions, fastRangesOf } from './records.js';
import { type SysPaths, listPciDevices, openRefusal, readPciDevice, toPciDeviceInfo } from './sysfs.js';
import { ERR, U64_MAX, checkHandle, fail, hex } from './util.js';

/** Builds an ops table for a backend (it is handed the backend's host view and its hot calls). */
export type OpsFactory<KD, KV> = (o: NativeBackendOptions, host: OpsHost<KD, KV>, hot: HotCalls) => KernelOps<KD, KV>;

export class NativeBackend<KD, KV> implements IommuBackend {
  readonly kind: BackendKind;
  readonly capabilities: BackendCapabilities;
  readonly reason: string;
  readonly memoryInfo: MemoryInfo;
  readonly #addon: NativeAddon;
  readonly #paths: SysPaths;
  readonly #pool: NativeMemoryPool;
  readonly #ops: KernelOps<KD, KV>;
  readonly #domains = new Map<number, DomainRec<KD>>();
  readonly #devices = new Map<number, DeviceRec<KV>>();
  readonly #faults: KmsgFaults;
  readonly #deviceListeners = new Set<(e: DeviceEvent) => void>();
  /** Hot-unplug: each open device's VFIO request notifier (removal.ts). */
  readonly #removal: RemovalWatch;
  /** Usable page ranges of each geometry object (see fastRangesOf); a new geometry gets its own. */
  readonly #fastRanges = new WeakMap<DomainGeometry, Float64Array | null>();
  /** The last geometry #inFastRange was asked about, and its ranges (saves the WeakMap lookup per map). */
  #lastGeometry: DomainGeometry | null = null;
  #lastFastRanges: Float64Array | null = null;
  /** The last domain the fast paths found (saves the Map lookup per call); cleared when it is freed. */
  #lastDomain: DomainRec<KD> | undefined;
  #nextHandle = 1;
  #closed = false;

  constructor(o: NativeBackendOptions, makeOps: OpsFactory<KD, KV>) {
    this.#addon = o.addon;
    this.#paths = o.paths;
    this.reason = o.reason;
    this.memoryInfo = o.memoryInfo;
    this.#pool = new NativeMemoryPool(o.addon, o.memoryInfo);
    const host: OpsHost<KD, KV> = {
      domains: this.#domains,
      devices: this.#devices,
      replay: (dom) => replay(this.#ops, dom),
      forgot: (dom) => forgot(dom),
    };
    this.#ops = makeOps(o, host, new HotCalls(o.addon));
    this.kind = this.#ops.kind;
    this.capabilities = this.#ops.capabilities;
    this.#faults = new KmsgFaults(o.addon, o.kmsg, this.#devices, this.#domains);
    this.#removal = new RemovalWatch(o.addon, {
      removed: (dev, event) => {
        // the hardware's departure drops its attachment (as the simulator's removeDevice)
        if (dev.domain !== null) this.#dropAttachment(this.#devices.get(dev.id)!);
        for (const l of [...this.#deviceListeners]) l(event);
      },
    });
    this.#pool.hooks = {
      allocated: (a) => {
        for (const dom of this.#domains.values()) if (dom.type === 'passthrough') identityMapAlloc(this.#ops, dom, a);
      },
      freeing: (a) => identityRemove(this.#ops, this.#domains.values(), a),
      mapCount: (a) => mapCount(this.#ops, this.#domains.values(), a),
    };
  }

  // ---- helpers -----------------------------------------------------------------------------

  get closed(): boolean {
    return this.#closed;
  }

  #checkOpen(syscall: string): void {
    if (this.#closed) fail(ERR.EBADF, syscall, 'the backend is closed');
  }

  #domain(h: unknown, syscall: string): DomainRec<KD> {
    checkHandle(h, 'domain');
    this.#checkOpen(syscall);
    const d = this.#domains.get(h);
    if (!d) fail(ERR.ENOENT, syscall, `no domain ${h}`);
    return d;
  }

  #device(h: unknown, syscall: string): DeviceRec<KV> {
    checkHandle(h, 'device');
    this.#checkOpen(syscall);
    const d = this.#devices.get(h);
    if (!d) fail(ERR.ENOENT, syscall, `no device ${h}`);
    this.#removal.check(d, syscall);
    return d;
  }

  // ---- enumeration, memory ---------------------------------------------------------------

  enumerateDevices(): PciDeviceInfo[] {
    this.#checkOpen('enumerate');
    const opened = new Map([...this.#devices.values()].map((d) => [d.bdf, d]));
    return listPciDevices(this.#paths).map((d) => toPciDeviceInfo(this.#paths, d, this.#ops.kind, opened.get(d.bdf)?.maxPasidLog2));
  }

  allocateMemory(size: bigint, options?: AllocateOptions): BackendMemory {
    this.#checkOpen('mmap');
    try {
      return this.#pool.allocate(size, options);
    } catch (e) {
      throw explainLimit(e, { what: `allocating ${hex(size)} bytes of DMA memory (mlocked)`, request: typeof size === 'bigint' ? size : 0n, counter: 'locked', entryLimit: null });
    }
  }

  /** A kernel refusal caused by RLIMIT_MEMLOCK or dma_entry_limit, with the limit named (limits.ts). */
  #limit(e: unknown, what: string, request: bigint): unknown {
    return explainLimit(e, { what, request, counter: this.#ops.kind === 'iommufd' ? 'pinned' : 'locked', entryLimit: this.#ops.kind === 'iommufd' ? null : this.capabilities.maxAreasPerDomain });
  }

  // ---- devices -----------------------------------------------------------------------------

  openDevice(bdf: string): number {
    if (typeof bdf !== 'string') throw new TypeError('bdf must be a string');
    this.#checkOpen('open');
    const b = bdf.toLowerCase();
    const sys = readPciDevice(this.#paths, b);
    if (!sys) fail(ERR.ENOENT, 'open', `no PCI device ${bdf}`);
    for (const d of this.#devices.values()) if (d.bdf === b) fail(ERR.EBUSY, 'open', `${b} is already open`);
    const refusal = openRefusal(this.#paths, sys, this.#ops.kind);
    if (refusal) fail(refusal.errno, refusal.syscall, `${b}: ${refusal.message}`);
    const id = this.#nextHandle++;
    const rec = this.#ops.openDevice(id, b, sys);
    try {
      this.#removal.watch(rec);
    } catch (e) {
      this.#ops.closeDevice(rec);
      throw e;
    }
    this.#devices.set(id, rec);
    return id;
  }

  closeDevice(device: number): void {
    checkHandle(device, 'device');
    const dev = this.#devices.get(device);
    if (!dev) return;
    if (dev.domain !== null) this.detach(device);
    this.#removal.unwatch(dev);
    this.#devices.delete(device);
    this.#ops.closeDevice(dev);
  }

  deviceRegions(device: number): DeviceRegions {
    return this.#removal.regions(this.#device(device, 'deviceRegions'));
  }

  availableDomainTypes(device: number): number {
    this.#device(device, 'availableDomainTypes');
    return this.capabilities.domainTypes; // every native device can take both (one record of the mask: nativeCapabilities)
  }

  inputMappingIds(device: number): number[] {
    this.#device(device, 'inputMappingIds');
    fail(ERR.ENOTSUP, 'inputMappingIds', 'input-mapping (stream) IDs are an Arm64 concept; not available here');
  }

  // ---- domains -----------------------------------------------------------------------------

  allocDomain(type: 'translate' | 'passthrough' | 'unmanaged'): number {
    this.#checkOpen('allocDomain');
    if (type !== 'translate' && type !== 'passthrough' && type !== 'unmanaged') throw new TypeError(`unknown domain type ${String(type)}`);
    if (type === 'unmanaged') fail(ERR.ENOTSUP, 'allocDomain', 'caller-owned page tables need nested translation, which this platform does not offer');
    const id = this.#nextHandle++;
    const dom = this.#ops.allocDomain(id, type);
    this.#domains.set(id, dom);
    if (type === 'passthrough') {
      try {
        for (const a of this.#pool.allocations.values()) identityMapAlloc(this.#ops, dom, a);
      } catch (e) {
        this.#domains.delete(id);
        this.#ops.freeDomain(dom);
        throw e;
      }
    }
    return id;
  }

  configureDomain(domain: number, _config: Arm64DomainConfig): void {
    this.#domain(domain, 'configureDomain');
    fail(ERR.EINVAL, 'configureDomain', 'not an unmanaged domain');
  }

  flushDomain(domain: number, _vaList?: readonly bigint[], _lastLevel?: boolean): void {
    this.#domain(domain, 'flushDomain');
    fail(ERR.EINVAL, 'flushDomain', 'not an unmanaged domain');
  }

  freeDomain(domain: number): void {
    const dom = this.#domain(domain, 'freeDomain');
    if (dom.devices.size > 0) fail(ERR.EBUSY, 'freeDomain', `${dom.devices.size} device(s) still attached`);
    dropAreas(dom);
    this.#domains.delete(domain);
    if (this.#lastDomain === dom) this.#lastDomain = undefined;
    this.#ops.freeDomain(dom);
    dom.identity.clear();
  }

  geometry(domain: number): DomainGeometry {
    const dom = this.#domain(domain, 'geometry');
    if (!dom.geometry) dom.geometry = this.#ops.geometry(dom);
    return dom.geometry;
  }

  attach(domain: number, device: number): void {
    const dom = this.#domain(domain, 'attach');
    const dev = this.#device(device, 'attach');
    if (dev.domain !== null) fail(ERR.EBUSY, 'attach', `${dev.bdf} is attached to domain ${dev.domain}`);
    for (const peer of this.#devices.values())
      if (peer !== dev && peer.sys.iommuGroup === dev.sys.iommuGroup && peer.domain !== null && peer.domain !== domain)
        fail(ERR.EINVAL, 'attach', `${peer.bdf} of the same IOMMU group is attached to domain ${peer.domain}`);
    try {
      this.#ops.attach(dom, dev);
    } catch (e) {
      // type1 replays the domain's maps into the container here: its pins and entries count now
      let bytes = 0n;
      for (const a of dom.areas) bytes += a.length;
      throw this.#limit(e, `replaying the domain's ${hex(bytes)} mapped bytes at attach`, bytes);
    } finally {
      this.#removal.rearm();
    }
    dev.domain = domain;
    dom.devices.add(device);
    dom.geometry = null;
  }

  detach(device: number): void {
    const dev = this.#device(device, 'detach');
    if (dev.domain === null) fail(ERR.EINVAL, 'detach', `${dev.bdf} is not attached`);
    this.#dropAttachment(dev, true);
  }

  /** Detach `dev` in the kernel and the records; `strict` throws the kernel's error, else it is dropped (removal). */
  #dropAttachment(dev: DeviceRec<KV>, strict = false): void {
    const dom = dev.domain === null ? undefined : this.#domains.get(dev.domain);
    if (dom) {
      try {
        this.#ops.detach(dom, dev);
      } catch (e) {
        if (strict) throw e;
      } finally {
        this.#removal.rearm();
      }
      dom.devices.delete(dev.id);
      dom.geometry = null;
    }
    dev.domain = null;
  }

  attachPasid(domain: number, device: number, pasid: number): void {
    this.#domain(domain, 'attachPasid');
    const dev = this.#device(device, 'attachPasid');
    void pasid;
    fail(ERR.ENOTSUP, 'attachPasid', dev.maxPasidLog2 === 0 ? `${dev.bdf} has no PASID capability` : 'PASID attach is not implemented by this backend');
  }

  detachPasid(device: number, pasid: number): void {
    const dev = this.#device(device, 'detachPasid');
    void pasid;
    fail(ERR.ENOTSUP, 'detachPasid', `${dev.bdf}: PASID attach is not implemented by this backend`);
  }

  // ---- mappings ----------------------------------------------------------------------------

  /**
   * The open translate domain `h` with a known geometry, for the fast paths; undefined sends the
   * call to the general path (which reports whatever is wrong).
   */
  #fastDomain(h: number): DomainRec<KD> | undefined {
    if (this.#closed) return undefined;
    let dom = this.#lastDomain;
    if (dom === undefined || dom.id !== h) {
      if (typeof h !== 'number') return undefined;
      dom = this.#domains.get(h);
      if (dom === undefined) return undefined;
      this.#lastDomain = dom;
    }
    return dom.type === 'translate' && dom.geometry !== null ? dom : undefined;
  }

  map(domain: number, iova: bigint, source: MapSource, perms: number): void {
    try {
      this.#map(domain, iova, source, perms);
    } catch (e) {
      const request = sourceBytes(source);
      throw this.#limit(e, `a map of ${hex(request)} bytes at IOVA ${typeof iova === 'bigint' ? hex(iova) : '?'}`, request);
    }
  }

  #map(domain: number, iova: bigint, source: MapSource, perms: number): void {
    // Fast path: a span, or one run, of whole pages at a page-aligned IOVA below 8 TiB, inside a
    // usable range and clear of other areas, in page numbers (no bigint arithmetic, which under an
    // emulator costs more than the rest of the call). Anything else, including every error, takes
    // the general path (mapping.ts), which checks the same things and reports them.
    const dom = this.#fastDomain(domain);
    if (dom !== undefined && (perms === 1 || perms === 2 || perms === 3) && typeof iova === 'bigint' && source !== null && typeof source === 'object') {
      // the source's length: a span's, or its one run's (undefined: the general path decides)
      let length: unknown;
      if (!Array.isArray(source)) length = (source as { length?: unknown }).length;
      else if (source.length === 1) {
        const r = source[0];
        if (typeof r === 'object' && r !== null && typeof r.pa === 'bigint') length = r.length;
      }
      if (typeof length === 'bigint') {
        const first = alignedPage(iova);
        const pages = alignedPage(length);
        const end = first + pages;
        if (first >= 0 && pages > 0 && end <= FAST_PAGE_LIMIT && this.#inFastRange(dom.geometry!, first, end) && !dom.areas.overlapsPages(first, end)) {
          const ops = this.#ops;
          const pieces = this.#pool.pieces(source, ops.mapSyscall);
          if (pieces.length === 1 && ops.active(dom)) ops.map(dom, iova, pieces[0], perms);
          else mapArea(ops, dom, iova, pieces, perms);
          dom.areas.insertAt(first, new AreaRec(iova, length, end, perms, pieces));
          return;
        }
      }
    }
    mapGeneral(this.#ops, this.#pool, this.#domain(domain, this.#ops.mapSyscall), () => this.geometry(domain), iova, source, perms);
  }

  #inFastRange(g: DomainGeometry, first: number, end: number): boolean {
    let fr: Float64Array | null | undefined;
    if (g === this.#lastGeometry) fr = this.#lastFastRanges;
    else {
      fr = this.#fastRanges.get(g);
      if (fr === undefined) {
        fr = fastRangesOf(g);
        this.#fastRanges.set(g, fr);
      }
      this.#lastGeometry = g;
      this.#lastFastRanges = fr;
    }
    if (fr === null) return false;
    for (let i = 0; i < fr.length; i += 2) if (fr[i] <= first && end <= fr[i + 1]) return true;
    return false;
  }

  unmap(domain: number, iova: bigint, length: bigint): bigint {
    // Fast path: exactly one whole area at a page-aligned IOVA below 8 TiB, found by its first
    // page. Anything else (several areas, a cut, nothing there, bad arguments) takes the general
    // path (mapping.ts).
    const dom = this.#fastDomain(domain);
    if (dom !== undefined && typeof iova === 'bigint' && typeof length === 'bigint') {
      const first = alignedPage(iova);
      const pages = alignedPage(length);
      const a = first >= 0 && pages > 0 ? dom.areas.atPage(first) : undefined;
      if (a !== undefined && a.endPage === first + pages) {
        unmapAreas(this.#ops, dom, iova, length);
        dom.areas.removeAt(first);
        return a.length;
      }
    }
    return unmapGeneral(this.#ops, this.#domain(domain, this.#ops.unmapSyscall), iova, length);
  }

  // ---- events ------------------------------------------------------------------------------

  onFault(listener: (fault: BackendFault) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    this.#checkOpen('onFault');
    return this.#faults.subscribe(listener);
  }

  /** Read the kernel log now (tests and waitForFault can call it instead of waiting for the timer). */
  pollFaults(): void {
    this.#faults.poll();
  }

  onDeviceEvent(listener: (event: DeviceEvent) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    // Removal of an open device comes from its VFIO request notifier (removal.ts); devices that
    // are not open, and new devices, are not watched (enumerate again).
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
      devices: [...this.#devices.values()].map((d) => ({ handle: d.id, bdf: d.bdf, group: d.sys.iommuGroup, domain: d.domain })),
      domains: [...this.#domains.values()].map((d) => ({
        handle: d.id,
        type: d.type,
        devices: [...d.devices],
        areas: [...d.areas].map((a) => ({ iova: hex(a.iova), length: hex(a.length), perms: a.perms, kernelPieces: a.pieces.length })),
        identity: [...d.identity.values()].flat().map((r) => ({ iova: hex(r.iova), length: hex(r.piece.length), mapped: r.mapped, ...(r.error ? { error: r.error } : {}) })),
      })),
      // pins: the addon's record (kernel maps of the allocation); mappings: what free() counts
      memory: [...this.#pool.allocations.values()].map((a) => ({ id: a.id, size: hex(a.size), lazy: a.lazy, pins: a.native.pins, mappings: mapCount(this.#ops, this.#domains.values(), a) })),
      native: this.#addon.stats(),
      removal: this.#removal.inspect(),
      kernel: this.#ops.inspect(),
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#faults.close();
    this.#deviceListeners.clear();
    this.#removal.close();
    const ops = this.#ops;
    const step = (fn: () => void) => {
      try {
        fn();
      } catch {
        /* keep closing */
      }
    };
    // areas → detach → destroy domains → close devices → backend fds → memory
    for (const dom of this.#domains.values()) {
      if (dom.type === 'translate' && dom.areas.length > 0 && ops.active(dom)) step(() => ops.unmap(dom, 0n, U64_MAX));
      dropAreas(dom);
    }
    for (const dev of this.#devices.values()) {
      if (dev.domain !== null) {
        const dom = this.#domains.get(dev.domain);
        if (dom) step(() => ops.detach(dom, dev));
        dom?.devices.delete(dev.id);
        dev.domain = null;
      }
    }
    for (const dom of this.#domains.values()) step(() => ops.freeDomain(dom));
    this.#domains.clear();
    this.#lastDomain = undefined;
    for (const dev of this.#devices.values()) step(() => ops.closeDevice(dev));
    this.#devices.clear();
    step(() => ops.close());
    this.#closed = true;
    step(() => this.#pool.releaseAll());
  }
}
