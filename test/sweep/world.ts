/**
 * The sweeps' fixture: a platform with a live device attached to a Translate domain, a mapping,
 * a reserved token with a mapped segment, DMA memory, an identity (PassThrough) domain, handles
 * that were deleted, and objects of a second ("foreign") platform. Shared by the host runners
 * (simulator) and the guest runners (native backends in `dma-iommu vm`).
 */
import {
  DomainTypePassThrough,
  DomainTypeTranslate,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  IommuDeviceCreationConfigTypePasid,
  PasidConfigTypePasidTaggedDma,
  type IommuPlatform,
  type DmaMemory,
  type IommuDmaDevice,
  type IommuDmaDomain,
  type IommuDmaPasidDevice,
  type LogicalAddressToken,
  type PhysicalDeviceObject,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT,
  type DeviceRegions,
  EduDevice,
} from '../../lib/index.js';
import type { SweepBackend } from './known-defects.js';
import { interfaceV3 as v3 } from '../support/device-use.js';
import { buildInterfaceEx, type DMA_IOMMU_INTERFACE_V1, type DMA_IOMMU_INTERFACE_V3 } from '../../lib/wdk/interface.js';

export const RW = IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE;
export const PAGE = 4096n;
/** Where the world's logical mapping sits (one page), its token (16 pages) and the follow-up map. */
export const MAPPED_IOVA = 0x100000n;
export const TOKEN_IOVA = 0x400000n;
export const TOKEN_SIZE = 0x10000n;
export const FOLLOW_UP_IOVA = 0x800000n;

/** How a runner opens platforms: the one under test and a foreign one (for cross-platform handles). */
export interface WorldFactory {
  readonly name: string;
  /** 'sim' on the host, 'native' in the guest: selects KNOWN_DEFECTS rows that apply. */
  readonly backend: 'sim' | 'native';
  /** Which KNOWN_DEFECTS entries apply. */
  readonly kind: SweepBackend;
  open(): IommuPlatform;
  openForeign(): IommuPlatform;
  /** The edu device this platform uses, and the one the foreign platform uses. */
  readonly bdf: string;
  readonly foreignBdf: string;
  /** A PASID-capable device (simulator only), for the PASID members' valid arguments. */
  readonly pasidBdf?: string;
}

export interface World {
  readonly p: IommuPlatform;
  readonly V1: DMA_IOMMU_INTERFACE_V1;
  readonly V3: DMA_IOMMU_INTERFACE_V3;
  readonly pdo: PhysicalDeviceObject;
  readonly dev: IommuDmaDevice;
  readonly dom: IommuDmaDomain;
  /** A second Translate domain, empty, nothing attached (for attach rows). */
  readonly dom2: IommuDmaDomain;
  readonly idDom: IommuDmaDomain;
  readonly mem: DmaMemory;
  readonly token: LogicalAddressToken;
  readonly segment: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT;
  readonly regions: DeviceRegions;
  readonly edu: EduDevice;
  readonly pasid: IommuDmaPasidDevice | undefined;
  readonly deleted: {
    readonly dom: IommuDmaDomain;
    readonly dev: IommuDmaDevice;
    readonly token: LogicalAddressToken;
    readonly mem: DmaMemory;
    /** An IOMMU_MAP_PHYSICAL_ADDRESS of the freed memory, taken before it was freed. */
    readonly memDesc: unknown;
  };
  readonly foreign: {
    readonly p: IommuPlatform;
    readonly pdo: PhysicalDeviceObject;
    readonly dev: IommuDmaDevice;
    readonly dom: IommuDmaDomain;
    readonly token: LogicalAddressToken;
    readonly mem: DmaMemory;
    readonly segment: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT;
  };
  close(): void;
}

function v1(p: IommuPlatform): DMA_IOMMU_INTERFACE_V1 {
  const i = buildInterfaceEx(p, 1, 0n);
  if (i.Version !== 1) throw new Error('unreachable');
  return i.V1;
}

function pdoOf(p: IommuPlatform, bdf: string): PhysicalDeviceObject {
  const pdo = p.findDevice(bdf);
  if (!pdo) throw new Error(`sweep world: no device ${bdf} on the ${p.backend.kind} backend`);
  return pdo;
}

export function openWorld(f: WorldFactory): World {
  const p = f.open();
  const V3 = v3(p);
  const pdo = pdoOf(p, f.bdf);
  const dev0 = V3.CreateDevice(pdo);
  V3.DeleteDevice(dev0);
  const dev = V3.CreateDevice(pdo);
  const dom = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
  const dom2 = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
  const idDom = V3.CreateDomainEx(DomainTypePassThrough, 0n, null, null);
  const goneDom = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
  V3.DeleteDomain(goneDom);
  V3.AttachDeviceEx(dom, dev);
  const mem = p.allocateDmaMemory(4n * PAGE);
  const goneMem = p.allocateDmaMemory(PAGE);
  const goneDesc = goneMem.asMdl();
  goneMem.free();
  V3.MapLogicalRangeEx(dom, RW, mem.asMdl(0n, PAGE), MAPPED_IOVA, null, null);
  const token = V3.ReserveLogicalAddressRange(dom, TOKEN_SIZE, TOKEN_IOVA, null, null);
  const segment = V3.MapReservedLogicalRange(token, 0n, RW, mem.asMdl(PAGE, PAGE));
  const goneToken = V3.ReserveLogicalAddressRange(dom, PAGE, 0x600000n, null, null);
  V3.FreeReservedLogicalAddressRange(goneToken);
  const regions = p.deviceRegions(dev);
  const edu = new EduDevice(regions, { timeoutMs: 2000 });
  edu.enableBusMaster();
  let pasid: IommuDmaPasidDevice | undefined;
  if (f.pasidBdf) {
    const tagged = V3.CreateDevice(pdoOf(p, f.pasidBdf), { ConfigType: IommuDeviceCreationConfigTypePasid, Pasid: { ConfigType: PasidConfigTypePasidTaggedDma } });
    pasid = V3.CreatePasidDevice(tagged).PasidDevice;
  }

  // the foreign platform is built on first use (most rows never touch it; natively it costs a
  // second device open, attach and map per row)
  type Foreign = World['foreign'];
  let foreign: Foreign | null = null;
  const openForeign = (): Foreign => {
    const fp = f.openForeign();
    const F3 = v3(fp);
    const fpdo = pdoOf(fp, f.foreignBdf);
    const fdev = F3.CreateDevice(fpdo);
    const fdom = F3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
    F3.AttachDeviceEx(fdom, fdev);
    const fmem = fp.allocateDmaMemory(PAGE);
    const ftoken = F3.ReserveLogicalAddressRange(fdom, TOKEN_SIZE, TOKEN_IOVA, null, null);
    const fsegment = F3.MapReservedLogicalRange(ftoken, 0n, RW, fmem.asMdl());
    return { p: fp, pdo: fpdo, dev: fdev, dom: fdom, token: ftoken, mem: fmem, segment: fsegment };
  };

  return {
    p,
    V1: v1(p),
    V3,
    pdo,
    dev,
    dom,
    dom2,
    idDom,
    mem,
    token,
    segment,
    regions,
    edu,
    pasid,
    deleted: { dom: goneDom, dev: dev0, token: goneToken, mem: goneMem, memDesc: goneDesc },
    get foreign(): Foreign {
      foreign ??= openForeign();
      return foreign;
    },
    close() {
      try {
        p.close();
      } finally {
        foreign?.p.close();
      }
    },
  };
}

/**
 * The platform's bookkeeping as data, without what a failed call may legitimately change (the
 * fault count) and without the backend's view (compared separately by `agreement`).
 */
export function bookkeeping(p: IommuPlatform): unknown {
  const s = p.inspect() as Record<string, unknown>;
  const { backendState: _b, faults: _f, ...rest } = s;
  return rest;
}

interface Span {
  start: bigint;
  end: bigint;
}

function spans(list: Array<{ iova: string; length: string }>): Span[] {
  return list.map((a) => ({ start: BigInt(a.iova), end: BigInt(a.iova) + BigInt(a.length) })).sort((a, b) => (a.start < b.start ? -1 : 1));
}

function covered(inner: Span, outer: readonly Span[]): boolean {
  let at = inner.start;
  for (const o of outer) {
    if (o.end <= at) continue;
    if (o.start > at) return false;
    at = o.end;
    if (at >= inner.end) return true;
  }
  return at >= inner.end;
}

/**
 * Whether the platform's bookkeeping and the backend's state agree: the same devices attached, the
 * same number of domains, and per Translate domain (in creation order) every backend mapping lies
 * inside a platform claim and every logical/identity claim is mapped in the backend. Returns the
 * list of disagreements (empty when they agree).
 */
export function agreement(p: IommuPlatform): string[] {
  const s = p.inspect() as {
    devices: Array<{ bdf: string; attached: string | null }>;
    domains: Array<{ type: number; devices: string[]; claims: Array<{ kind: string; iova: string; length: string }> }>;
    backendState: Record<string, unknown>;
  };
  const b = s.backendState as {
    kind: string;
    devices: Array<Record<string, unknown>>;
    domains: Array<Record<string, unknown>>;
  };
  const problems: string[] = [];
  const platformAttached = s.devices.filter((d) => d.attached !== null).map((d) => d.bdf).sort();
  const backendAttached = b.devices
    .filter((d) => (b.kind === 'simulated' ? d.open === true && d.attachedDomain !== null : d.domain !== null && d.domain !== undefined))
    .map((d) => String(d.bdf))
    .sort();
  if (platformAttached.join() !== backendAttached.join()) problems.push(`attached devices: platform [${platformAttached}] vs backend [${backendAttached}]`);
  if (s.domains.length !== b.domains.length) problems.push(`domains: platform ${s.domains.length} vs backend ${b.domains.length}`);
  const pTranslate = s.domains.filter((d) => d.type === DomainTypeTranslate);
  const bTranslate = b.domains.filter((d) => d.type === 'translate');
  if (pTranslate.length === bTranslate.length) {
    pTranslate.forEach((pd, i) => {
      const bd = bTranslate[i];
      const areas = spans((bd.areas as Array<{ iova: string; length: string }>) ?? []);
      if (bd.areasTruncated) return;
      const claims = spans(pd.claims);
      const mappedClaims = spans(pd.claims.filter((c) => c.kind === 'logical' || c.kind === 'identity'));
      for (const a of areas) if (!covered(a, claims)) problems.push(`domain #${i}: backend maps 0x${a.start.toString(16)}-0x${(a.end - 1n).toString(16)} outside every platform claim`);
      for (const c of mappedClaims) if (!covered(c, areas)) problems.push(`domain #${i}: platform claim 0x${c.start.toString(16)}-0x${(c.end - 1n).toString(16)} is not mapped in the backend`);
    });
  }
  return problems;
}

/** A valid operation after a failed one: map and unmap a page, read and write the device. */
export function followUp(w: World): void {
  const iova = w.V3.MapLogicalRangeEx(w.dom, RW, w.mem.asMdl(2n * PAGE, PAGE), FOLLOW_UP_IOVA, null, null);
  if (iova !== FOLLOW_UP_IOVA) throw new Error(`follow-up map returned 0x${iova.toString(16)}`);
  w.V3.UnmapLogicalRange(w.dom, FOLLOW_UP_IOVA, 1n);
  if (!w.edu.checkLiveness(0x5a5a5a5a)) throw new Error('follow-up: the edu device failed its liveness check');
}
