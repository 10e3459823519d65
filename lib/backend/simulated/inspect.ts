/**
 * `SimulatedBackend.inspect()`: the whole simulated machine as JSON-able data (bigints as hex
 * strings): machine, devices and groups, domains with their areas and page-table statistics,
 * memory, DMA and fault counters, operation counters, live records and armed injections.
 */
import type { BackendCapabilities, IovaRange, PciDeviceInfo } from '../contract.js';
import type { SimBus } from './bus.js';
import type { DmaEngine } from './dma-engine.js';
import { type DomainType, SimDomain } from './domain.js';
import type { FaultLog } from './faults.js';
import type { FailureInjector } from './injection.js';
import type { PhysicalMemory } from './physical-memory.js';
import { DeviceHandle } from './regions.js';
import { hex } from './util.js';

export interface InspectOptions {
  /** Areas listed per domain (default 1000; the count is always exact). */
  readonly maxAreas?: number;
  /** Fault records listed (default 100, newest). */
  readonly maxFaults?: number;
}

/** Counts of the backend's per-object records. */
export interface SimRecordCounts {
  /** Live handles (domains + open devices). */
  handles: number;
  domains: number;
  openDevices: number;
  /** Devices present on the bus. */
  devices: number;
  /** Live memory allocations. */
  allocations: number;
  /** Fault records kept (bounded by faultLogCapacity). */
  faultRecords: number;
  faultListeners: number;
  deviceListeners: number;
  injections: number;
}

/** The machine's fixed facts. */
export interface MachineFacts {
  readonly reason: string;
  readonly capabilities: BackendCapabilities;
  readonly arch: 'x86_64' | 'arm64';
  readonly addressWidth: number;
  readonly pageTableLevels: number;
  readonly pageSizes: bigint;
  readonly reservedRegions: readonly IovaRange[];
}

/** What inspection reads (the backend's state, read-only). */
export interface InspectSource extends MachineFacts {
  readonly closed: boolean;
  readonly phys: PhysicalMemory;
  readonly bus: SimBus;
  /** Live handles: domains and open devices. */
  readonly objects: ReadonlyArray<SimDomain | DeviceHandle>;
  readonly faults: FaultLog;
  readonly engine: DmaEngine;
  readonly injector: FailureInjector;
  readonly listenerErrors: number;
  readonly listeners: { readonly fault: number; readonly device: number };
}

/** Everything as JSON-able data (bigints as hex strings). */
export function inspectSimulator(s: InspectSource, options: InspectOptions = {}): SimInspection {
  const domainObjects = s.objects.filter((o): o is SimDomain => o instanceof SimDomain);
  const deviceHandles = s.objects.filter((o): o is DeviceHandle => o instanceof DeviceHandle);
  const maxAreas = options.maxAreas ?? 1000;
  const maxFaults = options.maxFaults ?? 100;
  const range = (r: IovaRange): { start: string; last: string } => ({ start: hex(r.start), last: hex(r.last) });
  const devices = s.bus.sorted();
  const groups = new Map<number, string[]>();
  for (const d of devices) if (d.iommuGroup !== null) groups.set(d.iommuGroup, [...(groups.get(d.iommuGroup) ?? []), d.bdf]);
  const domains: SimInspection['domains'] = [];
  for (const o of domainObjects) {
    const g = o.geometry();
    const t = o.table;
    const attached: string[] = [];
    const pasids: Array<{ bdf: string; pasid: number }> = [];
    for (const dh of deviceHandles) {
      if (dh.closed) continue;
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
  const faults = s.faults.entries();
  return {
    kind: 'simulated',
    reason: s.reason,
    closed: s.closed,
    capabilities: { ...s.capabilities },
    machine: {
      arch: s.arch,
      addressWidth: s.addressWidth,
      pageTableLevels: s.pageTableLevels,
      pageSizes: hex(s.pageSizes),
      reservedRegions: s.reservedRegions.map(range),
      ram: s.phys.ranges.map((r) => ({ start: hex(r.start), end: hex(r.end) })),
      ramBytes: s.phys.totalBytes,
    },
    devices: devices.map((d) => ({
      ...d.info(),
      streamIds: [...d.streamIds],
      open: d.handle !== 0,
      handle: d.handle === 0 ? null : d.handle,
      attachedDomain: d.domain === null ? null : d.domain.handle,
      effectiveDomain: s.bus.groupDomain(d)?.handle ?? null,
      pasids: [...d.pasids].map(([pasid, dom]) => ({ pasid, domain: dom.handle })),
      availableDomainTypes: d.availableDomainTypes,
      reservedRegions: d.reservedRegions.map(range),
      model: d.model.inspect(),
    })),
    groups: [...groups].map(([group, bdfs]) => ({
      group,
      devices: bdfs,
      domain: s.bus.groupDomain(s.bus.devices.get(bdfs[0])!)?.handle ?? null,
    })),
    domains,
    memory: {
      allocations: s.phys.allocations.map((m) => ({
        id: m.id,
        pa: hex(m.pa),
        size: hex(m.size),
        lazy: m.lazy,
        hugePages: m.hugePages,
        touchedPages: m.touchedPages,
        mappedPages: m.mappedPages,
      })),
      loosePages: s.phys.loosePages,
    },
    dma: {
      reads: s.engine.reads,
      writes: s.engine.writes,
      bytesRead: s.engine.bytesRead,
      bytesWritten: s.engine.bytesWritten,
    },
    faults: {
      total: s.faults.total,
      logged: faults.length,
      dropped: s.faults.dropped,
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
    counters: s.injector.counters(s.listenerErrors),
    records: {
      handles: s.objects.length,
      domains: domainObjects.length,
      openDevices: deviceHandles.length,
      devices: s.bus.devices.size,
      allocations: s.phys.allocations.length,
      faultRecords: faults.length,
      faultListeners: s.listeners.fault,
      deviceListeners: s.listeners.device,
      injections: s.injector.injections.length,
    },
    injections: s.injector.armed(),
  };
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
  /** Live per-object records: what a create/close or allocate/free loop must bring back to where it started. */
  records: SimRecordCounts;
  injections: Array<{ remaining: number; errno: string; op: string | null }>;
}
