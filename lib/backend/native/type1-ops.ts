/**
 * The legacy VFIO type1 kernel operations: /dev/vfio/vfio containers + /dev/vfio/<group>.
 *
 *  - a domain is a container (VFIO_TYPE1v2_IOMMU). The kernel has no IOMMU behind a container
 *    until a group joins, so maps made before the first attach are recorded and replayed then
 *    (capabilities.mapBeforeAttach 'replayed'), and when the last group leaves the kernel drops
 *    every mapping: the shadow stays and is replayed at the next attach.
 *  - groups move as one: the first attached device of a group moves the whole group; it leaves
 *    when its last attached device detaches.
 *  - detached (and freshly opened) groups sit in a private "parking" container with no mappings,
 *    so DMA is blocked (as after an iommufd detach) and the device fd stays usable for config/BAR
 *    access. Moving a group between containers needs its device fds closed (UNSET_CONTAINER is
 *    EBUSY otherwise); vfio-pci disables the device on the last close, so the PCI command
 *    register (bus master, memory space) is saved and restored around every move.
 *  - type1v2 refuses to bisect a mapping with EINVAL: translated to ENOENT per the contract (the
 *    shadow catches cuts first anyway). An unmap where nothing is mapped returns success with
 *    size 0 from the kernel: the shadow answers ENOENT before asking.
 */
import type { BackendCapabilities, DomainGeometry } from '../contract.js';
import type { NativeAddon, NativeHandle } from './addon-types.js';
import { AreaIndex } from './areas.js';
import { NativeBackend } from './backend.js';
import type { HotCalls } from './hot.js';
import { heldElsewhere } from './holders.js';
import type { Piece } from './memory.js';
import { type KernelOps, OpsBase, type OpsHost, nativeCapabilities, regionsFor } from './ops.js';
import { DEFAULT_GEOMETRY, type DeviceRec, type DomainRec, type NativeBackendOptions, addressWidthOf } from './records.js';
import { type SysPaths, type SysPciDevice, dmaEntryLimit, p } from './sysfs.js';
import { ERR, PAGE, U64_MAX, errnoOf, fail, hex } from './util.js';
import { PCI_COMMAND } from '../../util/pci.js';

interface Container {
  handle: NativeHandle | null;
  /** Group numbers set into this container. */
  readonly groups: Set<number>;
}

/** A type1 domain's own fields: its container. */
export interface Type1Domain {
  handle: NativeHandle;
  /** Group numbers set into this container. */
  readonly groups: Set<number>;
}

/** A type1 device's own fields: its group and its device fd (null while the group moves). */
export interface Type1Device {
  readonly group: GroupRec;
  handle: NativeHandle | null;
}

type Dom = DomainRec<Type1Domain>;
type Dev = DeviceRec<Type1Device>;

interface GroupRec {
  readonly group: number;
  readonly handle: NativeHandle;
  /** Where the group is: a domain, the parking container, or nowhere. */
  where: Dom | 'parking' | null;
  readonly devices: Set<Dev>;
}

function geometryFromInfo(info: { pageSizes: bigint; ranges: { start: bigint; last: bigint }[] | null }): DomainGeometry {
  const pageSizes = info.pageSizes || PAGE;
  const alignment = pageSizes & -pageSizes;
  const ranges = info.ranges ? info.ranges.map((r) => ({ start: r.start, last: r.last })) : DEFAULT_GEOMETRY.ranges;
  return { ranges, alignment, pageSizes, addressWidth: addressWidthOf(ranges) };
}

export class Type1Ops extends OpsBase<Type1Domain, Type1Device> implements KernelOps<Type1Domain, Type1Device> {
  readonly kind = 'vfio-type1' as const;
  readonly mapSyscall = 'VFIO_IOMMU_MAP_DMA';
  readonly unmapSyscall = 'VFIO_IOMMU_UNMAP_DMA';
  readonly capabilities: BackendCapabilities;
  readonly #groups = new Map<number, GroupRec>();
  readonly #parking: Container = { handle: null, groups: new Set() };
  #lastDmaAvail: number | null = null;

  constructor(o: NativeBackendOptions, host: OpsHost<Type1Domain, Type1Device>, hot: HotCalls) {
    super(o, host, hot);
    // Fail early (and with the kernel's errno) when there is no usable container node.
    const probe = o.addon.open(p(o.paths, 'dev/vfio/vfio'), o.addon.constants.O_RDWR, 'container');
    try {
      if (o.addon.getApiVersion(probe) !== o.addon.constants.VFIO_API_VERSION) fail(ERR.EINVAL, 'VFIO_GET_API_VERSION', 'unknown VFIO API version');
      if (o.addon.checkExtension(probe, o.addon.constants.VFIO_TYPE1v2_IOMMU) <= 0) fail(ERR.ENOTSUP, 'VFIO_CHECK_EXTENSION', 'no VFIO_TYPE1v2_IOMMU');
    } finally {
      probe.close();
    }
    this.capabilities = nativeCapabilities(o, { mapBeforeAttach: 'replayed', maxAreasPerDomain: dmaEntryLimit(o.paths) ?? 65535 });
  }

  active(dom: Dom): boolean {
    return dom.groups.size > 0;
  }

  map(dom: Dom, iova: bigint, piece: Piece, perms: number): void {
    // VFIO_DMA_MAP_FLAG_READ = 1, _WRITE = 2: the contract's bits exactly
    this.hot.dmaMap(dom.handle, iova, piece.alloc.native, piece.offset, piece.length, perms & 3);
  }

  unmap(dom: Dom, iova: bigint, length: bigint): void {
    const h = dom.handle;
    if (iova === 0n && length === U64_MAX) {
      this.hot.dmaUnmap(h, 0n, 0n, this.addon.constants.VFIO_DMA_UNMAP_FLAG_ALL);
      return;
    }
    if (!this.hot.dmaUnmap(h, iova, length, 0)) fail(ERR.ENOENT, this.unmapSyscall, 'nothing mapped there');
  }

  #info(h: NativeHandle): DomainGeometry {
    const info = this.addon.iommuGetInfo(h);
    this.#lastDmaAvail = info.dmaAvail;
    return geometryFromInfo(info);
  }

  geometry(dom: Dom): DomainGeometry {
    if (dom.groups.size > 0) return this.#info(dom.handle);
    // A container with no group has no IOMMU and so no reserved ranges, as an iommufd IOAS with
    // no device attached (and the simulator's unattached domain): maps anywhere are accepted now
    // and the conflict, if any, is answered at attach (EADDRINUSE, see #checkReplay).
    return DEFAULT_GEOMETRY;
  }

  /**
   * Before the replay into a container that has just got its IOMMU: every recorded area must lie
   * inside the container's usable ranges, else EADDRINUSE, as iommufd answers at attach when an
   * IOAS's areas clash with the device's reserved regions (iopt_table_enforce_dev_resv_regions)
   * and the simulator does; without it the replay's VFIO_IOMMU_MAP_DMA would answer EINVAL.
   */
  #checkReplay(dom: Dom, ch: NativeHandle): void {
    if (dom.type !== 'translate') return; // emulated identity records are replayed best effort
    const g = this.#info(ch);
    for (const a of dom.areas) {
      let inside = false;
      for (const r of g.ranges)
        if (r.start <= a.iova && a.end <= r.last + 1n) {
          inside = true;
          break;
        }
      if (!inside) fail(ERR.EADDRINUSE, 'VFIO_GROUP_SET_CONTAINER', `the area at ${hex(a.iova)}+${hex(a.length)} lies outside the usable IOVA ranges (reserved or beyond the aperture)`);
    }
  }

  // ---- groups and the parking container ----------------------------------------------------

  #openGroup(n: number, bdf: string, sys: SysPciDevice): GroupRec {
    let g = this.#groups.get(n);
    if (g) return g;
    const a = this.addon;
    const node = p(this.paths, 'dev/vfio', String(n));
    let handle: NativeHandle;
    try {
      handle = a.open(node, a.constants.O_RDWR, 'group');
    } catch (e) {
      // A group node opens once (group->opened_file), and not while a cdev of the group is bound.
      if (errnoOf(e) !== ERR.EBUSY) throw e;
      const nodes = sys.vfioDev ? [node, p(this.paths, 'dev/vfio/devices', sys.vfioDev)] : [node];
      throw heldElsewhere(bdf, 'open', nodes, `IOMMU group ${n} is already open (the kernel opens a VFIO group once)`);
    }
    try {
      const flags = a.groupGetStatus(handle);
      // EPERM: what VFIO_GROUP_SET_CONTAINER answers for a group that is not viable (the kernel's DMA-owner claim)
      if (!(flags & a.constants.VFIO_GROUP_FLAGS_VIABLE)) fail(ERR.EPERM, 'VFIO_GROUP_SET_CONTAINER', `IOMMU group ${n} is not viable (a device in it is bound to a host driver)`);
    } catch (e) {
      handle.close();
      throw e;
    }
    g = { group: n, handle, where: null, devices: new Set() };
    this.#groups.set(n, g);
    return g;
  }

  #containerOf(where: Dom | 'parking'): Container {
    return where === 'parking' ? this.#parking : where;
  }

  /** Put a group (with no open device fds) into a container; first group → SET_IOMMU (+ replay). */
  #join(g: GroupRec, where: Dom | 'parking'): void {
    const a = this.addon;
    const c = this.#containerOf(where);
    if (!c.handle) c.handle = a.open(p(this.paths, 'dev/vfio/vfio'), a.constants.O_RDWR, 'container');
    const ch = c.handle;
    a.groupSetContainer(g.handle, ch);
    const first = c.groups.size === 0;
    try {
      if (first) a.setIommu(ch, a.constants.VFIO_TYPE1v2_IOMMU);
      if (first && where !== 'parking') {
        this.#checkReplay(where, ch);
        this.host.replay(where);
      }
    } catch (e) {
      try {
        a.groupUnsetContainer(g.handle);
      } catch {
        /* ignore */
      }
      throw e;
    }
    c.groups.add(g.group);
    g.where = where;
  }

  #leave(g: GroupRec): void {
    if (!g.where) return;
    const c = this.#containerOf(g.where);
    try {
      this.addon.groupUnsetContainer(g.handle);
    } catch (e) {
      // EINVAL: the group is in no container any more. The kernel takes a group out of its
      // container itself when its last device is removed (hot-unplug: vfio_device_remove_group),
      // so the records follow; a stale entry would skip SET_IOMMU for the next group (EINVAL at
      // GET_DEVICE_FD). Anything else (EBUSY: device fds open) leaves the group where it is.
      if (errnoOf(e) !== ERR.EINVAL) throw e;
    }
    c.groups.delete(g.group);
    if (c.groups.size === 0 && g.where !== 'parking') this.host.forgot(g.where); // the kernel dropped every mapping
    g.where = null;
  }

  #saveCommand(dev: Dev): number | null {
    if (!dev.handle) return null;
    try {
      return dev.regions.configRead(PCI_COMMAND, 2);
    } catch {
      return null;
    }
  }

  #openDeviceFd(dev: Dev, command: number | null): void {
    dev.handle = this.addon.groupGetDeviceFd(dev.group.handle, dev.bdf);
    if (command !== null) {
      try {
        dev.regions.configWrite(PCI_COMMAND, 2, command & 0x0547); // I/O, memory, bus master, parity, SERR, INTx disable
      } catch {
        /* best effort */
      }
    }
  }

  /** Move a whole group to another container; device fds are closed and reopened around it. */
  #move(g: GroupRec, to: Dom | 'parking'): void {
    const saved = new Map<Dev, number | null>();
    for (const d of g.devices) {
      saved.set(d, this.#saveCommand(d));
      d.handle?.close();
      d.handle = null;
    }
    const from = g.where;
    try {
      this.#leave(g);
      this.#join(g, to);
    } catch (e) {
      // Back where it was (or parked), with its device fds, so the device stays usable.
      if (g.where === null) {
        try {
          this.#join(g, from && from !== to ? from : 'parking');
        } catch {
          try {
            this.#join(g, 'parking');
          } catch {
            /* the group stays out of any container */
          }
        }
      }
      this.#reopen(g, saved);
      throw e;
    }
    this.#reopen(g, saved);
  }

  #reopen(g: GroupRec, saved: Map<Dev, number | null>): void {
    if (!g.where) return;
    for (const d of g.devices) {
      try {
        this.#openDeviceFd(d, saved.get(d) ?? null);
      } catch {
        d.handle = null;
      }
    }
  }

  // ---- devices and domains -----------------------------------------------------------------

  openDevice(id: number, bdf: string, sys: SysPciDevice): Dev {
    const g = this.#openGroup(sys.iommuGroup as number, bdf, sys);
    try {
      if (g.where === null) this.#join(g, 'parking');
      const rec: Dev = {
        id,
        bdf,
        sys,
        domain: null,
        group: g,
        handle: null,
        maxPasidLog2: sys.maxPasidLog2,
        regions: regionsFor(this.addon, () => rec.handle, bdf),
      };
      this.#openDeviceFd(rec, null);
      g.devices.add(rec);
      return rec;
    } catch (e) {
      if (g.devices.size === 0) this.#dropGroup(g);
      throw e;
    }
  }

  #dropGroup(g: GroupRec): void {
    try {
      this.#leave(g);
    } catch {
      /* closing the group fd releases it anyway */
    }
    g.handle.close();
    this.#groups.delete(g.group);
    if (this.#parking.groups.size === 0 && this.#parking.handle) {
      this.#parking.handle.close();
      this.#parking.handle = null;
    }
  }

  closeDevice(dev: Dev): void {
    dev.handle?.close();
    dev.handle = null;
    dev.group.devices.delete(dev);
    if (dev.group.devices.size === 0) this.#dropGroup(dev.group);
  }

  allocDomain(id: number, type: 'translate' | 'passthrough'): Dom {
    const a = this.addon;
    const handle = a.open(p(this.paths, 'dev/vfio/vfio'), a.constants.O_RDWR, 'container');
    try {
      if (a.checkExtension(handle, a.constants.VFIO_TYPE1v2_IOMMU) <= 0) fail(ERR.ENOTSUP, 'VFIO_CHECK_EXTENSION', 'no VFIO_TYPE1v2_IOMMU');
    } catch (e) {
      handle.close();
      throw e;
    }
    return { id, type, devices: new Set(), areas: new AreaIndex(), identity: new Map(), geometry: null, handle, groups: new Set() };
  }

  freeDomain(dom: Dom): void {
    // No group is left in it (freeDomain refuses while devices are attached), so closing the
    // container releases it.
    for (const g of this.#groups.values()) if (g.where === dom) this.#move(g, 'parking');
    dom.handle.close();
  }

  attach(dom: Dom, dev: Dev): void {
    if (dev.group.where === dom) return; // a device of the same group already brought it here
    this.#move(dev.group, dom);
  }

  detach(dom: Dom, dev: Dev): void {
    // Other devices of the group still attached here keep the group (a group is one DMA unit).
    for (const peer of dev.group.devices) if (peer !== dev && peer.domain === dom.id) return;
    if (dev.group.where === dom) this.#move(dev.group, 'parking');
  }

  close(): void {
    for (const g of [...this.#groups.values()]) this.#dropGroup(g);
    this.#parking.handle?.close();
    this.#parking.handle = null;
  }

  inspect(): Record<string, unknown> {
    return {
      dmaEntryLimit: this.capabilities.maxAreasPerDomain,
      lastDmaAvail: this.#lastDmaAvail,
      parking: { open: this.#parking.handle !== null, groups: [...this.#parking.groups] },
      groups: [...this.#groups.values()].map((g) => ({
        group: g.group,
        where: g.where === 'parking' ? 'parking' : g.where ? `domain ${g.where.id}` : null,
        devices: [...g.devices].map((d) => d.bdf),
      })),
      domains: [...this.host.domains.values()].map((d) => ({ handle: d.id, groups: [...d.groups], kernelAreas: d.handle.areas })),
    };
  }
}

/** The VFIO type1 backend: NativeBackend over Type1Ops. */
export function createType1Backend(o: NativeBackendOptions): NativeBackend<Type1Domain, Type1Device> {
  return new NativeBackend(o, (opts, host, hot) => new Type1Ops(opts, host, hot));
}
