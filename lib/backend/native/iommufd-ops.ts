/**
 * The iommufd kernel operations: /dev/iommu + VFIO device cdevs (Linux ≥ 6.6 with VFIO_DEVICE_CDEV).
 *
 *  - openDevice: BDF → /sys/bus/pci/devices/BDF/vfio-dev/vfioN → open /dev/vfio/devices/vfioN →
 *    VFIO_DEVICE_BIND_IOMMUFD (dev_id) → IOMMU_GET_HW_INFO (PASID width, VT-d page sizes).
 *  - a domain is an IOAS; at its first attach an explicit paging HWPT is allocated for it
 *    (IOMMU_HWPT_ALLOC) and every later device attaches to that HWPT (or, when its IOMMU cannot
 *    share it, to the IOAS, which makes the kernel build a compatible one). When its last device
 *    detaches the HWPT is destroyed, so a domain with no device has no reserved ranges (maps
 *    anywhere), as before its first attach.
 *  - map = IOMMU_IOAS_MAP(FIXED_IOVA | READABLE/WRITEABLE) per VA-contiguous piece; unmap =
 *    IOMMU_IOAS_UNMAP; geometry = IOMMU_IOAS_IOVA_RANGES (re-read after each attach/detach).
 *  - passthrough = 'emulated-identity': an IOAS into which every allocation of this backend is
 *    mapped at IOVA = its PA; map/unmap on it only record.
 */
import type { BackendCapabilities, DomainGeometry } from '../contract.js';
import type { NativeAddon, NativeHandle } from './addon-types.js';
import { AreaIndex } from './areas.js';
import { NativeBackend } from './backend.js';
import type { HotCalls } from './hot.js';
import { findHolders, heldElsewhere } from './holders.js';
import type { Piece } from './memory.js';
import { type KernelOps, OpsBase, type OpsHost, nativeCapabilities, regionsFor } from './ops.js';
import { type DeviceRec, type DomainRec, type NativeBackendOptions, addressWidthOf } from './records.js';
import { type SysPaths, type SysPciDevice, p } from './sysfs.js';
import { ERR, PAGE, errnoOf } from './util.js';

// perms (bit0 read, bit1 write) → FIXED_IOVA (1) | READABLE (4) | WRITEABLE (2)
const MAP_FLAGS = [1, 1 | 4, 1 | 2, 1 | 4 | 2] as const;

/** An iommufd domain's own fields. */
export interface IommufdDomain {
  readonly ioasId: number;
  hwptId: number | null;
  hwptTried: boolean;
}

interface HwInfo {
  readonly type: number;
  readonly maxPasidLog2: number;
  readonly capabilities: bigint;
  readonly pageSizes: bigint | null;
}

/** An iommufd device's own fields. */
export interface IommufdDevice {
  readonly handle: NativeHandle;
  readonly devId: number;
  readonly hw: HwInfo | null;
  attachedPt: number | null;
}

type Dom = DomainRec<IommufdDomain>;
type Dev = DeviceRec<IommufdDevice>;

export class IommufdOps extends OpsBase<IommufdDomain, IommufdDevice> implements KernelOps<IommufdDomain, IommufdDevice> {
  readonly kind = 'iommufd' as const;
  readonly mapSyscall = 'IOMMU_IOAS_MAP';
  readonly unmapSyscall = 'IOMMU_IOAS_UNMAP';
  readonly capabilities: BackendCapabilities;
  readonly #iommufd: NativeHandle;

  constructor(o: NativeBackendOptions, host: OpsHost<IommufdDomain, IommufdDevice>, hot: HotCalls) {
    super(o, host, hot);
    this.#iommufd = o.addon.open(p(o.paths, 'dev/iommu'), o.addon.constants.O_RDWR, 'iommufd');
    try {
      // Prove it is an iommufd context (and that IOAS objects can be made) before promising anything.
      const probeIoas = o.addon.ioasAlloc(this.#iommufd);
      o.addon.destroy(this.#iommufd, probeIoas);
    } catch (e) {
      this.#iommufd.close();
      throw e;
    }
    this.capabilities = nativeCapabilities(o, { mapBeforeAttach: 'direct', maxAreasPerDomain: null });
  }

  active(): boolean {
    return true; // an IOAS records maps with or without an attached domain
  }

  map(dom: Dom, iova: bigint, piece: Piece, perms: number): void {
    this.hot.ioasMap(this.#iommufd, dom.ioasId, iova, piece.alloc.native, piece.offset, piece.length, MAP_FLAGS[perms & 3]);
  }

  unmap(dom: Dom, iova: bigint, length: bigint): void {
    this.hot.ioasUnmap(this.#iommufd, dom.ioasId, iova, length);
  }

  geometry(dom: Dom): DomainGeometry {
    const r = this.addon.ioasIovaRanges(this.#iommufd, dom.ioasId);
    const alignment = r.alignment > PAGE ? r.alignment : PAGE;
    let pageSizes: bigint | null = null;
    for (const id of dom.devices) {
      const dev = this.host.devices.get(id);
      if (dev?.hw?.pageSizes) pageSizes = pageSizes === null ? dev.hw.pageSizes : pageSizes & dev.hw.pageSizes;
    }
    const ranges = r.ranges.map((x) => ({ start: x.start, last: x.last }));
    return { ranges, alignment, pageSizes: pageSizes ?? alignment, addressWidth: addressWidthOf(ranges) };
  }

  openDevice(id: number, bdf: string, sys: SysPciDevice): Dev {
    const a = this.addon;
    const node = p(this.paths, 'dev/vfio/devices', sys.vfioDev ?? 'missing');
    const handle = a.open(node, a.constants.O_RDWR, 'device');
    let devId: number;
    try {
      devId = a.deviceBindIommufd(handle, this.#iommufd);
    } catch (e) {
      handle.close();
      throw this.#bindError(e, bdf, sys, node);
    }
    let hw: HwInfo | null = null;
    try {
      const h = a.getHwInfo(this.#iommufd, devId);
      let pageSizes: bigint | null = null;
      if (h.type === a.constants.IOMMU_HW_INFO_TYPE_INTEL_VTD && h.data.length >= 16) {
        const cap = Buffer.from(h.data.buffer, h.data.byteOffset, h.data.byteLength).readBigUInt64LE(8);
        const sllps = Number((cap >> 34n) & 0xfn);
        pageSizes = PAGE | (sllps & 1 ? 1n << 21n : 0n) | (sllps & 2 ? 1n << 30n : 0n);
      }
      hw = { type: h.type, maxPasidLog2: h.maxPasidLog2, capabilities: h.capabilities, pageSizes };
    } catch {
      /* GET_HW_INFO is optional (ENOTTY before 6.6, EOPNOTSUPP for some IOMMUs) */
    }
    return {
      id,
      bdf,
      sys,
      domain: null,
      handle,
      devId,
      hw,
      attachedPt: null,
      maxPasidLog2: hw?.maxPasidLog2 ?? sys.maxPasidLog2,
      regions: regionsFor(a, () => handle, bdf),
    };
  }

  /**
   * A device open elsewhere: the kernel refuses a second open of a cdev device with EINVAL from
   * VFIO_DEVICE_BIND_IOMMUFD (vfio_df_open: open_count != 0 on the cdev path), the same errno as
   * a malformed bind, and with EBUSY when a process holds its group through the legacy path
   * (vfio_device_block_group). This backend's bind is never malformed (argsz, flags 0, a live
   * iommufd, a fresh fd), so an EINVAL is "busy" when the kernel confirms it: opening the group
   * node answers EBUSY while any cdev of the group is bound (group->cdev_device_open_cnt) — or
   * when a holder of the device's nodes is visible in /proc. Anything else stays the kernel's error.
   */
  #bindError(e: unknown, bdf: string, sys: SysPciDevice, node: string): unknown {
    const errno = errnoOf(e);
    const groupNode = sys.iommuGroup === null ? null : p(this.paths, 'dev/vfio', String(sys.iommuGroup));
    const nodes = groupNode ? [node, groupNode] : [node];
    if (errno !== ERR.EBUSY && errno !== ERR.EINVAL) return e;
    const holders = findHolders(nodes);
    if (errno === ERR.EBUSY) {
      // vfio_device_block_group (the group is open through the legacy path), or the DMA-owner
      // claim (another device of the group is driven by a host driver): only the first has holders.
      const why = holders.length > 0 ? 'its IOMMU group is open through the legacy VFIO group path' : 'EBUSY: its IOMMU group is open elsewhere, or another device of the group is in use by a host driver';
      return heldElsewhere(bdf, 'VFIO_DEVICE_BIND_IOMMUFD', nodes, why, holders);
    }
    if (holders.length > 0 || (groupNode !== null && this.#groupBusy(groupNode))) {
      return heldElsewhere(bdf, 'VFIO_DEVICE_BIND_IOMMUFD', nodes, 'the kernel refuses a second open of a VFIO device cdev: EINVAL from VFIO_DEVICE_BIND_IOMMUFD', holders);
    }
    return e;
  }

  /** Opening the group node answers EBUSY while a cdev of the group is bound anywhere. */
  #groupBusy(groupNode: string): boolean {
    const a = this.addon;
    try {
      a.open(groupNode, a.constants.O_RDWR, 'group').close();
      return false;
    } catch (e) {
      return errnoOf(e) === ERR.EBUSY;
    }
  }

  closeDevice(dev: Dev): void {
    dev.handle.close(); // closing the cdev detaches and unbinds
  }

  allocDomain(id: number, type: 'translate' | 'passthrough'): Dom {
    const ioasId = this.addon.ioasAlloc(this.#iommufd);
    return { id, type, devices: new Set(), areas: new AreaIndex(), identity: new Map(), geometry: null, ioasId, hwptId: null, hwptTried: false };
  }

  freeDomain(dom: Dom): void {
    if (dom.hwptId !== null) this.addon.destroy(this.#iommufd, dom.hwptId);
    dom.hwptId = null;
    this.addon.destroy(this.#iommufd, dom.ioasId); // drops every area with it
  }

  attach(dom: Dom, dev: Dev): void {
    const a = this.addon;
    if (dom.hwptId === null && !dom.hwptTried) {
      dom.hwptTried = true;
      try {
        dom.hwptId = a.hwptAlloc(this.#iommufd, dev.devId, dom.ioasId, 0);
      } catch {
        dom.hwptId = null; // older kernel / driver: attach the IOAS and let the kernel pick
      }
      // Linux 6.12's virtio-iommu sets a domain's aperture only when a device first attaches, so a
      // HWPT allocated before that leaves the IOAS no usable page (IOAS_IOVA_RANGES reads 0x0-0x0,
      // measured on --iommu virtio). Attaching the IOAS itself makes the kernel allocate and attach
      // in one step (the real aperture): drop such a HWPT and do that.
      if (dom.hwptId !== null && !a.ioasIovaRanges(this.#iommufd, dom.ioasId).ranges.some((r) => r.last - r.start + 1n >= PAGE)) {
        a.destroy(this.#iommufd, dom.hwptId);
        dom.hwptId = null;
      }
    }
    let out: number;
    if (dom.hwptId !== null) {
      try {
        out = a.deviceAttachPt(dev.handle, dom.hwptId);
      } catch (e) {
        // A device behind another IOMMU instance cannot share this HWPT: give it its own.
        if (errnoOf(e) !== ERR.EINVAL) throw e;
        out = a.deviceAttachPt(dev.handle, dom.ioasId);
      }
    } else {
      out = a.deviceAttachPt(dev.handle, dom.ioasId);
    }
    dev.attachedPt = out;
  }

  detach(dom: Dom, dev: Dev): void {
    this.addon.deviceDetachPt(dev.handle);
    dev.attachedPt = null;
    // The last device gone: destroy the domain's HWPT too. An explicitly allocated HWPT stays in
    // its IOAS (iopt_table_add_domain) with the reservation of everything past its aperture, so
    // the IOAS would keep refusing maps there (EINVAL at 0xfffffffffffff000: diff iommufd seed
    // 3069) where a domain with no device takes them (type1, the simulator, and this IOAS before
    // its first attach); the next attach allocates a new one and checks the areas (EADDRINUSE).
    if (dom.hwptId !== null && [...dom.devices].every((id) => id === dev.id)) {
      const hwpt = dom.hwptId;
      dom.hwptId = null;
      dom.hwptTried = false;
      try {
        this.addon.destroy(this.#iommufd, hwpt);
      } catch {
        dom.hwptId = hwpt; // still referenced: freeDomain destroys it
      }
    }
  }

  close(): void {
    this.#iommufd.close();
  }

  inspect(): Record<string, unknown> {
    return {
      iommufdFd: this.#iommufd.fd,
      domains: [...this.host.domains.values()].map((x) => ({ handle: x.id, ioasId: x.ioasId, hwptId: x.hwptId })),
      devices: [...this.host.devices.values()].map((x) => ({
        bdf: x.bdf,
        devId: x.devId,
        attachedPt: x.attachedPt,
        hwInfo: x.hw ? { type: x.hw.type, maxPasidLog2: x.hw.maxPasidLog2, capabilities: `0x${x.hw.capabilities.toString(16)}` } : null,
      })),
    };
  }
}

/** The iommufd backend: NativeBackend over IommufdOps. */
export function createIommufdBackend(o: NativeBackendOptions): NativeBackend<IommufdDomain, IommufdDevice> {
  return new NativeBackend(o, (opts, host, hot) => new IommufdOps(opts, host, hot));
}
