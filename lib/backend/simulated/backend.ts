/**
 * `SimulatedBackend`: the backend contract (lib/backend/contract.ts) implemented by a model of a
 * machine with an IOMMU, following the Linux kernel's (iommufd's) rules and errnos, plus the
 * simulator's test controls (controls.ts: hot-plug, policy changes, failure injection, DMA,
 * inspection).
 *
 * Here: the contract methods and the handle table. Elsewhere: options and the default machine
 * (machine.ts), the PCI bus (bus.ts), VFIO regions (regions.ts), device DMA (device-dma.ts), the
 * operation table, counters and failure injection (injection.ts), inspection (inspect.ts), the
 * mapping model (domain.ts, page-table.ts), DMA and faults (dma-engine.ts, faults.ts), the edu
 * device (edu-model.ts). About 630 lines for one idea, the contract's entry points: one method per
 * contract member, each with its fast path beside its general path, the optional page-number lane
 * beside the map/unmap it mirrors, and the test controls' one-line forwards to the modules above.
 *
 * Records live exactly as long as their objects: a handle's record goes at closeDevice /
 * freeDomain (handle numbers are still never reused: a number below the next one that has no
 * record was closed or freed), an allocation's at free, a device's at removal.
 */
import type { AllocateOptions, Arm64DomainConfig, BackendCapabilities, BackendFault, BackendMemory, DeviceEvent } from '../contract.js';
import type { DeviceRegions, DomainGeometry, IommuBackend, IovaRange, MapSource, MemoryInfo, PciDeviceInfo, PhysicalRun } from '../contract.js';
import { isSpan, sourceBytes, spanRuns } from '../memory-span.js';
import { alignedPage } from '../../util/u64.js';
import { BackendError } from '../../errors.js';
import { groupsOf, withGroupViability } from '../groups.js';
import { entryLimitMessage, memlockMessage } from '../limits.js';
import { attachDevice, attachPasid, checkPasid, detachAll, detachDevice, detachPasid } from './attachments.js';
import { SimBus } from './bus.js';
import type { DmaOptions, DmaReadResult, DmaWriteResult, SimulatorTestControls } from './controls.js';
import { DeviceDma } from './device-dma.js';
import { DeviceLocks } from './device-lock.js';
import { type DomainEnv, type DomainType, SimDomain } from './domain.js';
import { DmaEngine } from './dma-engine.js';
import { checkMapArgs, checkPageRange, checkPageRun, checkRunLengths, pageAddress, unmapGeneral, unmapTypeError } from './map-args.js';
import { FaultLog, type SimulatedFault } from './faults.js';
import { FailureInjector, OP_INDEX, SIM_SYSCALLS, type SimOpName } from './injection.js';
import { type InspectOptions, type MachineFacts, type SimInspection, inspectSimulator } from './inspect.js';
import { capabilitiesOf, parseOptions, type SimDeviceSpec, type SimulatedBackendOptions } from './machine.js';
import { Listeners } from './listeners.js';
import { PhysicalMemory } from './physical-memory.js';
import { DeviceHandle, SimRegions } from './regions.js';
import { checkArm64Config } from './stage1.js';
import { checkHandle, checkU64, describe, ERR, fail, hex } from './util.js';

export { SIM_SYSCALLS, type SimOpName } from './injection.js';
export type { DmaOptions, DmaReadResult, DmaWriteResult } from './controls.js';
export type { InspectOptions, SimInspection } from './inspect.js';

const OP_MAP = OP_INDEX.map;
const OP_UNMAP = OP_INDEX.unmap;
const MAP = SIM_SYSCALLS.map;
const UNMAP = SIM_SYSCALLS.unmap;

/**
 * The simulated IOMMU backend: page tables, IOVA apertures and reserved regions, simulated RAM,
 * and a DMA engine that moves real bytes and faults, with the same errnos and syscall names as the
 * kernel. Models x86_64 VT-d by default, Arm64 SMMU with `arch: 'arm64'`. Chosen by
 * `backend: 'sim'` or when no IOMMU is usable; also implements {@link SimulatorTestControls}.
 */
export class SimulatedBackend implements IommuBackend, SimulatorTestControls {
  readonly kind = 'simulated' as const;
  readonly reason: string;
  readonly capabilities: BackendCapabilities;
  readonly memoryInfo: MemoryInfo = { physicalIsReal: true };
  /** The architecture modelled. */
  readonly arch: 'x86_64' | 'arm64';
  /** IOMMU input address width in bits. */
  readonly addressWidth: number;
  /** Levels of the simulated page tables. */
  readonly pageTableLevels: number;
  /** Supported page sizes as a bitmap (bit n set = 2^n bytes). */
  readonly pageSizes: bigint;
  /** Reserved IOVA regions every device brings (the MSI window). */
  readonly reservedRegions: readonly IovaRange[];
  /**
   * The simulated machine's name (option `machine`, else `DMA_IOMMU_SIM_MACHINE`): backends naming
   * the same machine, in any process, see each other's open devices as busy. null: private.
   */
  readonly machine: string | null;

  readonly #phys: PhysicalMemory;
  readonly #env: DomainEnv;
  readonly #engine: DmaEngine;
  readonly #faults: FaultLog;
  readonly #dma: DeviceDma;
  readonly #bus: SimBus;
  /** Live handles (domains and open devices) by number. */
  readonly #objects = new Map<number, SimDomain | DeviceHandle>();
  /** Modelled limits (options memlockLimit, dmaEntryLimit), null when neither is set. */
  readonly #limits: { readonly memlock: bigint | null; readonly entries: number | null } | null;
  /** The next handle number (handles are never reused). */
  #nextHandle = 1;
  /** The domain looked up last (map/unmap's fast path; null after it is freed). */
  #lastDomain: SimDomain | null = null;
  readonly #faultListeners = new Listeners<BackendFault>('fault', () => this.listenerErrors++);
  readonly #deviceListeners = new Listeners<DeviceEvent>('device-event', () => this.listenerErrors++);
  readonly #fail = new FailureInjector();
  /** Cross-process device ownership of a named machine (device-lock.ts), or null when private. */
  readonly #locks: DeviceLocks | null;
  #closed = false;
  /** How many times a fault or device-event listener threw (the error is reported and delivery goes on). */
  listenerErrors = 0;

  constructor(options: SimulatedBackendOptions = {}) {
    const m = parseOptions(options);
    this.arch = m.arch;
    this.reason = m.reason;
    this.addressWidth = m.addressWidth;
    this.pageTableLevels = m.pageTableLevels;
    this.pageSizes = m.pageSizes;
    this.reservedRegions = m.reservedRegions;
    this.machine = m.machine;
    this.#locks = m.machine === null ? null : new DeviceLocks(m.machine);
    this.#phys = new PhysicalMemory(m.ram);
    this.#env = {
      addressWidth: m.addressWidth,
      levels: m.pageTableLevels,
      pageSizes: m.pageSizes,
      allow2M: (m.pageSizes & (1n << 21n)) !== 0n,
      allow1G: (m.pageSizes & (1n << 30n)) !== 0n,
      phys: this.#phys,
    };
    this.capabilities = capabilitiesOf(m.arch, m.dmaEntryLimit, m.iommu);
    this.#limits = m.memlockLimit === null && m.dmaEntryLimit === null ? null : { memlock: m.memlockLimit, entries: m.dmaEntryLimit };
    this.#faults = new FaultLog(m.faultLogCapacity, m.iommu === 'virtio' || m.iommu === 'amd' ? m.iommu : null);
    this.#engine = new DmaEngine({ arch: m.arch, writeOnlyEnforced: this.capabilities.writeOnlyMappings === 'enforced', phys: this.#phys, groupDomain: (dev) => this.#bus.groupDomain(dev) });
    this.#dma = new DeviceDma({
      arch: m.arch,
      engine: this.#engine,
      faults: this.#faults,
      listeners: this.#faultListeners,
      bus: () => this.#bus,
      closed: () => this.#closed,
      eduDelayMs: m.eduDmaDelayMs,
    });
    this.#bus = new SimBus(m.devices, {
      reservedRegions: this.reservedRegions,
      defaultDomainTypes: this.capabilities.domainTypes,
      eduHost: (d) => this.#dma.eduHost(d),
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  // ---- plumbing ---------------------------------------------------------------------------

  /** Count the op, fire an armed injection, refuse when closed. */
  #begin(op: SimOpName): void {
    this.#fail.count(op);
    if (this.#closed) fail(ERR.EBADF, SIM_SYSCALLS[op], 'backend is closed');
  }

  /** A leaf operation off the hot paths: #begin, then `fn`, its errors counted by errno. */
  #counted<T>(op: SimOpName, fn: () => T): T {
    this.#begin(op);
    try {
      return fn();
    } catch (e) {
      this.#fail.countError(e);
      throw e;
    }
  }

  #domain(h: unknown, syscall: string): SimDomain {
    // the last domain found answers at once (the map/unmap loops' case): it is dropped when freed
    // or at close, and handle numbers are never reused
    const last = this.#lastDomain;
    if (last !== null && last.handle === h) return last;
    checkHandle(h, 'domain');
    const o = this.#objects.get(h);
    if (o instanceof SimDomain) {
      this.#lastDomain = o;
      return o;
    }
    fail(ERR.ENOENT, syscall, `no domain with handle ${String(h)}`);
  }

  #deviceHandle(h: unknown, syscall: string): DeviceHandle {
    checkHandle(h, 'device');
    const o = this.#objects.get(h);
    if (o === undefined && h < this.#nextHandle) fail(ERR.EBADF, syscall, `device handle ${h} was closed`);
    if (!(o instanceof DeviceHandle)) fail(ERR.ENOENT, syscall, `no device with handle ${String(h)}`);
    if (o.device.removed) fail(ERR.ENODEV, syscall, `${o.device.bdf} was removed`);
    return o;
  }

  #emitDevice(event: DeviceEvent): void {
    this.#deviceListeners.emit(event);
  }

  // ---- devices ----------------------------------------------------------------------------

  enumerateDevices(): PciDeviceInfo[] {
    this.#begin('enumerateDevices');
    return withGroupViability([...this.#bus.devices.values()].sort((a, b) => (a.bdf < b.bdf ? -1 : 1)).map((d) => d.info()));
  }

  openDevice(bdf: string): number {
    return this.#counted('openDevice', () => {
      const S = SIM_SYSCALLS.openDevice;
      const d = this.#bus.lookup(bdf, S);
      if (!d.usable) fail(ERR.ENOENT, S, `${d.bdf} has no VFIO device node: ${d.whyNotUsable ?? 'not usable'}`);
      if (d.handle !== 0) fail(ERR.EBUSY, S, `${d.bdf} is already open (handle ${d.handle})`);
      const holder = this.#locks === null ? null : this.#locks.acquire(d.bdf);
      if (holder !== null) {
        fail(ERR.EBUSY, S, `${d.bdf} of simulated machine '${this.machine}' is open in ${holder === process.pid ? 'another backend of this process' : holder === 0 ? 'another process' : `process ${holder}`}`);
      }
      // the kernel's DMA-owner claim (lib/backend/groups.ts): EPERM when a group member has a host driver
      const g = d.iommuGroup === null ? undefined : groupsOf([...this.#bus.devices.values()]).get(d.iommuGroup);
      if (g && !g.viable) {
        this.#locks?.release(d.bdf);
        fail(ERR.EPERM, S, `${d.bdf}: ${g.problem}`);
      }
      const h = this.#nextHandle++;
      this.#objects.set(h, new DeviceHandle(h, d));
      d.handle = h;
      return h;
    });
  }

  closeDevice(device: number): void {
    this.#fail.ops[OP_INDEX.closeDevice]++;
    if (this.#closed) return;
    checkHandle(device, 'device');
    const o = this.#objects.get(device);
    if (o === undefined) {
      if (device < this.#nextHandle) return; // closed already (its record is gone): close is idempotent
      this.#fail.countError(new BackendError(ERR.ENOENT, 'close'));
      fail(ERR.ENOENT, 'close', `no device with handle ${device}`);
    }
    if (!(o instanceof DeviceHandle)) {
      this.#fail.countError(new BackendError(ERR.EINVAL, 'close'));
      fail(ERR.EINVAL, 'close', `handle ${device} is a domain, not a device`);
    }
    o.closed = true;
    this.#objects.delete(device);
    const d = o.device;
    detachAll(d, o.handle);
    if (d.handle === o.handle) {
      d.handle = 0;
      // a removed device gave its lock back at removal (its BDF may belong to a new device now)
      if (!d.removed) this.#locks?.release(d.bdf);
    }
    // VFIO disables the device on release: bus mastering off
    if (!d.removed) {
      const cmd = d.model.config.read(0x04, 2);
      d.model.config.write(0x04, 2, cmd & ~0x4);
    }
  }

  deviceRegions(device: number): DeviceRegions {
    return this.#counted('deviceRegions', () => {
      return new SimRegions(() => this.#closed, this.#deviceHandle(device, SIM_SYSCALLS.deviceRegions));
    });
  }

  availableDomainTypes(device: number): number {
    return this.#counted('availableDomainTypes', () => {
      return this.#deviceHandle(device, SIM_SYSCALLS.availableDomainTypes).device.availableDomainTypes;
    });
  }

  inputMappingIds(device: number): number[] {
    return this.#counted('inputMappingIds', () => {
      const dh = this.#deviceHandle(device, SIM_SYSCALLS.inputMappingIds);
      if (this.arch !== 'arm64') fail(ERR.ENOTSUP, SIM_SYSCALLS.inputMappingIds, 'input mapping IDs exist on arm64 only');
      return [...dh.device.streamIds];
    });
  }

  // ---- memory -----------------------------------------------------------------------------

  allocateMemory(size: bigint, options: AllocateOptions = {}): BackendMemory {
    return this.#counted('allocateMemory', () => {
      if (typeof size !== 'bigint') throw new TypeError(`size must be a bigint, got ${describe(size)}`);
      if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
      return this.#phys.allocate(size, options);
    });
  }

  // ---- domains ----------------------------------------------------------------------------

  allocDomain(type: 'translate' | 'passthrough' | 'unmanaged'): number {
    return this.#counted('allocDomain', () => {
      if (typeof type !== 'string') throw new TypeError(`type must be a string, got ${describe(type)}`);
      const syscall = type === 'translate' ? 'IOMMU_IOAS_ALLOC' : 'IOMMU_HWPT_ALLOC';
      if (type !== 'translate' && type !== 'passthrough' && type !== 'unmanaged') {
        fail(ERR.ENOTSUP, syscall, `unknown domain type '${type}'`);
      }
      if (type === 'unmanaged' && this.arch !== 'arm64') {
        fail(ERR.ENOTSUP, syscall, 'Unmanaged (caller-owned stage-1) domains exist on arm64 only');
      }
      const h = this.#nextHandle++;
      this.#objects.set(h, new SimDomain(h, type as DomainType, this.#env));
      return h;
    });
  }

  configureDomain(domain: number, config: Arm64DomainConfig): void {
    this.#counted('configureDomain', () => {
      const S = SIM_SYSCALLS.configureDomain;
      const d = this.#domain(domain, S);
      if (d.type !== 'unmanaged') fail(ERR.EINVAL, S, `domain ${domain} is ${d.type}, not Unmanaged`);
      d.stage1!.configure(checkArm64Config(config, this.#phys, S));
    });
  }

  flushDomain(domain: number, vaList?: readonly bigint[], lastLevel?: boolean): void {
    return this.#counted('flushDomain', () => {
      const S = SIM_SYSCALLS.flushDomain;
      const d = this.#domain(domain, S);
      if (d.type !== 'unmanaged') fail(ERR.EINVAL, S, `domain ${domain} is ${d.type}: the kernel owns its tables`);
      if (lastLevel !== undefined && typeof lastLevel !== 'boolean') throw new TypeError('lastLevel must be a boolean');
      if (vaList === undefined) {
        d.stage1!.flush();
        return;
      }
      if (!Array.isArray(vaList)) throw new TypeError('vaList must be an array of bigint');
      const pages = vaList.map((va: unknown) => {
        checkU64(va, 'vaList entry', S);
        return Number(va >> 12n);
      });
      d.stage1!.flush(pages);
    });
  }

  freeDomain(domain: number): void {
    this.#counted('freeDomain', () => {
      const S = SIM_SYSCALLS.freeDomain;
      const d = this.#domain(domain, S);
      if (d.attached) fail(ERR.EBUSY, S, `domain ${domain} still has ${d.attachments.size} attachment(s)`);
      d.dropAll();
      this.#objects.delete(domain);
      if (this.#lastDomain === d) this.#lastDomain = null;
    });
  }

  geometry(domain: number): DomainGeometry {
    return this.#counted('geometry', () => {
      return this.#domain(domain, SIM_SYSCALLS.geometry).geometry();
    });
  }

  attach(domain: number, device: number): void {
    this.#counted('attach', () => {
      const S = SIM_SYSCALLS.attach;
      attachDevice(this.#bus, this.#domain(domain, S), this.#deviceHandle(device, S));
    });
  }

  detach(device: number): void {
    this.#counted('detach', () => detachDevice(this.#deviceHandle(device, SIM_SYSCALLS.detach)));
  }

  attachPasid(domain: number, device: number, pasid: number): void {
    this.#counted('attachPasid', () => {
      const S = SIM_SYSCALLS.attachPasid;
      checkPasid(pasid);
      attachPasid(this.#domain(domain, S), this.#deviceHandle(device, S), pasid);
    });
  }

  detachPasid(device: number, pasid: number): void {
    this.#counted('detachPasid', () => {
      checkPasid(pasid);
      detachPasid(this.#deviceHandle(device, SIM_SYSCALLS.detachPasid), pasid);
    });
  }

  // ---- mappings ---------------------------------------------------------------------------

  map(domain: number, iova: bigint, source: MapSource, perms: number): void {
    this.#fail.ops[OP_MAP]++;
    if (this.#fail.injections.length !== 0) this.#fail.inject('map');
    try {
      if (this.#closed) fail(ERR.EBADF, MAP, 'backend is closed');
      if (this.#limits !== null) this.#checkLimits(this.#limits, domain, iova, source);
      // Fast path: one run, every address and length page-aligned and below 8 TiB, a known
      // domain: int32 page numbers from here on (see alignedPage). Anything else (a span, too: the
      // platform's fast paths use the page-number lane), and anything beyond the page table's
      // reach, takes the general path, which decides the same way.
      if (typeof iova === 'bigint' && Array.isArray(source) && source.length === 1 && (perms === 1 || perms === 2 || perms === 3)) {
        const r = source[0] as PhysicalRun;
        if (r !== null && typeof r === 'object') {
          const pa = r.pa;
          const len = r.length;
          if (typeof pa === 'bigint' && typeof len === 'bigint') {
            const page = alignedPage(iova);
            const pfn = alignedPage(pa);
            const pages = alignedPage(len);
            if (page >= 0 && pfn >= 0 && pages > 0) {
              const d = this.#domain(domain, MAP);
              if (!d.mapPages(page, pages, pfn, perms)) d.mapSlow(iova, len, source, perms);
              return;
            }
          }
        }
      }
      this.#mapGeneral(domain, iova, source, perms);
    } catch (e) {
      this.#fail.countError(e);
      throw e;
    }
  }

  /** The modelled limits (lib/backend/limits.ts texts): type1's entries per domain (ENOSPC), then the pin under RLIMIT_MEMLOCK (ENOMEM). */
  #checkLimits(l: { readonly memlock: bigint | null; readonly entries: number | null }, domain: number, iova: bigint, source: MapSource): void {
    const d = this.#domain(domain, MAP);
    if (l.entries !== null && d.areaCount >= l.entries) fail(ERR.ENOSPC, MAP, entryLimitMessage(l.entries));
    if (l.memlock === null || source === null || typeof source !== 'object') return;
    const request = sourceBytes(source);
    let pinned = 0n;
    for (const o of this.#objects.values()) if (o instanceof SimDomain) for (const a of o.areas()) pinned += a.length;
    if (pinned + request > l.memlock) {
      fail(ERR.ENOMEM, MAP, memlockMessage({ limit: l.memlock, locked: pinned, request, what: `a map of ${hex(request)} bytes at IOVA ${typeof iova === 'bigint' ? hex(iova) : '?'}` }));
    }
  }

  /** map's general case (kept out of map so V8 can inline its fast path): checks, in the kernel's order, then the work. */
  #mapGeneral(domain: number, iova: bigint, source: MapSource, perms: number): void {
    // a span decides as the runs it names (after the iova's type, which checkMapArgs reports first)
    const runs = typeof iova === 'bigint' && source !== null && isSpan(source) ? spanRuns(source, MAP) : (source as readonly PhysicalRun[]);
    const length = checkMapArgs(iova, runs, perms);
    const d = this.#domain(domain, MAP);
    checkRunLengths(runs);
    d.mapSlow(iova, length, runs, perms);
  }

  unmap(domain: number, iova: bigint, length: bigint): bigint {
    this.#fail.ops[OP_UNMAP]++;
    if (this.#fail.injections.length !== 0) this.#fail.inject('unmap');
    try {
      if (this.#closed) fail(ERR.EBADF, UNMAP, 'backend is closed');
      if (typeof iova !== 'bigint' || typeof length !== 'bigint') unmapTypeError(iova, length);
      const d = this.#domain(domain, UNMAP);
      // Fast path: page-aligned, below 8 TiB, exactly one table area (int32 page numbers).
      const page = alignedPage(iova);
      const pages = alignedPage(length);
      if (page >= 0 && pages > 0 && d.unmapPages(page, pages) >= 0) return length;
      return unmapGeneral(d, iova, length);
    } catch (e) {
      this.#fail.countError(e);
      throw e;
    }
  }

  // The page-number lane (contract.ts): the platform's fast paths checked and converted every
  // address once; these take the page numbers and do what map/unmap do on the same values, in the
  // same order (count, injection, closed, limits, domain, then the domain's own checks).

  mapPageRun(domain: number, page: number, pages: number, pfn: number, perms: number): void {
    this.#fail.ops[OP_MAP]++;
    if (this.#fail.injections.length !== 0) this.#fail.inject('map');
    try {
      if (this.#closed) fail(ERR.EBADF, MAP, 'backend is closed');
      checkPageRun(page, pages, pfn, perms);
      if (this.#limits !== null) this.#checkLimits(this.#limits, domain, pageAddress(page), [{ pa: pageAddress(pfn), length: pageAddress(pages) }]);
      const d = this.#domain(domain, MAP);
      if (!d.mapPages(page, pages, pfn, perms)) d.mapSlow(pageAddress(page), pageAddress(pages), [{ pa: pageAddress(pfn), length: pageAddress(pages) }], perms);
    } catch (e) {
      this.#fail.countError(e);
      throw e;
    }
  }

  unmapPageRange(domain: number, page: number, pages: number): void {
    this.#fail.ops[OP_UNMAP]++;
    if (this.#fail.injections.length !== 0) this.#fail.inject('unmap');
    try {
      if (this.#closed) fail(ERR.EBADF, UNMAP, 'backend is closed');
      checkPageRange(page, pages);
      const d = this.#domain(domain, UNMAP);
      if (d.unmapPages(page, pages) < 0) unmapGeneral(d, pageAddress(page), pageAddress(pages));
    } catch (e) {
      this.#fail.countError(e);
      throw e;
    }
  }

  // ---- events -----------------------------------------------------------------------------

  onFault(listener: (fault: BackendFault) => void): () => void {
    return this.#faultListeners.add(listener);
  }

  onDeviceEvent(listener: (event: DeviceEvent) => void): () => void {
    return this.#deviceListeners.add(listener);
  }

  close(): void {
    if (this.#closed) return;
    for (const o of this.#objects.values()) {
      if (o instanceof DeviceHandle && !o.closed) {
        o.closed = true;
        detachAll(o.device, o.handle);
        o.device.handle = 0;
      }
    }
    for (const d of this.#bus.devices.values()) d.model.stop();
    for (const o of this.#objects.values()) if (o instanceof SimDomain) o.dropAll();
    this.#objects.clear();
    this.#lastDomain = null;
    this.#phys.releaseAll();
    this.#locks?.releaseAll();
    this.#closed = true;
  }

  // ---- test controls (SimulatorTestControls) ------------------------------------------------

  addDevice(spec: SimDeviceSpec): PciDeviceInfo {
    if (this.#closed) fail(ERR.EBADF, 'sysfs', 'backend is closed');
    const dev = this.#bus.add(spec);
    this.#emitDevice({ bdf: dev.bdf, present: true, availableDomainTypes: dev.availableDomainTypes });
    return dev.info();
  }

  removeDevice(bdf: string): void {
    if (this.#closed) fail(ERR.EBADF, 'sysfs', 'backend is closed');
    const dev = this.#bus.lookup(bdf, 'sysfs');
    dev.removed = true;
    dev.model.stop();
    detachAll(dev, dev.handle);
    if (dev.handle !== 0) this.#locks?.release(dev.bdf); // the hardware is gone: nothing holds it
    this.#bus.devices.delete(dev.bdf);
    dev.availableDomainTypes = 0;
    this.#emitDevice({ bdf: dev.bdf, present: false, availableDomainTypes: 0 });
  }

  setAvailableDomainTypes(bdf: string, mask: number): void {
    if (this.#closed) fail(ERR.EBADF, 'sysfs', 'backend is closed');
    if (typeof mask !== 'number' || !Number.isInteger(mask) || mask < 0 || mask > 0xffff) {
      throw new TypeError(`mask must be an integer bitmask, got ${describe(mask)}`);
    }
    const dev = this.#bus.lookup(bdf, 'sysfs');
    dev.availableDomainTypes = mask;
    this.#emitDevice({ bdf: dev.bdf, present: true, availableDomainTypes: mask });
  }

  failNth(n: number, errno: number, op?: string): void {
    this.#fail.failNth(n, errno, op);
  }

  clearFailures(): void {
    this.#fail.clear();
  }

  faultLog(): SimulatedFault[] {
    return this.#faults.entries();
  }

  clearFaults(): void {
    this.#faults.clear();
  }

  dmaRead(bdf: string, iova: bigint, length: number, options?: DmaOptions): DmaReadResult {
    return this.#dma.read(bdf, iova, length, options);
  }

  dmaWrite(bdf: string, iova: bigint, data: Uint8Array, options?: DmaOptions): DmaWriteResult {
    return this.#dma.write(bdf, iova, data, options);
  }

  translate(domain: number, iova: bigint): {
    /** The physical address the IOVA translates to. */
    pa: bigint;
    /** The mapping's permissions: bit 0 read, bit 1 write. */
    perms: number;
    /** The page-table level of the leaf entry (1 = 4 KiB page, 2 = 2 MiB, 3 = 1 GiB). */
    level: number;
  } | null {
    checkU64(iova, 'iova', 'translate');
    return this.#domain(domain, 'translate').translate(iova);
  }

  verifyPageTables(): string | null {
    for (const o of this.#objects.values()) {
      if (o instanceof SimDomain && o.table !== null) {
        const p = o.table.verify();
        if (p !== null) return `domain ${o.handle}: ${p}`;
      }
    }
    return null;
  }

  inspect(options: InspectOptions = {}): SimInspection {
    return inspectSimulator(
      {
        ...this.#machineFacts(),
        closed: this.#closed,
        phys: this.#phys,
        bus: this.#bus,
        objects: [...this.#objects.values()],
        faults: this.#faults,
        engine: this.#engine,
        injector: this.#fail,
        listenerErrors: this.listenerErrors,
        listeners: { fault: this.#faultListeners.size, device: this.#deviceListeners.size },
      },
      options,
    );
  }

  #machineFacts(): MachineFacts {
    const { reason, capabilities, arch, addressWidth, pageTableLevels, pageSizes, reservedRegions } = this;
    return { reason, capabilities, arch, addressWidth, pageTableLevels, pageSizes, reservedRegions };
  }
}
