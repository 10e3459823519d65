/**
 * `SimulatedBackend`: the backend contract (lib/backend/contract.ts) implemented by a model of a
 * machine with an IOMMU, following the Linux kernel's (iommufd's) rules and errnos. Test controls
 * (device hot-plug, policy changes, fault injection, DMA, inspection) are extra methods.
 *
 * See machine.ts for the default machine and options, domain.ts and page-table.ts for the
 * mapping model, dma-engine.ts and faults.ts for DMA and fault reporting, edu-model.ts for the
 * edu device.
 */
import type {
  AllocateOptions,
  Arm64DomainConfig,
  BackendCapabilities,
  BackendFault,
  BackendMemory,
  DeviceEvent,
  DeviceRegions,
  DomainGeometry,
  IommuBackend,
  IovaRange,
  MemoryInfo,
  PciDeviceInfo,
  PhysicalRun,
} from '../contract.js';
import { alignedPage } from '../../core/u64.js';
import { BackendError } from '../../errors.js';
import { type DomainEnv, type DomainType, SimDomain } from './domain.js';
import { DmaEngine, MAX_DMA_BYTES } from './dma-engine.js';
import type { EduHost } from './edu-model.js';
import { FaultLog, type FaultInput, type SimulatedFault } from './faults.js';
import {
  ARM64_SW_MSI_WINDOW,
  DEFAULT_DEVICES,
  DEFAULT_PAGE_SIZES,
  defaultRamRanges,
  type SimDeviceSpec,
  SimDevice,
  type SimulatedBackendOptions,
  X86_MSI_WINDOW,
} from './machine.js';
import { GIB, PhysicalMemory, type RamRange } from './physical-memory.js';
import { checkArm64Config } from './stage1.js';
import {
  checkHandle,
  checkU64,
  describe,
  ERR,
  errnoName,
  fail,
  hex,
  normalizeBdf,
  parseBdf,
  TWO_POW_52,
  U64_MAX,
} from './util.js';

const DT_TRANSLATE = 1 << 0;
const DT_PASSTHROUGH = 1 << 1;
const DT_UNMANAGED = 1 << 2;

/** Leaf operations, their syscall names (for errors and failNth). */
export const SIM_SYSCALLS = {
  enumerateDevices: 'sysfs',
  allocateMemory: 'mmap',
  openDevice: 'VFIO_DEVICE_BIND_IOMMUFD',
  closeDevice: 'close',
  deviceRegions: 'VFIO_DEVICE_GET_REGION_INFO',
  availableDomainTypes: 'IOMMU_GET_HW_INFO',
  inputMappingIds: 'IOMMU_GET_HW_INFO',
  allocDomain: 'IOMMU_IOAS_ALLOC',
  configureDomain: 'IOMMU_HWPT_ALLOC',
  flushDomain: 'IOMMU_HWPT_INVALIDATE',
  freeDomain: 'IOMMU_DESTROY',
  geometry: 'IOMMU_IOAS_IOVA_RANGES',
  attach: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT',
  detach: 'VFIO_DEVICE_DETACH_IOMMUFD_PT',
  attachPasid: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT',
  detachPasid: 'VFIO_DEVICE_DETACH_IOMMUFD_PT',
  map: 'IOMMU_IOAS_MAP',
  unmap: 'IOMMU_IOAS_UNMAP',
} as const;
export type SimOpName = keyof typeof SIM_SYSCALLS;
const OP_NAMES = Object.keys(SIM_SYSCALLS) as SimOpName[];
const OP_INDEX = Object.fromEntries(OP_NAMES.map((n, i) => [n, i])) as Record<SimOpName, number>;
const OP_MAP = OP_INDEX.map;
const OP_UNMAP = OP_INDEX.unmap;
const MAP = SIM_SYSCALLS.map;
const UNMAP = SIM_SYSCALLS.unmap;

export type DmaReadResult = { readonly ok: true; readonly data: Uint8Array } | { readonly ok: false; readonly fault: SimulatedFault };
export interface DmaWriteResult {
  readonly ok: boolean;
  readonly bytesWritten: number;
  readonly fault?: SimulatedFault;
}
export interface DmaOptions {
  /** Tag the request with this PASID. */
  readonly pasid?: number;
}
export interface InspectOptions {
  /** Areas listed per domain (default 1000; the count is always exact). */
  readonly maxAreas?: number;
  /** Fault records listed (default 100, newest). */
  readonly maxFaults?: number;
}

class DeviceHandle {
  closed = false;
  constructor(
    readonly handle: number,
    readonly device: SimDevice,
  ) {}
}

interface Injection {
  remaining: number;
  readonly errno: number;
  readonly op: string | undefined;
}

/** Config space + BAR access of one open device (pread/pwrite on the VFIO regions). */
class SimRegions implements DeviceRegions {
  readonly #dh: DeviceHandle;
  readonly #backend: SimulatedBackend;
  constructor(backend: SimulatedBackend, dh: DeviceHandle) {
    this.#backend = backend;
    this.#dh = dh;
  }

  #device(syscall: string): SimDevice {
    if (this.#backend.closed || this.#dh.closed) fail(ERR.EBADF, syscall, 'device handle was closed');
    const d = this.#dh.device;
    if (d.removed) fail(ERR.ENODEV, syscall, `${d.bdf} was removed`);
    return d;
  }

  configRead(offset: number, size: 1 | 2 | 4): number {
    const d = this.#device('pread');
    checkAccess(offset, size, d.model.config.size, 'pread');
    return d.model.config.read(offset, size);
  }

  configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    const d = this.#device('pwrite');
    checkAccess(offset, size, d.model.config.size, 'pwrite');
    checkValue32(value);
    d.model.config.write(offset, size, value >>> 0);
  }

  barRead32(bar: number, offset: number): number {
    const d = this.#device('pread');
    checkBar(d, bar, offset, 4, 'pread');
    return Number(d.model.mmioRead(bar, offset, 4));
  }

  barWrite32(bar: number, offset: number, value: number): void {
    const d = this.#device('pwrite');
    checkBar(d, bar, offset, 4, 'pwrite');
    checkValue32(value);
    d.model.mmioWrite(bar, offset, 4, BigInt(value >>> 0));
  }

  barRead64(bar: number, offset: number): bigint {
    const d = this.#device('pread');
    checkBar(d, bar, offset, 8, 'pread');
    return d.model.mmioRead(bar, offset, 8);
  }

  barWrite64(bar: number, offset: number, value: bigint): void {
    const d = this.#device('pwrite');
    checkBar(d, bar, offset, 8, 'pwrite');
    if (typeof value !== 'bigint') throw new TypeError(`value must be a bigint, got ${describe(value)}`);
    if (value < 0n || value > U64_MAX) fail(ERR.EINVAL, 'pwrite', 'value does not fit in 64 bits');
    d.model.mmioWrite(bar, offset, 8, value);
  }
}

function checkAccess(offset: number, size: number, limit: number, syscall: string): void {
  if (typeof offset !== 'number' || !Number.isInteger(offset)) throw new TypeError(`offset must be an integer, got ${describe(offset)}`);
  if (size !== 1 && size !== 2 && size !== 4) throw new TypeError(`size must be 1, 2 or 4, got ${describe(size)}`);
  if (offset < 0 || offset + size > limit || offset % size !== 0) {
    fail(ERR.EINVAL, syscall, `config access of ${size} bytes at ${hex(offset)} is outside the ${limit}-byte space or unaligned`);
  }
}

function checkValue32(value: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < -0x80000000 || value > 0xffffffff) {
    throw new TypeError(`value must be a 32-bit integer, got ${describe(value)}`);
  }
}

function checkBar(d: SimDevice, bar: number, offset: number, size: number, syscall: string): void {
  if (typeof bar !== 'number' || !Number.isInteger(bar)) throw new TypeError(`bar must be an integer, got ${describe(bar)}`);
  if (typeof offset !== 'number' || !Number.isInteger(offset)) throw new TypeError(`offset must be an integer, got ${describe(offset)}`);
  const barSize = bar >= 0 && bar <= 5 ? d.model.barSize(bar) : 0;
  if (barSize === 0) fail(ERR.EINVAL, syscall, `${d.bdf} has no BAR ${bar}`);
  if (offset < 0 || offset + size > barSize || offset % size !== 0) {
    fail(ERR.EINVAL, syscall, `${size}-byte access at ${hex(offset)} is outside BAR ${bar} (${hex(barSize)} bytes) or unaligned`);
  }
}

function toNumber(v: bigint | number, what: string): number {
  if (typeof v === 'bigint') {
    if (v < 0n || v > BigInt(TWO_POW_52)) throw new RangeError(`${what} out of range`);
    return Number(v);
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new TypeError(`${what} must be a non-negative integer`);
  return v;
}

export class SimulatedBackend implements IommuBackend {
  readonly kind = 'simulated' as const;
  readonly reason: string;
  readonly capabilities: BackendCapabilities;
  readonly memoryInfo: MemoryInfo = { physicalIsReal: true };
  readonly arch: 'x86_64' | 'arm64';
  readonly addressWidth: number;
  readonly pageTableLevels: number;
  readonly pageSizes: bigint;
  readonly reservedRegions: readonly IovaRange[];

  readonly #phys: PhysicalMemory;
  readonly #env: DomainEnv;
  readonly #engine: DmaEngine;
  readonly #faults: FaultLog;
  readonly #eduDelay: number;
  /** Present devices by BDF. */
  readonly #devices = new Map<string, SimDevice>();
  /** Handles (domains and open devices) by number; never reused. */
  readonly #objects: Array<SimDomain | DeviceHandle | undefined> = [undefined];
  #nextGroup = 1;
  #nextBar = 0xfd000000;
  readonly #faultListeners = new Set<(fault: BackendFault) => void>();
  readonly #deviceListeners = new Set<(event: DeviceEvent) => void>();
  /** Calls per operation, by OP_INDEX. */
  readonly #ops = new Float64Array(OP_NAMES.length);
  readonly #errors: Record<string, number> = {};
  #injections: Injection[] = [];
  #closed = false;
  listenerErrors = 0;

  constructor(options: SimulatedBackendOptions = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    const arch = options.arch ?? 'x86_64';
    if (arch !== 'x86_64' && arch !== 'arm64') throw new RangeError(`arch must be 'x86_64' or 'arm64', got ${describe(arch)}`);
    this.arch = arch;
    this.reason = options.reason ?? 'simulated backend requested';
    if (typeof this.reason !== 'string') throw new TypeError('reason must be a string');
    const width = options.addressWidth ?? (arch === 'arm64' ? 48 : 39);
    if (!Number.isInteger(width) || width < 32 || width > 57) throw new RangeError(`addressWidth must be an integer in 32..57, got ${describe(width)}`);
    this.addressWidth = width;
    this.pageTableLevels = Math.ceil((width - 12) / 9);
    const pageSizes = options.pageSizes ?? DEFAULT_PAGE_SIZES;
    if (typeof pageSizes !== 'bigint' || (pageSizes & (1n << 12n)) === 0n || (pageSizes & ~DEFAULT_PAGE_SIZES) !== 0n) {
      throw new RangeError('pageSizes must be a bitmap of 4 KiB (required), 2 MiB and 1 GiB');
    }
    this.pageSizes = pageSizes;
    const reserved = options.reservedRegions ?? [arch === 'arm64' ? ARM64_SW_MSI_WINDOW : X86_MSI_WINDOW];
    if (!Array.isArray(reserved)) throw new TypeError('reservedRegions must be an array');
    this.reservedRegions = reserved.map((r: IovaRange) => {
      if (r === null || typeof r !== 'object' || typeof r.start !== 'bigint' || typeof r.last !== 'bigint' || r.start < 0n || r.last < r.start || r.last > U64_MAX) {
        throw new RangeError('reservedRegions: expected { start: bigint, last: bigint } with start ≤ last');
      }
      return { start: r.start, last: r.last };
    });
    this.#phys = new PhysicalMemory(this.#ramRanges(options));
    this.#env = {
      addressWidth: width,
      levels: this.pageTableLevels,
      pageSizes,
      allow2M: (pageSizes & (1n << 21n)) !== 0n,
      allow1G: (pageSizes & (1n << 30n)) !== 0n,
      phys: this.#phys,
    };
    const domainTypes = DT_TRANSLATE | DT_PASSTHROUGH | (arch === 'arm64' ? DT_UNMANAGED : 0);
    this.capabilities = Object.freeze({
      domainTypes,
      passThrough: 'native',
      faultSource: 'engine',
      mapBeforeAttach: 'direct',
      maxAreasPerDomain: null,
      pasid: true,
      unmanagedDomains: arch === 'arm64',
      arch,
    } satisfies BackendCapabilities);
    const cap = options.faultLogCapacity ?? 4096;
    if (!Number.isInteger(cap) || cap < 1) throw new RangeError('faultLogCapacity must be a positive integer');
    this.#faults = new FaultLog(cap);
    const delay = options.eduDmaDelayMs ?? 0;
    if (typeof delay !== 'number' || !(delay >= 0)) throw new RangeError('eduDmaDelayMs must be ≥ 0');
    this.#eduDelay = delay;
    this.#engine = new DmaEngine({ arch, phys: this.#phys, groupDomain: (dev) => this.#groupDomain(dev) });
    const specs = options.devices ?? DEFAULT_DEVICES;
    if (!Array.isArray(specs)) throw new TypeError('devices must be an array');
    for (const s of specs as readonly SimDeviceSpec[]) if (typeof s?.iommuGroup === 'number' && s.iommuGroup >= this.#nextGroup) this.#nextGroup = s.iommuGroup + 1;
    for (const s of specs as readonly SimDeviceSpec[]) {
      const dev = this.#createDevice(s, specs as readonly SimDeviceSpec[]);
      if (this.#devices.has(dev.bdf)) throw new RangeError(`duplicate device ${dev.bdf}`);
      this.#devices.set(dev.bdf, dev);
    }
  }

  #ramRanges(options: SimulatedBackendOptions): RamRange[] {
    if (options.ramRanges !== undefined) {
      if (!Array.isArray(options.ramRanges)) throw new TypeError('ramRanges must be an array');
      return options.ramRanges.map((r) => {
        const start = toNumber(r.start, 'ramRanges.start');
        return { start, end: start + toNumber(r.length, 'ramRanges.length') };
      });
    }
    const top = toNumber(options.ramSize ?? 64n * BigInt(GIB), 'ramSize');
    if (top % 4096 !== 0 || top < 16 * 1024 * 1024) throw new RangeError('ramSize must be page aligned and at least 16 MiB');
    return defaultRamRanges(this.arch, top);
  }

  #createDevice(spec: SimDeviceSpec, siblings: readonly SimDeviceSpec[]): SimDevice {
    const p = spec !== null && typeof spec === 'object' && typeof spec.bdf === 'string' ? parseBdf(spec.bdf) : null;
    const multifunction =
      p !== null &&
      siblings.some((o) => {
        const q = typeof o?.bdf === 'string' ? parseBdf(o.bdf) : null;
        return q !== null && q.segment === p.segment && q.bus === p.bus && q.dev === p.dev && q.fn !== p.fn;
      });
    const group = this.#nextGroup;
    const bar0 = this.#nextBar;
    const dev = new SimDevice(spec, {
      machineReserved: this.reservedRegions,
      defaultDomainTypes: this.capabilities.domainTypes,
      group,
      bar0Address: bar0,
      multifunction,
      eduHost: (d) => this.#eduHost(d),
    });
    if (dev.iommuGroup === group) this.#nextGroup++;
    if (dev.iommuGroup !== null && dev.iommuGroup >= this.#nextGroup) this.#nextGroup = dev.iommuGroup + 1;
    if (dev.model.barSize(0) > 0) this.#nextBar += 0x100000;
    return dev;
  }

  #eduHost(dev: SimDevice): EduHost {
    return {
      delayMs: this.#eduDelay,
      dmaRead: (iova, length) => {
        if (dev.removed || this.#closed) return null;
        const r = this.#engine.read(dev, iova, length, undefined);
        if (r instanceof Uint8Array) return r;
        this.#raise(r, dev);
        return null;
      },
      dmaWrite: (iova, data) => {
        if (dev.removed || this.#closed) return false;
        const f = this.#engine.write(dev, iova, data, undefined);
        if (f === null) return true;
        this.#raise(f, dev);
        return false;
      },
    };
  }

  get closed(): boolean {
    return this.#closed;
  }

  // ---- plumbing ---------------------------------------------------------------------------

  /** Count the op, fire an armed injection, refuse when closed. */
  #begin(op: SimOpName): void {
    this.#ops[OP_INDEX[op]]++;
    if (this.#injections.length !== 0) this.#inject(op);
    if (this.#closed) fail(ERR.EBADF, SIM_SYSCALLS[op], 'backend is closed');
  }

  #inject(op: SimOpName): void {
    const syscall = SIM_SYSCALLS[op];
    let due: Injection | null = null;
    // every armed injection counts the ops it matches; when several come due on the same op,
    // the op fails once (with the earliest armed) and all of them are spent
    for (let i = 0; i < this.#injections.length; i++) {
      const inj = this.#injections[i];
      if (inj.op !== undefined && inj.op !== op && inj.op !== syscall) continue;
      if (--inj.remaining === 0 && due === null) due = inj;
    }
    if (due === null) return;
    this.#injections = this.#injections.filter((i) => i.remaining > 0);
    const name = errnoName(due.errno);
    this.#errors[name] = (this.#errors[name] ?? 0) + 1;
    throw new BackendError(due.errno, syscall, `injected by failNth (${op})`);
  }

  #countError(e: unknown): void {
    const key = e instanceof BackendError ? errnoName(e.errno) : e instanceof Error ? e.name : 'unknown';
    this.#errors[key] = (this.#errors[key] ?? 0) + 1;
  }

  #domain(h: unknown, syscall: string): SimDomain {
    checkHandle(h, 'domain');
    const o = this.#objects[h];
    if (o instanceof SimDomain) return o;
    fail(ERR.ENOENT, syscall, `no domain with handle ${String(h)}`);
  }

  #deviceHandle(h: unknown, syscall: string): DeviceHandle {
    checkHandle(h, 'device');
    const o = this.#objects[h];
    if (!(o instanceof DeviceHandle)) fail(ERR.ENOENT, syscall, `no device with handle ${String(h)}`);
    if (o.closed) fail(ERR.EBADF, syscall, `device handle ${h} was closed`);
    if (o.device.removed) fail(ERR.ENODEV, syscall, `${o.device.bdf} was removed`);
    return o;
  }

  #groupDomain(dev: SimDevice): SimDomain | null {
    if (dev.domain !== null) return dev.domain;
    if (dev.iommuGroup === null) return null;
    for (const d of this.#devices.values()) {
      if (d !== dev && d.iommuGroup === dev.iommuGroup && d.domain !== null) return d.domain;
    }
    return null;
  }

  #raise(input: FaultInput, dev: SimDevice): SimulatedFault {
    const rec = this.#faults.add(this.arch, input);
    if (dev.handle !== 0) {
      for (const l of [...this.#faultListeners]) {
        try {
          l(rec);
        } catch (e) {
          this.listenerErrors++;
          process.emitWarning(`dma-iommu simulator: a fault listener threw: ${String(e)}`);
        }
      }
    }
    return rec;
  }

  #emitDevice(event: DeviceEvent): void {
    for (const l of [...this.#deviceListeners]) {
      try {
        l(event);
      } catch (e) {
        this.listenerErrors++;
        process.emitWarning(`dma-iommu simulator: a device-event listener threw: ${String(e)}`);
      }
    }
  }

  #lookupBdf(bdf: unknown, syscall: string): SimDevice {
    if (typeof bdf !== 'string') throw new TypeError(`bdf must be a string, got ${describe(bdf)}`);
    const n = normalizeBdf(bdf);
    if (n === null) fail(ERR.EINVAL, syscall, `malformed PCI address '${bdf}'`);
    const d = this.#devices.get(n);
    if (d === undefined) fail(ERR.ENOENT, syscall, `no device ${n}`);
    return d;
  }

  // ---- devices ----------------------------------------------------------------------------

  enumerateDevices(): PciDeviceInfo[] {
    this.#begin('enumerateDevices');
    return [...this.#devices.values()].sort((a, b) => (a.bdf < b.bdf ? -1 : 1)).map((d) => d.info());
  }

  openDevice(bdf: string): number {
    this.#begin('openDevice');
    const S = SIM_SYSCALLS.openDevice;
    try {
      const d = this.#lookupBdf(bdf, S);
      if (!d.usable) fail(ERR.ENOENT, S, `${d.bdf} has no VFIO device node: ${d.whyNotUsable ?? 'not usable'}`);
      if (d.handle !== 0) fail(ERR.EBUSY, S, `${d.bdf} is already open (handle ${d.handle})`);
      const h = this.#objects.length;
      this.#objects.push(new DeviceHandle(h, d));
      d.handle = h;
      return h;
    } catch (e) {
      this.#countError(e);
      throw e;
    }
  }

  closeDevice(device: number): void {
    this.#ops[OP_INDEX.closeDevice]++;
    if (this.#closed) return;
    checkHandle(device, 'device');
    const o = this.#objects[device];
    if (o === undefined) {
      this.#countError(new BackendError(ERR.ENOENT, 'close'));
      fail(ERR.ENOENT, 'close', `no device with handle ${device}`);
    }
    if (!(o instanceof DeviceHandle)) {
      this.#countError(new BackendError(ERR.EINVAL, 'close'));
      fail(ERR.EINVAL, 'close', `handle ${device} is a domain, not a device`);
    }
    if (o.closed) return;
    o.closed = true;
    const d = o.device;
    this.#detachAll(d, o.handle);
    if (d.handle === o.handle) d.handle = 0;
    // VFIO disables the device on release: bus mastering off
    if (!d.removed) {
      const cmd = d.model.config.read(0x04, 2);
      d.model.config.write(0x04, 2, cmd & ~0x4);
    }
  }

  #detachAll(d: SimDevice, handle: number): void {
    if (d.domain !== null) {
      d.domain.removeAttachment(`d${handle}`);
      d.domain = null;
    }
    for (const [pasid, dom] of d.pasids) dom.removeAttachment(`d${handle}/${pasid}`);
    d.pasids.clear();
  }

  deviceRegions(device: number): DeviceRegions {
    this.#begin('deviceRegions');
    try {
      return new SimRegions(this, this.#deviceHandle(device, SIM_SYSCALLS.deviceRegions));
    } catch (e) {
      this.#countError(e);
      throw e;
    }
  }

  availableDomainTypes(device: number): number {
    this.#begin('availableDomainTypes');
    try {
      return this.#deviceHandle(device, SIM_SYSCALLS.availableDomainTypes).device.availableDomainTypes;
    } catch (e) {
      this.#countError(e);
      throw e;
    }
  }

  inputMappingIds(device: number): number[] {
    this.#begin('inputMappingIds');
    try {
      const dh = this.#deviceHandle(device, SIM_SYSCALLS.inputMappingIds);
      if (this.arch !== 'arm64') fail(ERR.ENOTSUP, SIM_SYSCALLS.inputMappingIds, 'input mapping IDs exist on arm64 only');
      return [...dh.device.streamIds];
    } catch (e) {
      this.#countError(e);
      throw e;
    }
  }

  // ---- memory -----------------------------------------------------------------------------

  allocateMemory(size: bigint, options: AllocateOptions = {}): BackendMemory {
    this.#begin('allocateMemory');
    try {
      if (typeof size !== 'bigint') throw new TypeError(`size must be a bigint, got ${describe(size)}`);
      if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
      return this.#phys.allocate(size, options);
    } catch (e) {
      this.#countError(e);
      throw e;
    }
  }

  // ---- domains ----------------------------------------------------------------------------

  allocDomain(type: 'translate' | 'passthrough' | 'unmanaged'): number {
    this.#begin('allocDomain');
    try {
      if (typeof type !== 'string') throw new TypeError(`type must be a string, got ${describe(type)}`);
      const syscall = type === 'translate' ? 'IOMMU_IOAS_ALLOC' : 'IOMMU_HWPT_ALLOC';
      if (type !== 'translate' && type !== 'passthrough' && type !== 'unmanaged') {
        fail(ERR.ENOTSUP, syscall, `unknown domain type '${type}'`);
      }
      if (type === 'unmanaged' && this.arch !== 'arm64') {
        fail(ERR.ENOTSUP, syscall, 'Unmanaged (caller-owned stage-1) domains exist on arm64 only');
      }
      const h = this.#objects.length;
      this.#objects.push(new SimDomain(h, type as DomainType, this.#env));
      return h;
    } catch (e) {
      this.#countError(e);
      throw e;
    }
  }

  configureDomain(domain: number, config: Arm64DomainConfig): void {
    this.#begin('configureDomain');
    const S = SIM_SYSCALLS.configureDomain;
    try {
      const d = this.#domain(domain, S);
      if (d.type !== 'unmanaged') fail(ERR.EINVAL, S, `domain ${domain} is ${d.type}, not Unmanaged`);
      d.stage1!.configure(checkArm64Config(config, this.#phys, S));
    } catch (e) {
      this.#countError(e);
      throw e;
    }
  }

  flushDomain(domain: number, vaList?: readonly bigint[], lastLevel?: boolean): void {
    this.#begin('flushDomain');
    const S = SIM_SYSCALLS.flushDomain;
    try {
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
    } catch (e) {
      this.#countError(e);
      throw e;
    }
  }

  freeDomain(domain: number): void {
    this.#begin('freeDomain');
    const S = SIM_SYSCALLS.freeDomain;
    try {
      const d = this.#domain(domain, S);
      if (d.attached) fail(ERR.EBUSY, S, `domain ${domain} still has ${d.attachments.size} attachment(s)`);
      d.dropAll();
      this.#objects[domain] = undefined;
    } catch (e) {
      this.#countError(e);
      throw e;
    }
  }

  geometry(domain: number): DomainGeometry {
    this.#begin('geometry');
    try {
      return this.#domain(domain, SIM_SYSCALLS.geometry).geometry();
    } catch (e) {
      this.#countError(e);
      throw e;
    }
  }

  attach(domain: number, device: number): void {
    this.#begin('attach');
    const S = SIM_SYSCALLS.attach;
    try {
      const d = this.#domain(domain, S);
      const dh = this.#deviceHandle(device, S);
      const dev = dh.device;
      if (dev.domain !== null) fail(ERR.EBUSY, S, `${dev.bdf} is already attached to domain ${dev.domain.handle}`);
      for (const mate of this.#devices.values()) {
        if (mate !== dev && mate.iommuGroup === dev.iommuGroup && mate.domain !== null && mate.domain !== d) {
          fail(ERR.EINVAL, S, `${dev.bdf} shares IOMMU group ${dev.iommuGroup} with ${mate.bdf}, attached to domain ${mate.domain.handle}`);
        }
      }
      d.checkAttach(dev);
      dev.domain = d;
      d.addAttachment(`d${dh.handle}`, dev);
    } catch (e) {
      this.#countError(e);
      throw e;
    }
  }

  detach(device: number): void {
    this.#begin('detach');
    try {
      const dh = this.#deviceHandle(device, SIM_SYSCALLS.detach);
      const dev = dh.device;
      if (dev.domain === null) return; // the kernel's detach of a detached device is a no-op
      dev.domain.removeAttachment(`d${dh.handle}`);
      dev.domain = null;
    } catch (e) {
      this.#countError(e);
      throw e;
    }
  }

  #checkPasid(pasid: unknown): asserts pasid is number {
    if (typeof pasid !== 'number' || !Number.isInteger(pasid)) throw new TypeError(`pasid must be an integer, got ${describe(pasid)}`);
  }

  attachPasid(domain: number, device: number, pasid: number): void {
    this.#begin('attachPasid');
    const S = SIM_SYSCALLS.attachPasid;
    try {
      this.#checkPasid(pasid);
      const d = this.#domain(domain, S);
      const dh = this.#deviceHandle(device, S);
      const dev = dh.device;
      if (dev.maxPasidLog2 === 0) fail(ERR.EOPNOTSUPP, S, `${dev.bdf} has no PASID capability`);
      if (pasid < 1 || pasid >= 2 ** dev.maxPasidLog2) {
        fail(ERR.EINVAL, S, `PASID ${pasid} outside 1..${2 ** dev.maxPasidLog2 - 1} of ${dev.bdf}`);
      }
      const cur = dev.pasids.get(pasid);
      if (cur !== undefined) fail(ERR.EBUSY, S, `PASID ${pasid} of ${dev.bdf} is attached to domain ${cur.handle}`);
      d.checkAttach(dev);
      dev.pasids.set(pasid, d);
      d.addAttachment(`d${dh.handle}/${pasid}`, dev);
    } catch (e) {
      this.#countError(e);
      throw e;
    }
  }

  detachPasid(device: number, pasid: number): void {
    this.#begin('detachPasid');
    const S = SIM_SYSCALLS.detachPasid;
    try {
      this.#checkPasid(pasid);
      const dh = this.#deviceHandle(device, S);
      const dev = dh.device;
      const d = dev.pasids.get(pasid);
      if (d === undefined) fail(ERR.ENOENT, S, `PASID ${pasid} of ${dev.bdf} is not attached`);
      dev.pasids.delete(pasid);
      d.removeAttachment(`d${dh.handle}/${pasid}`);
    } catch (e) {
      this.#countError(e);
      throw e;
    }
  }

  // ---- mappings ---------------------------------------------------------------------------

  map(domain: number, iova: bigint, runs: readonly PhysicalRun[], perms: number): void {
    this.#ops[OP_MAP]++;
    if (this.#injections.length !== 0) this.#inject('map');
    try {
      if (this.#closed) fail(ERR.EBADF, MAP, 'backend is closed');
      // Fast path: one run, every address and length page-aligned and below 8 TiB, a known
      // domain: int32 page numbers from here on (see alignedPage). Anything else, and anything
      // beyond the page table's reach, takes the general path, which decides the same way.
      if (typeof iova === 'bigint' && Array.isArray(runs) && runs.length === 1 && (perms === 1 || perms === 2 || perms === 3)) {
        const r = runs[0] as PhysicalRun;
        if (r !== null && typeof r === 'object') {
          const pa = r.pa;
          const len = r.length;
          if (typeof pa === 'bigint' && typeof len === 'bigint') {
            const page = alignedPage(iova);
            const pfn = alignedPage(pa);
            const pages = alignedPage(len);
            if (page >= 0 && pfn >= 0 && pages > 0) {
              const o = typeof domain === 'number' ? this.#objects[domain] : undefined;
              const d = o instanceof SimDomain ? o : this.#domain(domain, MAP);
              if (!d.mapPages(page, pages, pfn, perms)) d.mapSlow(iova, len, runs, perms);
              return;
            }
          }
        }
      }
      this.#mapGeneral(domain, iova, runs, perms);
    } catch (e) {
      this.#countError(e);
      throw e;
    }
  }

  /** map's checks and work in the general case (kept out of map so V8 can inline its fast path). */
  #mapGeneral(domain: number, iova: bigint, runs: readonly PhysicalRun[], perms: number): void {
    if (typeof iova !== 'bigint') throw new TypeError(`iova must be a bigint, got ${describe(iova)}`);
    if (!Array.isArray(runs)) throw new TypeError(`runs must be an array of { pa, length }, got ${describe(runs)}`);
    if (typeof perms !== 'number' || !Number.isInteger(perms)) throw new TypeError(`perms must be an integer, got ${describe(perms)}`);
    let length = 0n;
    for (const r of runs) {
      if (r === null || typeof r !== 'object') throw new TypeError('each run must be an object { pa: bigint, length: bigint }');
      if (typeof r.pa !== 'bigint' || typeof r.length !== 'bigint') throw new TypeError('run.pa and run.length must be bigints');
      if (r.pa < 0n || r.length < 0n) fail(ERR.EINVAL, MAP, 'negative run address or length');
      length += r.length;
    }
    if (iova < 0n) fail(ERR.EINVAL, MAP, `iova is negative (${iova})`);
    if (iova >= U64_MAX || length >= U64_MAX) fail(ERR.EOVERFLOW, MAP, `iova ${hex(iova)} or length ${hex(length)} ≥ 2^64-1`);
    if (perms < 0) fail(ERR.EINVAL, MAP, `perms ${perms} is negative`);
    if ((perms & ~3) !== 0) fail(ERR.EOPNOTSUPP, MAP, `unknown permission bits in ${hex(perms)}`);
    if ((perms & 3) === 0) fail(ERR.EINVAL, MAP, `perms ${perms} grants neither read nor write`);
    const d = this.#domain(domain, MAP);
    for (const r of runs) if (r.length === 0n) fail(ERR.EINVAL, MAP, 'a run has length 0');
    d.mapSlow(iova, length, runs, perms);
  }

  unmap(domain: number, iova: bigint, length: bigint): bigint {
    this.#ops[OP_UNMAP]++;
    if (this.#injections.length !== 0) this.#inject('unmap');
    try {
      if (this.#closed) fail(ERR.EBADF, UNMAP, 'backend is closed');
      if (typeof iova !== 'bigint' || typeof length !== 'bigint') this.#unmapTypeError(iova, length);
      const o = typeof domain === 'number' ? this.#objects[domain] : undefined;
      const d = o instanceof SimDomain ? o : this.#domain(domain, UNMAP);
      // Fast path: page-aligned, below 8 TiB, exactly one table area (int32 page numbers).
      const page = alignedPage(iova);
      const pages = alignedPage(length);
      if (page >= 0 && pages > 0 && d.unmapPages(page, pages) >= 0) return length;
      return this.#unmapGeneral(d, iova, length);
    } catch (e) {
      this.#countError(e);
      throw e;
    }
  }

  #unmapTypeError(iova: unknown, length: unknown): never {
    if (typeof iova !== 'bigint') throw new TypeError(`iova must be a bigint, got ${describe(iova)}`);
    throw new TypeError(`length must be a bigint, got ${describe(length)}`);
  }

  /** unmap's checks and work in the general case (kept out of unmap so V8 can inline its fast path). */
  #unmapGeneral(d: SimDomain, iova: bigint, length: bigint): bigint {
    if (iova < 0n || length < 0n) fail(ERR.EINVAL, UNMAP, 'negative iova or length');
    if (iova === 0n && length === U64_MAX) return d.unmapSlow(0n, U64_MAX, true);
    if (iova >= U64_MAX || length >= U64_MAX) fail(ERR.EOVERFLOW, UNMAP, `iova ${hex(iova)} or length ${hex(length)} ≥ 2^64-1`);
    return d.unmapSlow(iova, length);
  }

  // ---- events -----------------------------------------------------------------------------

  onFault(listener: (fault: BackendFault) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    const l = (f: BackendFault): void => listener(f);
    this.#faultListeners.add(l);
    return () => {
      this.#faultListeners.delete(l);
    };
  }

  onDeviceEvent(listener: (event: DeviceEvent) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    const l = (e: DeviceEvent): void => listener(e);
    this.#deviceListeners.add(l);
    return () => {
      this.#deviceListeners.delete(l);
    };
  }

  close(): void {
    if (this.#closed) return;
    for (const o of this.#objects) {
      if (o instanceof DeviceHandle && !o.closed) {
        o.closed = true;
        this.#detachAll(o.device, o.handle);
        o.device.handle = 0;
      }
    }
    for (const d of this.#devices.values()) d.model.stop();
    for (let i = 0; i < this.#objects.length; i++) {
      const o = this.#objects[i];
      if (o instanceof SimDomain) {
        o.dropAll();
        this.#objects[i] = undefined;
      }
    }
    this.#phys.releaseAll();
    this.#closed = true;
  }

  // ---- test controls ----------------------------------------------------------------------

  /** Hot-plug a device (emits a DeviceEvent). EEXIST when the BDF is present. */
  addDevice(spec: SimDeviceSpec): PciDeviceInfo {
    if (this.#closed) fail(ERR.EBADF, 'sysfs', 'backend is closed');
    if (spec === null || typeof spec !== 'object' || typeof spec.bdf !== 'string') throw new TypeError('spec must be an object with a bdf string');
    const bdf = normalizeBdf(spec.bdf);
    if (bdf === null) fail(ERR.EINVAL, 'sysfs', `malformed PCI address '${spec.bdf}'`);
    if (this.#devices.has(bdf)) fail(ERR.EEXIST, 'sysfs', `${bdf} is already present`);
    const dev = this.#createDevice(spec, [...[...this.#devices.values()].map((d) => ({ bdf: d.bdf })), spec]);
    this.#devices.set(dev.bdf, dev);
    this.#emitDevice({ bdf: dev.bdf, present: true, availableDomainTypes: dev.availableDomainTypes });
    return dev.info();
  }

  /**
   * Surprise-remove a device: it leaves the enumeration, its attachments are dropped (the
   * hardware is gone), its open handle fails every call with ENODEV (closeDevice still works),
   * its DMA stops. Emits DeviceEvent { present: false, availableDomainTypes: 0 }.
   */
  removeDevice(bdf: string): void {
    if (this.#closed) fail(ERR.EBADF, 'sysfs', 'backend is closed');
    const dev = this.#lookupBdf(bdf, 'sysfs');
    dev.removed = true;
    dev.model.stop();
    this.#detachAll(dev, dev.handle);
    this.#devices.delete(dev.bdf);
    dev.availableDomainTypes = 0;
    this.#emitDevice({ bdf: dev.bdf, present: false, availableDomainTypes: 0 });
  }

  /** Change the device's available domain types (a DMA-Guard-like policy change); emits a DeviceEvent. */
  setAvailableDomainTypes(bdf: string, mask: number): void {
    if (this.#closed) fail(ERR.EBADF, 'sysfs', 'backend is closed');
    if (typeof mask !== 'number' || !Number.isInteger(mask) || mask < 0 || mask > 0xffff) {
      throw new TypeError(`mask must be an integer bitmask, got ${describe(mask)}`);
    }
    const dev = this.#lookupBdf(bdf, 'sysfs');
    dev.availableDomainTypes = mask;
    this.#emitDevice({ bdf: dev.bdf, present: true, availableDomainTypes: mask });
  }

  /**
   * Make the n-th next leaf operation (counting only `op` when given: a method name such as
   * 'map' or a syscall name such as 'IOMMU_IOAS_MAP') throw BackendError(errno), once. The
   * operation fails before changing anything. Several injections may be armed at once; each
   * counts independently, and when several come due on the same operation it fails once (with
   * the errno of the earliest armed) and all of them are spent.
   */
  failNth(n: number, errno: number, op?: string): void {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new TypeError(`n must be a positive integer, got ${describe(n)}`);
    if (typeof errno !== 'number' || !Number.isInteger(errno) || errno === 0) throw new TypeError(`errno must be a non-zero integer, got ${describe(errno)}`);
    if (op !== undefined) {
      const known = Object.keys(SIM_SYSCALLS).includes(op) || Object.values(SIM_SYSCALLS).includes(op as never);
      if (typeof op !== 'string' || !known || op === 'closeDevice' || op === 'close') {
        throw new RangeError(`op must name a leaf operation (${Object.keys(SIM_SYSCALLS).join(', ')}) or its syscall`);
      }
    }
    this.#injections.push({ remaining: n, errno: errno < 0 ? errno : -errno, op });
  }

  /** Disarm every pending failNth injection. */
  clearFailures(): void {
    this.#injections = [];
  }

  /** Recorded DMA faults, oldest first. */
  faultLog(): SimulatedFault[] {
    return this.#faults.entries();
  }

  clearFaults(): void {
    this.#faults.clear();
  }

  #dmaDevice(bdf: unknown, iova: unknown, length: number, options: DmaOptions | undefined): { dev: SimDevice; pasid: number | undefined } {
    if (this.#closed) fail(ERR.EBADF, 'DMA', 'backend is closed');
    if (typeof bdf !== 'string') throw new TypeError(`bdf must be a string, got ${describe(bdf)}`);
    const n = normalizeBdf(bdf);
    const dev = n === null ? undefined : this.#devices.get(n);
    if (dev === undefined) fail(ERR.ENODEV, 'DMA', `no device ${bdf} on the bus`);
    if (typeof iova !== 'bigint') throw new TypeError(`iova must be a bigint, got ${describe(iova)}`);
    if (iova < 0n || iova + BigInt(length) > U64_MAX + 1n) throw new RangeError('iova+length must stay within 2^64');
    let pasid: number | undefined;
    if (options !== undefined) {
      if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
      if (options.pasid !== undefined) {
        if (typeof options.pasid !== 'number' || !Number.isInteger(options.pasid) || options.pasid < 0 || options.pasid > 0xfffff) {
          throw new TypeError(`pasid must be an integer in [0, 2^20), got ${describe(options.pasid)}`);
        }
        pasid = options.pasid;
      }
    }
    return { dev, pasid };
  }

  /** The device reads `length` bytes at `iova` (memory → device), through the IOMMU. */
  dmaRead(bdf: string, iova: bigint, length: number, options?: DmaOptions): DmaReadResult {
    if (typeof length !== 'number' || !Number.isInteger(length) || length < 0 || length > MAX_DMA_BYTES) {
      throw new TypeError(`length must be an integer in [0, 1 GiB], got ${describe(length)}`);
    }
    const { dev, pasid } = this.#dmaDevice(bdf, iova, length, options);
    const r = this.#engine.read(dev, iova, length, pasid);
    if (r instanceof Uint8Array) return { ok: true, data: r };
    return { ok: false, fault: this.#raise(r, dev) };
  }

  /** The device writes `data` at `iova` (device → memory), through the IOMMU. All or nothing. */
  dmaWrite(bdf: string, iova: bigint, data: Uint8Array, options?: DmaOptions): DmaWriteResult {
    if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
    if (data.length > MAX_DMA_BYTES) throw new RangeError('DMA larger than 1 GiB');
    const { dev, pasid } = this.#dmaDevice(bdf, iova, data.length, options);
    const f = this.#engine.write(dev, iova, data, pasid);
    if (f === null) return { ok: true, bytesWritten: data.length };
    return { ok: false, bytesWritten: 0, fault: this.#raise(f, dev) };
  }

  /** What the domain's page table says about one IOVA (null when not mapped). */
  translate(domain: number, iova: bigint): { pa: bigint; perms: number; level: number } | null {
    checkU64(iova, 'iova', 'translate');
    return this.#domain(domain, 'translate').translate(iova);
  }

  /** Structural self-check of every page table (tests): null when sound, else the first problem. */
  verifyPageTables(): string | null {
    for (const o of this.#objects) {
      if (o instanceof SimDomain && o.table !== null) {
        const p = o.table.verify();
        if (p !== null) return `domain ${o.handle}: ${p}`;
      }
    }
    return null;
  }

  /** Everything as JSON-able data (bigints as hex strings). */
  inspect(options: InspectOptions = {}): SimInspection {
    const maxAreas = options.maxAreas ?? 1000;
    const maxFaults = options.maxFaults ?? 100;
    const range = (r: IovaRange): { start: string; last: string } => ({ start: hex(r.start), last: hex(r.last) });
    const devices = [...this.#devices.values()].sort((a, b) => (a.bdf < b.bdf ? -1 : 1));
    const groups = new Map<number, string[]>();
    for (const d of devices) if (d.iommuGroup !== null) groups.set(d.iommuGroup, [...(groups.get(d.iommuGroup) ?? []), d.bdf]);
    const domains: SimInspection['domains'] = [];
    for (const o of this.#objects) {
      if (!(o instanceof SimDomain)) continue;
      const g = o.geometry();
      const t = o.table;
      const attached: string[] = [];
      const pasids: Array<{ bdf: string; pasid: number }> = [];
      for (const dh of this.#objects) {
        if (!(dh instanceof DeviceHandle) || dh.closed) continue;
        if (dh.device.domain === o) attached.push(dh.device.bdf);
        for (const [p, dom] of dh.device.pasids) if (dom === o) pasids.push({ bdf: dh.device.bdf, pasid: p });
      }
      const areas = o.areas(maxAreas);
      const levels: Record<string, { tables: number; leaves: number }> = {};
      if (t !== null) for (let l = 1; l <= t.levels; l++) levels[String(l)] = { tables: t.tables[l], leaves: t.leaves[l] };
      domains.push({
        handle: o.handle,
        type: o.type,
        attachedDevices: attached,
        pasidAttachments: pasids,
        geometry: {
          ranges: g.ranges.map(range),
          alignment: hex(g.alignment),
          pageSizes: hex(g.pageSizes),
          addressWidth: g.addressWidth,
        },
        areaCount: o.areaCount,
        areas: areas.map((a) => ({
          iova: hex(a.iova),
          length: hex(a.length),
          perms: a.perms,
          runs: a.runs.map((r) => ({ pa: hex(r.pa), length: hex(r.length) })),
        })),
        areasTruncated: o.areaCount > areas.length,
        pageTable:
          t === null
            ? null
            : {
                levels: t.levels,
                perLevel: levels,
                tables: t.tables.reduce((s, n) => s + n, 0),
                leaves4K: t.leaves[1],
                leaves2M: t.leaves[2] ?? 0,
                leaves1G: t.leaves[3] ?? 0,
              },
        unmanaged:
          o.stage1 === null
            ? null
            : {
                configured: o.stage1.config !== null,
                config:
                  o.stage1.config === null
                    ? null
                    : {
                        ttbr0: hex(o.stage1.config.raw.ttbr0),
                        ttbr1: hex(o.stage1.config.raw.ttbr1),
                        mair0: hex(o.stage1.config.raw.mair0),
                        mair1: hex(o.stage1.config.raw.mair1),
                        inputSize0: o.stage1.config.raw.inputSize0,
                        inputSize1: o.stage1.config.raw.inputSize1,
                        coherentTableWalks: o.stage1.config.raw.coherentTableWalks,
                        translationEnabled: o.stage1.config.raw.translationEnabled,
                      },
                tlbEntries: o.stage1.tlbEntries,
                walks: o.stage1.walks,
                tlbHits: o.stage1.tlbHits,
              },
      });
    }
    const faults = this.#faults.entries();
    return {
      kind: 'simulated',
      reason: this.reason,
      closed: this.#closed,
      capabilities: { ...this.capabilities },
      machine: {
        arch: this.arch,
        addressWidth: this.addressWidth,
        pageTableLevels: this.pageTableLevels,
        pageSizes: hex(this.pageSizes),
        reservedRegions: this.reservedRegions.map(range),
        ram: this.#phys.ranges.map((r) => ({ start: hex(r.start), end: hex(r.end) })),
        ramBytes: this.#phys.totalBytes,
      },
      devices: devices.map((d) => ({
        ...d.info(),
        streamIds: [...d.streamIds],
        open: d.handle !== 0,
        handle: d.handle === 0 ? null : d.handle,
        attachedDomain: d.domain === null ? null : d.domain.handle,
        effectiveDomain: this.#groupDomain(d)?.handle ?? null,
        pasids: [...d.pasids].map(([pasid, dom]) => ({ pasid, domain: dom.handle })),
        availableDomainTypes: d.availableDomainTypes,
        reservedRegions: d.reservedRegions.map(range),
        model: d.model.inspect(),
      })),
      groups: [...groups].map(([group, bdfs]) => ({
        group,
        devices: bdfs,
        domain: this.#groupDomain(this.#devices.get(bdfs[0])!)?.handle ?? null,
      })),
      domains,
      memory: {
        allocations: this.#phys.allocations.map((m) => ({
          id: m.id,
          pa: hex(m.pa),
          size: hex(m.size),
          lazy: m.lazy,
          hugePages: m.hugePages,
          touchedPages: m.touchedPages,
          mappedPages: m.mappedPages,
        })),
        loosePages: this.#phys.loosePages,
      },
      dma: {
        reads: this.#engine.reads,
        writes: this.#engine.writes,
        bytesRead: this.#engine.bytesRead,
        bytesWritten: this.#engine.bytesWritten,
      },
      faults: {
        total: this.#faults.total,
        logged: faults.length,
        dropped: this.#faults.dropped,
        records: faults.slice(-maxFaults).map((f) => ({
          seq: f.seq,
          bdf: f.bdf,
          iova: hex(f.iova),
          write: f.write,
          ...(f.pasid !== undefined ? { pasid: f.pasid } : {}),
          kind: f.kind,
          ...(f.reasonCode !== undefined ? { reasonCode: f.reasonCode } : {}),
          reason: f.reason,
          raw: f.raw ?? null,
          domain: f.domain,
          timestamp: f.timestamp,
        })),
      },
      counters: { ops: Object.fromEntries(OP_NAMES.map((n, i) => [n, this.#ops[i]])), errors: { ...this.#errors }, listenerErrors: this.listenerErrors },
      injections: this.#injections.map((i) => ({ remaining: i.remaining, errno: errnoName(i.errno), op: i.op ?? null })),
    };
  }
}

/** The shape `inspect()` returns (JSON-able). */
export interface SimInspection {
  kind: 'simulated';
  reason: string;
  closed: boolean;
  capabilities: BackendCapabilities;
  machine: {
    arch: 'x86_64' | 'arm64';
    addressWidth: number;
    pageTableLevels: number;
    pageSizes: string;
    reservedRegions: Array<{ start: string; last: string }>;
    ram: Array<{ start: string; end: string }>;
    ramBytes: number;
  };
  devices: Array<
    PciDeviceInfo & {
      streamIds: number[];
      open: boolean;
      handle: number | null;
      attachedDomain: number | null;
      effectiveDomain: number | null;
      pasids: Array<{ pasid: number; domain: number }>;
      availableDomainTypes: number;
      reservedRegions: Array<{ start: string; last: string }>;
      model: Record<string, unknown>;
    }
  >;
  groups: Array<{ group: number; devices: string[]; domain: number | null }>;
  domains: Array<{
    handle: number;
    type: DomainType;
    attachedDevices: string[];
    pasidAttachments: Array<{ bdf: string; pasid: number }>;
    geometry: { ranges: Array<{ start: string; last: string }>; alignment: string; pageSizes: string; addressWidth: number };
    areaCount: number;
    areas: Array<{ iova: string; length: string; perms: number; runs: Array<{ pa: string; length: string }> }>;
    areasTruncated: boolean;
    pageTable: {
      levels: number;
      /** By level ('1' = 4 KiB entries, '2' = 2 MiB, '3' = 1 GiB, ...): tables at that level, leaves in them. */
      perLevel: Record<string, { tables: number; leaves: number }>;
      tables: number;
      leaves4K: number;
      leaves2M: number;
      leaves1G: number;
    } | null;
    unmanaged: {
      configured: boolean;
      config: Record<string, unknown> | null;
      tlbEntries: number;
      walks: number;
      tlbHits: number;
    } | null;
  }>;
  memory: {
    allocations: Array<{ id: number; pa: string; size: string; lazy: boolean; hugePages: boolean; touchedPages: number; mappedPages: number }>;
    loosePages: number;
  };
  dma: { reads: number; writes: number; bytesRead: number; bytesWritten: number };
  faults: {
    total: number;
    logged: number;
    dropped: number;
    records: Array<Record<string, unknown>>;
  };
  counters: { ops: Record<string, number>; errors: Record<string, number>; listenerErrors: number };
  injections: Array<{ remaining: number; errno: string; op: string | null }>;
}
