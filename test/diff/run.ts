/**
 * One platform of a differential run: the public API (the V1 and V3 tables of
 * IoGetIommuInterfaceEx, DmaMemory, the edu driver) driven by the operations of ops.ts, each
 * turned into an Observation (status code, returned addresses, memory digests, the edu buffer
 * after a DMA into it, the faults delivered to the fault handler). A Side also keeps its own
 * shadow of what is mapped where (from its own successful calls), which the runner uses to predict
 * which DMA will fault (for the fault budget and the fault source's rate limit) — never to decide
 * an outcome.
 */
import { createHash } from 'node:crypto';
import {
  DMA_IOMMU_INTERFACE_EX_VERSION_1,
  DMA_IOMMU_INTERFACE_EX_VERSION_3,
  DomainTypePassThrough,
  DomainTypeTranslate,
  EduDevice,
  IoGetIommuInterfaceEx,
  IommuDmaLogicalAllocatorBuddy,
  IommuError,
  MapPhysicalAddressTypePfn,
  openPlatform,
  type BackendCapabilities,
  type DMA_IOMMU_INTERFACE_V1,
  type DMA_IOMMU_INTERFACE_V3,
  type DmaMemory,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT,
  type IOMMU_MAP_PHYSICAL_ADDRESS,
  type IommuDmaDevice,
  type IommuDmaDomain,
  type IommuPlatform,
  type LogicalAddressToken,
  type MDL,
  type PhysicalDeviceObject,
} from '../../lib/index.js';
import { ElsewhereHolder } from './holder.js';
import { ARENA_END, DEVICES, DOMAINS, EDU_SPAN, MEMORY_PAGES, PAGE, SCRATCH_IOVA, TOKENS, type BadCall, type DmaBase, type Op, type Phys, windowIova } from './ops.js';

const PAGE_N = BigInt(PAGE);
const RW = 3;

/** What one operation did on one platform. */
export interface Observation {
  /** 'ok', the IommuError code, `thrown <Name>: <message>` for anything else, or `skipped: <why>` (then on both platforms). */
  status: string;
  /** The error's message (shown in reports, never compared). */
  detail?: string;
  /** What the call returned, normalized (IOVAs, token bases; never physical addresses). */
  value?: string;
  /** Per memory slot: a digest of its bytes, or 'freed'. */
  memory: string[];
  /** After a DMA into the device: the bytes of the edu buffer the DMA covered (hex), or why they could not be read. */
  edu?: string;
  /** Faults delivered to the fault handlers during the operation: `<bdf> <R|W> <address>`. */
  faults: string[];
  /** False when a declared capability says the fault records of this operation may legitimately differ. */
  faultsCompared: boolean;
}

/** How a DMA will go, as the side's shadow predicts it (pages that will fault). */
export interface DmaPlan {
  readonly iova: bigint;
  readonly faultingPages: number;
  /** Pages of the DMA the device touched before in the other direction (a cached translation). */
  readonly cachedOtherDirection: boolean;
  readonly passThrough: boolean;
}

function statusOf(e: unknown): string {
  if (e instanceof IommuError) return e.code;
  const err = e as Error;
  return `thrown ${err?.name ?? typeof e}: ${err?.message ?? String(e)}`;
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** The page frames of a PFN-array description. */
function pfnsOf(desc: IOMMU_MAP_PHYSICAL_ADDRESS): bigint[] {
  return Array.from((desc as unknown as { PfnArray: { PageFrame: Iterable<bigint> } }).PfnArray.PageFrame);
}

/** Deterministic initial contents of memory slot `slot`. */
export function pattern(slot: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 7 + slot * 61 + (i >> 12) * 13 + 1) & 0xff;
  return out;
}

/** Fisher–Yates with a small LCG: the same permutation on both platforms. */
function permute<T>(xs: T[], seed: number): T[] {
  const out = xs.slice();
  let s = seed * 2654435761 + 1;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * The simulator of a differential run: the default machine (two edu devices, as in the VM) with
 * its RAM above the IOVA arena, so that identity maps (IOVA = physical address) of its memory do
 * not land among the model's IOVAs (on the kernel, where they might, they are skipped).
 */
export function openSimulator(): IommuPlatform {
  // A named machine, one per simulator opened: the other process of `holdElsewhere` names it too
  // and so sees this process's open devices as busy, as on the kernel (device-lock.ts).
  const machine = `diff-${process.pid}-${++simulators}`;
  return openPlatform({ backend: 'sim', simulator: { machine, ramRanges: [{ start: ARENA_END, length: 16n << 30n }] } });
}
let simulators = 0;

export interface SideOptions {
  /** The two edu devices' BDFs (device slots 0 and 1). */
  readonly devices: readonly string[];
  /** edu completion timeout (ms). */
  readonly eduTimeoutMs?: number;
}

/** One platform running a sequence. */
export class Side {
  readonly platform: IommuPlatform;
  readonly caps: BackendCapabilities;
  readonly label: string;
  readonly #V1: DMA_IOMMU_INTERFACE_V1;
  readonly #V3: DMA_IOMMU_INTERFACE_V3;
  readonly #pdos: PhysicalDeviceObject[];
  readonly #eduTimeoutMs: number;
  readonly #devices: (IommuDmaDevice | null)[] = new Array(DEVICES).fill(null);
  readonly #edu: (EduDevice | null)[] = new Array(DEVICES).fill(null);
  readonly #domains: (IommuDmaDomain | null)[] = new Array(DOMAINS).fill(null);
  readonly #domainInfo: ({ type: 'translate' | 'passthrough'; buddy: boolean } | null)[] = new Array(DOMAINS).fill(null);
  /** IOVAs the Buddy allocator returned per domain slot, in order. */
  readonly #buddy: bigint[][] = Array.from({ length: DOMAINS }, () => []);
  readonly #tokens: (LogicalAddressToken | null)[] = new Array(TOKENS).fill(null);
  readonly #tokenDomain: number[] = new Array(TOKENS).fill(-1);
  readonly #segments: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT[][] = Array.from({ length: TOKENS }, () => []);
  readonly #mems: (DmaMemory | null)[] = [];
  /** Per memory slot: its PFNs when first allocated (in this sequence). */
  readonly #firstPfns: bigint[][] = [];
  /** Per memory slot: freed since first allocated (its first PFNs are stale, whether or not the slot was allocated again). */
  readonly #stale: boolean[] = new Array(MEMORY_PAGES.length).fill(false);
  readonly #scratch: DmaMemory;
  /** Shadow: domain slot → page number → permissions (from this side's successful calls). */
  readonly #shadow: Map<number, number>[] = Array.from({ length: DOMAINS }, () => new Map());
  /** Domain slot → every successful map's first IOVA and pages, in order (DMA targets). */
  readonly #mappings: { iova: bigint; pages: number }[][] = Array.from({ length: DOMAINS }, () => []);
  /** Device slot → domain slot it is attached to (null: none). */
  readonly #attached: (number | null)[] = new Array(DEVICES).fill(null);
  /** Device slot → pages it has DMA'd: page → bit0 read (to device), bit1 write (from device). */
  readonly #touched: Map<number, number>[] = Array.from({ length: DEVICES }, () => new Map());
  #graveDevice: IommuDmaDevice | null = null;
  #graveDomain: IommuDmaDomain | null = null;
  #graveToken: LogicalAddressToken | null = null;
  #graveSegment: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT | null = null;
  #readEdu = true;
  /** Device slot → its edu buffer may hold bytes a DMA put there (zeroed again by init()). */
  readonly #eduDirty: boolean[] = new Array(DEVICES).fill(true);
  /** The other process of `holdElsewhere` (one helper for the side's lifetime). */
  readonly #elsewhere: ElsewhereHolder;
  /** How many of the platform's fault records `takeFaults()` has returned. */
  #faultsSeen = 0;

  constructor(label: string, platform: IommuPlatform, options: SideOptions) {
    this.label = label;
    this.platform = platform;
    this.caps = platform.backend.capabilities;
    this.#V1 = (IoGetIommuInterfaceEx(DMA_IOMMU_INTERFACE_EX_VERSION_1, 0n, { platform }) as { V1: DMA_IOMMU_INTERFACE_V1 }).V1;
    this.#V3 = (IoGetIommuInterfaceEx(DMA_IOMMU_INTERFACE_EX_VERSION_3, 0n, { platform }) as { V3: DMA_IOMMU_INTERFACE_V3 }).V3;
    this.#eduTimeoutMs = options.eduTimeoutMs ?? 5000;
    this.#elsewhere = new ElsewhereHolder(platform.backend.kind, (platform.backend as { machine?: string | null }).machine ?? null);
    this.#pdos = options.devices.slice(0, DEVICES).map((bdf) => {
      const pdo = platform.findDevice(bdf);
      if (!pdo) throw new Error(`${label}: device ${bdf} not present`);
      return pdo;
    });
    for (let m = 0; m < MEMORY_PAGES.length; m++) {
      const mem = this.#allocate(m);
      this.#mems.push(mem);
      this.#firstPfns.push(pfnsOf(mem.asPfnArray()));
    }
    this.#scratch = platform.allocateDmaMemory(PAGE_N);
  }

  #allocate(m: number): DmaMemory {
    const mem = this.platform.allocateDmaMemory(BigInt(MEMORY_PAGES[m] * PAGE));
    mem.bytes.set(pattern(m, MEMORY_PAGES[m] * PAGE));
    return mem;
  }

  /**
   * Zero the part of both edu buffers the model uses ([0, EDU_SPAN)), through the public API (a device, a domain, the scratch page mapped,
   * two DMAs into the device, then all of it deleted again): a real device keeps its buffer across
   * processes, the simulator's starts zeroed, and a sequence must not see what an earlier one left.
   */
  async init(): Promise<void> {
    const V3 = this.#V3;
    this.#scratch.bytes.fill(0);
    for (const [slot, pdo] of this.#pdos.entries()) {
      if (!this.#eduDirty[slot]) continue;
      this.#eduDirty[slot] = false;
      const dev = V3.CreateDevice(pdo);
      try {
        const dom = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
        try {
          V3.AttachDeviceEx(dom, dev);
          V3.MapLogicalRangeEx(dom, RW, this.#scratch.asMdl(), SCRATCH_IOVA, null, null);
          const edu = new EduDevice(this.platform.deviceRegions(dev), { timeoutMs: this.#eduTimeoutMs });
          edu.enableBusMaster();
          await edu.dmaToDevice(SCRATCH_IOVA, EDU_SPAN, 0);
          V3.UnmapLogicalRange(dom, SCRATCH_IOVA, 1n);
          V3.DetachDeviceEx(dev);
        } finally {
          V3.DeleteDomain(dom);
        }
      } finally {
        V3.DeleteDevice(dev);
      }
    }
    this.#faultsSeen = this.platform.faults().length;
  }

  /**
   * Back to the state of a freshly opened side, through the public API only, so that the next
   * sequence can reuse this platform (opening one costs ~1 s under TCG): the other processes
   * released, every device detached and deleted, every token freed, every domain deleted (with
   * what is still mapped in it), every memory slot freed and allocated again with its pattern.
   * Returns false when a step failed: the platform is then not reused (the caller closes it).
   */
  async reset(): Promise<boolean> {
    const V1 = this.#V1;
    const V3 = this.#V3;
    let clean = true;
    const step = (fn: () => void): void => {
      try {
        fn();
      } catch {
        clean = false;
      }
    };
    for (let d = 0; d < DEVICES; d++) await this.#elsewhere.release(d);
    for (let d = 0; d < DEVICES; d++) {
      const slot = this.#attached[d];
      if (slot === null) continue;
      const dom = this.#domains[slot];
      const dev = this.#devices[d];
      // attached through V3 (a created device) or V1 (the PDO): whichever detach takes it
      try {
        if (!dev) throw new Error('no device object');
        V3.DetachDeviceEx(dev);
      } catch {
        if (dom) step(() => V1.DetachDevice(dom, this.#pdos[d], 0));
      }
      this.#attached[d] = null;
    }
    for (let t = 0; t < TOKENS; t++) {
      const tok = this.#tokens[t];
      if (!tok) continue;
      for (const seg of this.#segments[t]) step(() => V3.UnmapReservedLogicalRange(seg));
      step(() => V3.FreeReservedLogicalAddressRange(tok));
      this.#tokens[t] = null;
      this.#segments[t] = [];
      this.#tokenDomain[t] = -1;
    }
    for (let d = 0; d < DOMAINS; d++) {
      const dom = this.#domains[d];
      if (dom) step(() => V3.DeleteDomain(dom));
      this.#setDomainSlot(d, null, null);
    }
    for (let d = 0; d < DEVICES; d++) {
      const dev = this.#devices[d];
      if (dev) step(() => V3.DeleteDevice(dev));
      this.#devices[d] = null;
      this.#edu[d] = null;
      this.#touched[d] = new Map();
    }
    for (let m = 0; m < MEMORY_PAGES.length; m++) {
      const mem = this.#mems[m];
      if (mem) step(() => mem.free());
    }
    for (let m = 0; m < MEMORY_PAGES.length; m++) {
      const mem = this.#allocate(m);
      this.#mems[m] = mem;
      this.#firstPfns[m] = pfnsOf(mem.asPfnArray());
      this.#stale[m] = false;
    }
    this.#graveDevice = this.#graveDomain = null;
    this.#graveToken = null;
    this.#graveSegment = null;
    return clean;
  }

  /** Helper processes started for `holdElsewhere` (one per side unless one died). */
  get elsewhereProcesses(): number {
    return this.#elsewhere.started;
  }

  /** Let the other process go (waiting for it to exit), then close the platform. */
  async close(): Promise<void> {
    await this.#elsewhere.close();
    this.platform.close();
  }

  /**
   * The faults recorded since the last call (the platform's fault log, delivered to a handler or
   * not): `<bdf> <R|W> <address>`, plus ` undelivered` when no fault handler received it.
   */
  takeFaults(): string[] {
    const all = this.platform.faults();
    const out = all.slice(this.#faultsSeen).map(({ information: f, delivered }) => {
      const address = f.X64?.FaultAddress ?? f.Arm64?.FaultAddress ?? -1n;
      return `${f.Details.bdf} ${f.Details.write ? 'W' : 'R'} ${hex(address)}${delivered ? '' : ' undelivered'}`;
    });
    this.#faultsSeen = all.length;
    return out;
  }

  get pendingFaults(): number {
    return this.platform.faults().length - this.#faultsSeen;
  }

  /** Fault reporting on for an attached device (its handler counts as delivery; the log has the records). */
  #report(dev: IommuDmaDevice): void {
    this.#V3.SetDeviceFaultReportingEx(dev, 0, true, { FaultHandler: () => {} });
  }

  /** Digest of every memory slot. */
  memoryDigests(): string[] {
    this.#digests = this.#mems.map((m) => (m === null ? 'freed' : createHash('sha1').update(m.bytes).digest('hex').slice(0, 16)));
    return this.#digests;
  }

  /**
   * The digests as last computed (hashing every slot costs milliseconds per operation under TCG):
   * the runner recomputes them after the operations that move bytes (DMA, CPU writes, free,
   * alloc) and at a sequence's end, so a change by any other operation is still caught, at the
   * next recomputation.
   */
  lastMemoryDigests(): string[] {
    return this.#digests ?? this.memoryDigests();
  }
  #digests: string[] | null = null;

  /** The bytes of memory slot `m` (for describing a difference), or null when freed. */
  memoryBytes(m: number): Uint8Array | null {
    return this.#mems[m]?.bytes ?? null;
  }

  // ---- planning (no side effects) --------------------------------------------------------------

  /** Why this side cannot run `op` meaningfully (the runner then skips it on both), or null. */
  skipReason(op: Op): string | null {
    switch (op.op) {
      case 'createDomain':
        return this.#domains[op.dom] ? 'domain slot in use' : null;
      case 'reserve':
        return this.#tokens[op.token] ? 'token slot in use' : null;
      case 'alloc':
        return this.#mems[op.mem] ? 'memory slot in use' : null;
      case 'cpuWrite':
        return this.#mems[op.mem] ? null : 'memory freed';
      case 'unmapBuddy':
        return this.#buddy[op.dom][op.k] === undefined ? 'no such Buddy IOVA' : null;
      case 'unmapReserved':
        return this.#segments[op.token][op.k] === undefined ? 'no such segment' : null;
      case 'map':
      case 'mapBuddy':
      case 'mapReserved':
        return this.#freedReused(op.phys.mem) ? 'stale PFNs reused by a live allocation' : null;
      case 'identityMap':
      case 'identityUnmap': {
        if (this.#freedReused(op.phys.mem)) return 'stale PFNs reused by a live allocation';
        // The identity IOVA is a physical address, which legitimately differs: keep it out of the
        // IOVA arena the model's other addresses use, so it cannot collide with them on one side only.
        const mem = this.#mems[op.phys.mem];
        if (!mem) return null;
        const { page, pages } = clampPhys(op.phys);
        const hit = mem.runs(BigInt(page * PAGE), BigInt(pages * PAGE)).some((r) => r.pa < ARENA_END);
        return hit ? 'identity range inside the IOVA arena' : null;
      }
      case 'mapStale':
        return this.#staleReused(op.mem) ? 'stale PFNs reused by a live allocation' : null;
      case 'dma': {
        if (!this.#devices[op.dev]) return 'device not created';
        return this.#dmaIova(op.dev, op.base, op.offset) === null ? 'no such DMA target' : null;
      }
      default:
        return null;
    }
  }

  /**
   * Slot `m`'s first PFNs are stale (the slot was freed since) and a live allocation holds one of
   * them. A PFN this process freed is "memory the caller does not own" (STATUS_INVALID_PARAMETER_3
   * on every backend: contract suite) only while no allocation holds it again; which pages a new
   * allocation gets is the allocator's choice (the kernel's page allocator hands a freed page back
   * at once, the simulator's first-fit only when the hole fits), so a map of stale PFNs is run only
   * when no live allocation has any of them on either side — including the slot's own
   * re-allocation (freed and allocated again onto the same pages on one side only was the "stale
   * PFNs" class: type1 seed 461762427, iommufd seed 3055).
   */
  #staleReused(m: number): boolean {
    if (!this.#stale[m]) return false;
    const live = new Set<bigint>();
    for (const mem of [...this.#mems, this.#scratch]) if (mem) for (const pfn of pfnsOf(mem.asPfnArray())) live.add(pfn);
    return this.#firstPfns[m].some((pfn) => live.has(pfn));
  }

  /** A map of slot `m` describes its stale PFNs when the slot is freed (see #desc). */
  #freedReused(m: number): boolean {
    return !this.#mems[m] && this.#staleReused(m);
  }

  /** The DMA's IOVA: its base plus its offset (for a mapping, modulo the mapping's size plus a little, so some straddle its end). */
  #dmaIova(dev: number, base: DmaBase, offset: number): bigint | null {
    switch (base.kind) {
      case 'mapping': {
        const d = this.#attached[dev];
        if (d === null) return null;
        const live = this.#mappings[d].filter((m) => this.#shadow[d].has(Number(m.iova / PAGE_N)));
        if (!live.length) return null;
        const m = live[base.k % live.length];
        return m.iova + BigInt(offset % (m.pages * PAGE + 512));
      }
      case 'window':
        return windowIova(base.slot) + BigInt(offset);
      case 'buddy': {
        const d = this.#attached[dev];
        const b = d === null ? undefined : this.#buddy[d][base.k];
        return b === undefined ? null : b + BigInt(offset);
      }
      case 'token': {
        const t = this.#tokens[base.token];
        return t ? t.LogicalAddressBase + BigInt(offset) : null;
      }
    }
  }

  /** The shadow's view of a DMA (call only when skipReason(op) is null). */
  planDma(op: Extract<Op, { op: 'dma' }>): DmaPlan {
    const iova = this.#dmaIova(op.dev, op.base, op.offset)!;
    const d = this.#attached[op.dev];
    const passThrough = d !== null && this.#domainInfo[d]?.type === 'passthrough';
    const need = op.toDevice ? 1 : 2;
    const other = op.toDevice ? 2 : 1;
    let faultingPages = 0;
    let cachedOtherDirection = false;
    if (iova + BigInt(op.length) <= ARENA_END) {
      const first = Number(iova / PAGE_N);
      const last = Number((iova + BigInt(op.length) - 1n) / PAGE_N);
      for (let p = first; p <= last; p++) {
        const perms = d === null ? 0 : passThrough ? 3 : (this.#shadow[d].get(p) ?? 0);
        if ((perms & need) === 0) faultingPages++;
        if (((this.#touched[op.dev].get(p) ?? 0) & other) !== 0) cachedOtherDirection = true;
      }
    }
    return { iova, faultingPages, cachedOtherDirection, passThrough };
  }

  // ---- execution --------------------------------------------------------------------------------

  /** Run one operation; the faults and the memory are collected by the runner afterwards. */
  async execute(op: Op, readEdu = true): Promise<{ status: string; value?: string; edu?: string; detail?: string }> {
    this.#readEdu = readEdu;
    try {
      const r = await this.#run(op);
      if (r !== undefined && typeof r === 'object') return { status: 'ok', edu: r.edu };
      return { status: 'ok', ...(r !== undefined ? { value: r } : {}) };
    } catch (e) {
      return { status: statusOf(e), detail: (e as Error)?.message };
    }
  }

  #desc(p: Phys): IOMMU_MAP_PHYSICAL_ADDRESS {
    const mem = this.#mems[p.mem];
    const { page, pages } = clampPhys(p);
    const off = BigInt(page * PAGE);
    const len = BigInt(pages * PAGE);
    if (!mem) return this.#stalePfns(p.mem, page, pages);
    switch (p.kind) {
      case 'mdl':
        return mem.asMdl(off, len);
      case 'range':
        return mem.asContiguousRange(off, len);
      case 'pfn':
        return mem.asPfnArray(off, len);
      case 'pfnReversed':
      case 'pfnShuffled': {
        const pfns = pfnsOf(mem.asPfnArray(off, len));
        const order = p.kind === 'pfnReversed' ? pfns.slice().reverse() : permute(pfns, p.shuffle);
        return { MapType: MapPhysicalAddressTypePfn, PfnArray: { PageFrame: order, NumberOfPages: BigInt(order.length) } };
      }
    }
  }

  /** The PFNs memory slot `m` had when first allocated (memory this process may no longer own). */
  #stalePfns(m: number, page = 0, pages: number = MEMORY_PAGES[m]): IOMMU_MAP_PHYSICAL_ADDRESS {
    const pfns = this.#firstPfns[m].slice(page, page + pages);
    return { MapType: MapPhysicalAddressTypePfn, PfnArray: { PageFrame: pfns, NumberOfPages: BigInt(pfns.length) } };
  }

  #mdl(p: Phys): MDL {
    const mem = this.#mems[p.mem];
    const { page, pages } = clampPhys(p);
    if (!mem) return { ByteOffset: 0, ByteCount: BigInt(pages * PAGE), PfnArray: this.#firstPfns[p.mem].slice(page, page + pages) };
    return mem.mdl(BigInt(page * PAGE), BigInt(pages * PAGE));
  }

  #setShadow(dom: number, iova: bigint, pages: number, perms: number | null): void {
    const shadow = this.#shadow[dom];
    if (!shadow || iova >= ARENA_END) return;
    if (perms !== null) this.#mappings[dom].push({ iova, pages });
    const first = Number(iova / PAGE_N);
    for (let p = first; p < first + pages; p++) {
      if (perms === null) shadow.delete(p);
      else shadow.set(p, perms);
    }
  }

  /** Domain slot `d` now holds `dom` (null: empty), with nothing mapped and no Buddy IOVAs yet. */
  #setDomainSlot(d: number, dom: IommuDmaDomain | null, info: { type: 'translate' | 'passthrough'; buddy: boolean } | null): void {
    this.#domains[d] = dom;
    this.#domainInfo[d] = info;
    this.#shadow[d] = new Map();
    this.#mappings[d] = [];
    this.#buddy[d] = [];
  }

  #domainSlotOf(domain: IommuDmaDomain): number {
    return this.#domains.indexOf(domain);
  }

  // One case per operation: its WDK call, then this side's slots for that kind of object. The
  // delete cases (deleteDevice, deleteDomain, unmapReserved, freeReserved) are alike in shape only:
  // each clears the slots of its own kind and keeps the handle as that kind's stale one for `bad`.
  async #run(op: Op): Promise<string | { edu: string } | undefined> {
    const V1 = this.#V1;
    const V3 = this.#V3;
    switch (op.op) {
      case 'createDevice': {
        const dev = V3.CreateDevice(this.#pdos[op.dev]);
        this.#devices[op.dev] = dev;
        const edu = new EduDevice(this.platform.deviceRegions(dev), { timeoutMs: this.#eduTimeoutMs });
        edu.enableBusMaster();
        this.#edu[op.dev] = edu;
        return undefined;
      }
      case 'deleteDevice': {
        const dev = this.#devices[op.dev];
        V3.DeleteDevice(dev as IommuDmaDevice);
        this.#graveDevice = dev;
        this.#devices[op.dev] = null;
        this.#edu[op.dev] = null;
        this.#attached[op.dev] = null;
        return undefined;
      }
      case 'createDomain': {
        const cfg = op.buddy ? { LogicalAllocatorType: IommuDmaLogicalAllocatorBuddy, BuddyAllocatorConfig: { AddressWidth: 28 } } : null;
        const dom = V3.CreateDomainEx(op.type === 'translate' ? DomainTypeTranslate : DomainTypePassThrough, 0n, cfg, null);
        this.#setDomainSlot(op.dom, dom, { type: op.type, buddy: op.buddy });
        return undefined;
      }
      case 'deleteDomain': {
        const dom = this.#domains[op.dom];
        V3.DeleteDomain(dom as IommuDmaDomain);
        this.#graveDomain = dom;
        this.#setDomainSlot(op.dom, null, null);
        return undefined;
      }
      case 'attach': {
        const dom = this.#domains[op.dom] as IommuDmaDomain;
        if (op.v1) V1.AttachDevice(dom, this.#pdos[op.dev], 0, 1);
        else V3.AttachDeviceEx(dom, this.#devices[op.dev] as IommuDmaDevice);
        this.#attached[op.dev] = op.dom;
        const dev = this.#devices[op.dev];
        if (dev) this.#report(dev);
        return undefined;
      }
      case 'detach': {
        if (op.v1) {
          const d = this.#attached[op.dev];
          V1.DetachDevice((d === null ? this.#domains[0] : this.#domains[d]) as IommuDmaDomain, this.#pdos[op.dev], 0);
        } else V3.DetachDeviceEx(this.#devices[op.dev] as IommuDmaDevice);
        this.#attached[op.dev] = null;
        return undefined;
      }
      case 'queryTypes':
        return String(V3.QueryAvailableDomainTypes(this.#devices[op.dev] as IommuDmaDevice));
      case 'map': {
        const dom = this.#domains[op.dom] as IommuDmaDomain;
        const iova = windowIova(op.window, op.pageDelta);
        if (op.v1) V1.MapLogicalRange(dom, op.perms, this.#mdl(op.phys), iova);
        else V3.MapLogicalRangeEx(dom, op.perms, this.#desc(op.phys), iova, null, null);
        this.#setShadow(op.dom, iova, clampPhys(op.phys).pages, op.perms);
        return undefined;
      }
      case 'mapBuddy': {
        const iova = V3.MapLogicalRangeEx(this.#domains[op.dom] as IommuDmaDomain, op.perms, this.#desc(op.phys), null, null, null);
        this.#buddy[op.dom].push(iova);
        this.#setShadow(op.dom, iova, clampPhys(op.phys).pages, op.perms);
        return hex(iova);
      }
      case 'unmap':
      case 'unmapBuddy': {
        const base = op.op === 'unmap' ? windowIova(op.window) : this.#buddy[op.dom][op.k];
        const iova = base + BigInt(op.pageDelta * PAGE);
        V3.UnmapLogicalRange(this.#domains[op.dom] as IommuDmaDomain, iova, BigInt(op.pages));
        this.#setShadow(op.dom, iova, op.pages, null);
        return undefined;
      }
      case 'identityMap': {
        const dom = this.#domains[op.dom] as IommuDmaDomain;
        if (op.v1) V1.MapIdentityRange(dom, op.perms, this.#mdl(op.phys));
        else V3.MapIdentityRangeEx(dom, op.perms, this.#desc(op.phys));
        return undefined;
      }
      case 'identityUnmap': {
        const dom = this.#domains[op.dom] as IommuDmaDomain;
        if (op.v1) V1.UnmapIdentityRange(dom, this.#mdl(op.phys));
        else V3.UnmapIdentityRangeEx(dom, this.#desc(op.phys));
        return undefined;
      }
      case 'reserve': {
        const explicit = op.window === null ? null : windowIova(op.window);
        const tok = V3.ReserveLogicalAddressRange(this.#domains[op.dom] as IommuDmaDomain, BigInt(op.pages * PAGE), explicit, null, null);
        this.#tokens[op.token] = tok;
        this.#tokenDomain[op.token] = op.dom;
        this.#segments[op.token] = [];
        return `${hex(tok.LogicalAddressBase)}+${hex(tok.Size)}`;
      }
      case 'mapReserved': {
        const tok = (this.#tokens[op.token] ?? this.#graveToken) as LogicalAddressToken;
        const seg = V3.MapReservedLogicalRange(tok, BigInt(op.pageOffset * PAGE), op.perms, this.#desc(op.phys));
        this.#segments[op.token].push(seg);
        this.#setShadow(this.#tokenDomain[op.token], tok.LogicalAddressBase + seg.Offset, Number(seg.Size / PAGE_N), op.perms);
        return `${hex(seg.Offset)}+${hex(seg.Size)}`;
      }
      case 'unmapReserved': {
        const seg = this.#segments[op.token][op.k];
        V3.UnmapReservedLogicalRange(seg);
        this.#segments[op.token].splice(op.k, 1);
        this.#graveSegment = seg;
        this.#setShadow(this.#tokenDomain[op.token], seg.OwningToken.LogicalAddressBase + seg.Offset, Number(seg.Size / PAGE_N), null);
        return undefined;
      }
      case 'freeReserved': {
        const tok = this.#tokens[op.token];
        V3.FreeReservedLogicalAddressRange(tok as LogicalAddressToken);
        this.#graveToken = tok;
        this.#tokens[op.token] = null;
        this.#segments[op.token] = [];
        return undefined;
      }
      case 'cpuWrite': {
        const mem = this.#mems[op.mem]!;
        const size = Number(mem.size);
        const start = op.offset % size;
        mem.bytes.fill(op.value, start, Math.min(size, start + op.length));
        return undefined;
      }
      case 'free': {
        const mem = this.#mems[op.mem];
        if (!mem) throw new IommuError('STATUS_INVALID_DEVICE_REQUEST', 'already freed');
        mem.free();
        this.#mems[op.mem] = null;
        this.#stale[op.mem] = true;
        return undefined;
      }
      case 'alloc':
        this.#mems[op.mem] = this.#allocate(op.mem);
        return undefined;
      case 'mapStale': {
        const iova = windowIova(op.window);
        V3.MapLogicalRangeEx(this.#domains[op.dom] as IommuDmaDomain, RW, this.#stalePfns(op.mem), iova, null, null);
        this.#setShadow(op.dom, iova, MEMORY_PAGES[op.mem], RW);
        return undefined;
      }
      case 'dma':
        return this.#dma(op);
      case 'bad':
        this.#bad(op.call, op.a, op.b);
        return undefined;
      case 'holdElsewhere':
        return this.#elsewhere.hold(op.dev, this.#pdos[op.dev].bdf);
      case 'releaseElsewhere':
        await this.#elsewhere.release(op.dev);
        return undefined;
    }
  }

  async #dma(op: Extract<Op, { op: 'dma' }>): Promise<{ edu: string } | undefined> {
    const edu = this.#edu[op.dev]!;
    const iova = this.#dmaIova(op.dev, op.base, op.offset)!;
    const touched = this.#touched[op.dev];
    if (iova + BigInt(op.length) <= ARENA_END) {
      for (let p = Number(iova / PAGE_N); p <= Number((iova + BigInt(op.length) - 1n) / PAGE_N); p++) {
        touched.set(p, (touched.get(p) ?? 0) | (op.toDevice ? 1 : 2));
      }
    }
    if (!op.toDevice) {
      await edu.dmaFromDevice(iova, op.length, op.deviceOffset);
      return undefined;
    }
    this.#eduDirty[op.dev] = true;
    await edu.dmaToDevice(iova, op.length, op.deviceOffset);
    return this.#readEdu ? { edu: await this.#readEduBuffer(op.dev, op.deviceOffset, op.length) } : undefined;
  }

  /**
   * The edu buffer cannot be read over MMIO: the harness maps its scratch page in the device's
   * domain, lets the device write [deviceOffset, +length) of its buffer there, and unmaps it.
   */
  async #readEduBuffer(dev: number, deviceOffset: number, length: number): Promise<string> {
    const d = this.#attached[dev];
    const dom = d === null ? null : this.#domains[d];
    const info = d === null ? null : this.#domainInfo[d];
    if (!dom || !info || info.type !== 'translate') return 'n/a (no translate domain)';
    this.#scratch.bytes.fill(0xee);
    let iova: bigint;
    try {
      iova = this.#V3.MapLogicalRangeEx(dom, RW, this.#scratch.asMdl(), info.buddy ? null : SCRATCH_IOVA, null, null);
    } catch (e) {
      return `n/a (scratch map: ${statusOf(e)})`;
    }
    try {
      await this.#edu[dev]!.dmaFromDevice(iova, length, deviceOffset);
      return Buffer.from(this.#scratch.bytes.subarray(0, length)).toString('hex');
    } catch (e) {
      return `n/a (read back: ${statusOf(e)})`;
    } finally {
      this.#V3.UnmapLogicalRange(dom, iova, 1n);
    }
  }

  #bad(call: BadCall, a: number, b: number): void {
    const V1 = this.#V1;
    const V3 = this.#V3;
    const dom = (this.#domains[a % DOMAINS] ?? this.#domains.find((d) => d) ?? null) as IommuDmaDomain;
    const dev = (this.#devices[b % DEVICES] ?? this.#devices.find((d) => d) ?? null) as IommuDmaDevice;
    const mem = this.#mems.find((m) => m) ?? this.#scratch;
    const page = mem.asMdl(0n, PAGE_N);
    const iova = windowIova(a * 4 + b);
    const tok = this.#tokens[a % TOKENS] ?? this.#tokens.find((t) => t) ?? null;
    const any = (v: unknown) => v as never;
    switch (call) {
      case 'attachDeletedDomain':
        return V3.AttachDeviceEx(any(this.#graveDomain), dev);
      case 'attachDeletedDevice':
        return V3.AttachDeviceEx(dom, any(this.#graveDevice));
      case 'attachNullDomain':
        return V3.AttachDeviceEx(any(null), dev);
      case 'mapDeletedDomain':
        return void V3.MapLogicalRangeEx(any(this.#graveDomain), RW, page, iova, null, null);
      case 'mapDeviceAsDomain':
        return void V3.MapLogicalRangeEx(any(dev), RW, page, iova, null, null);
      case 'mapUnalignedIova':
        return void V3.MapLogicalRangeEx(dom, RW, page, iova + BigInt(1 + a * 17), null, null);
      case 'mapIovaOutsideAperture':
        return void V3.MapLogicalRangeEx(dom, RW, page, b & 1 ? 0x8000000000n : 0xfffffffffffff000n, null, null);
      case 'mapIovaInMsiWindow':
        return void V3.MapLogicalRangeEx(dom, RW, page, 0xfee00000n + BigInt(b * PAGE), null, null);
      case 'mapZeroPermissions':
        return void V3.MapLogicalRangeEx(dom, 0, page, iova, null, null);
      case 'mapBadPermissions':
        return void V3.MapLogicalRangeEx(dom, 4 << b, page, iova, null, null);
      case 'mapMdlByteOffset': {
        const mdl = mem.mdl(0n, PAGE_N);
        return void V3.MapLogicalRangeEx(dom, RW, { MapType: 0, Mdl: { ...mdl, ByteOffset: 16 * (a + 1) } }, iova, null, null);
      }
      case 'mapMdlPartialPage': {
        const mdl = mem.mdl(0n, PAGE_N);
        return void V3.MapLogicalRangeEx(dom, RW, { MapType: 0, Mdl: { ...mdl, ByteCount: BigInt(100 + a) } }, iova, null, null);
      }
      case 'mapRangeUnalignedBase':
        return void V3.MapLogicalRangeEx(dom, RW, { MapType: 1, ContiguousRange: { Base: mem.physicalAddress + BigInt(8 << a), Size: PAGE_N } }, iova, null, null);
      case 'mapPfnZeroPages':
        return void V3.MapLogicalRangeEx(dom, RW, { MapType: MapPhysicalAddressTypePfn, PfnArray: { PageFrame: [], NumberOfPages: 0n } }, iova, null, null);
      case 'mapPfnCountPastArray': {
        const pfns = pfnsOf(mem.asPfnArray(0n, PAGE_N));
        return void V3.MapLogicalRangeEx(dom, RW, { MapType: MapPhysicalAddressTypePfn, PfnArray: { PageFrame: pfns, NumberOfPages: BigInt(2 + a) } }, iova, null, null);
      }
      case 'mapBadMapType':
        return void V3.MapLogicalRangeEx(dom, RW, any({ MapType: 3 + a }), iova, null, null);
      case 'mapNullDescription':
        return void V3.MapLogicalRangeEx(dom, RW, any(null), iova, null, null);
      case 'unmapZeroPages':
        return V3.UnmapLogicalRange(dom, iova, 0n);
      case 'unmapHugeCount':
        return V3.UnmapLogicalRange(dom, iova, 1n << BigInt(52 + a));
      case 'unmapUnalignedIova':
        return V3.UnmapLogicalRange(dom, iova + 0x800n, 1n);
      case 'unmapNullDomain':
        return V3.UnmapLogicalRange(any(null), iova, 1n);
      case 'unmapNeverMapped':
        return V3.UnmapLogicalRange(dom, 0xe000000n + BigInt(a * PAGE), BigInt(b + 1));
      case 'detachNull':
        return V3.DetachDeviceEx(any(null));
      case 'detachDeletedDevice':
        return V3.DetachDeviceEx(any(this.#graveDevice));
      case 'deleteDomainNull':
        return V3.DeleteDomain(any(null));
      case 'deleteDeletedDomain':
        return V3.DeleteDomain(any(this.#graveDomain));
      case 'deleteDeletedDevice':
        return V3.DeleteDevice(any(this.#graveDevice));
      case 'createDomainBadType':
        return void V3.CreateDomainEx(5 + a, 0n, null, null);
      case 'createDomainBadFlags':
        return void V3.CreateDomainEx(DomainTypeTranslate, 1n << BigInt(a), null, null);
      case 'createDomainBadBuddyWidth':
        return void V3.CreateDomainEx(DomainTypeTranslate, 0n, { LogicalAllocatorType: IommuDmaLogicalAllocatorBuddy, BuddyAllocatorConfig: { AddressWidth: [0, 11, 65, 99][a] } }, null);
      case 'reserveUnalignedSize':
        return void V3.ReserveLogicalAddressRange(dom, BigInt(PAGE + 1 + a), iova, null, null);
      case 'reserveZeroSize':
        return void V3.ReserveLogicalAddressRange(dom, 0n, iova, null, null);
      case 'reserveUnalignedIova':
        return void V3.ReserveLogicalAddressRange(dom, PAGE_N, iova + 0x10n, null, null);
      case 'mapReservedPastToken':
        return void V3.MapReservedLogicalRange(any(tok), (tok?.Size ?? 0n) + BigInt(a * PAGE), RW, page);
      case 'mapReservedUnalignedOffset':
        return void V3.MapReservedLogicalRange(any(tok), 0x800n, RW, page);
      case 'mapReservedFreedToken':
        return void V3.MapReservedLogicalRange(any(this.#graveToken), 0n, RW, page);
      case 'unmapReservedFreedSegment':
        return V3.UnmapReservedLogicalRange(any(this.#graveSegment));
      case 'freeFreedToken':
        return V3.FreeReservedLogicalAddressRange(any(this.#graveToken));
      case 'identityUnmapNeverMapped':
        return V3.UnmapIdentityRangeEx(dom, this.#scratch.asMdl());
      case 'faultReportingBadHandler':
        return V3.SetDeviceFaultReportingEx(dev, 0, true, any({ FaultHandler: 42 }));
      case 'queryAvailableDeletedDevice':
        return void V3.QueryAvailableDomainTypes(any(this.#graveDevice));
      case 'mapLogicalV1Description':
        return V1.MapLogicalRange(dom, RW, any(page), iova);
    }
  }
}

/** The memory a Phys describes, clamped to its slot (the model never asks for memory past an allocation). */
export function clampPhys(p: Phys): { page: number; pages: number } {
  const size = MEMORY_PAGES[p.mem];
  const page = p.page % size;
  const pages = p.kind === 'range' ? 1 : Math.max(1, Math.min(p.pages, size - page));
  return { page, pages };
}
