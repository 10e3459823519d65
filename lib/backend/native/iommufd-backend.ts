/**
 * The iommufd backend: /dev/iommu + VFIO device cdevs (Linux ≥ 6.6 with VFIO_DEVICE_CDEV).
 *
 *  - openDevice: BDF → /sys/bus/pci/devices/BDF/vfio-dev/vfioN → open /dev/vfio/devices/vfioN →
 *    VFIO_DEVICE_BIND_IOMMUFD (dev_id) → IOMMU_GET_HW_INFO (PASID width, VT-d page sizes).
 *  - a domain is an IOAS; at its first attach an explicit paging HWPT is allocated for it
 *    (IOMMU_HWPT_ALLOC) and every later device attaches to that HWPT (or, when its IOMMU cannot
 *    share it, to the IOAS, which makes the kernel build a compatible one).
 *  - map = IOMMU_IOAS_MAP(FIXED_IOVA | READABLE/WRITEABLE) per VA-contiguous piece; unmap =
 *    IOMMU_IOAS_UNMAP; geometry = IOMMU_IOAS_IOVA_RANGES (re-read after each attach/detach).
 *  - passthrough = 'emulated-identity': an IOAS into which every allocation of this backend is
 *    mapped at IOVA = its PA; map/unmap on it only record.
 */
import { AreaIndex } from './areas.js';
import { KMSG_FAULT_RATE_LIMIT } from './kmsg.js';
import type { BackendCapabilities, DomainGeometry } from '../contract.js';
import type { NativeHandle } from './addon-types.js';
import { type DeviceRec, type DomainRec, NativeBackendBase, type NativeBackendOptions, addressWidthOf } from './base.js';
import type { Piece } from './memory.js';
import { type SysPciDevice, p } from './sysfs.js';
import { ERR, PAGE, errnoOf } from './util.js';

// perms (bit0 read, bit1 write) → FIXED_IOVA (1) | READABLE (4) | WRITEABLE (2)
const MAP_FLAGS = [1, 1 | 4, 1 | 2, 1 | 4 | 2] as const;

interface IommufdDomain extends DomainRec {
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

interface IommufdDevice extends DeviceRec {
  readonly handle: NativeHandle;
  readonly devId: number;
  readonly hw: HwInfo | null;
  attachedPt: number | null;
}

export class IommufdBackend extends NativeBackendBase {
  readonly kind = 'iommufd' as const;
  readonly capabilities: BackendCapabilities;
  protected readonly via = 'iommufd' as const;
  protected readonly mapSyscall = 'IOMMU_IOAS_MAP';
  protected readonly unmapSyscall = 'IOMMU_IOAS_UNMAP';
  readonly #iommufd: NativeHandle;

  constructor(o: NativeBackendOptions) {
    super(o);
    this.#iommufd = o.addon.open(p(o.paths, 'dev/iommu'), o.addon.constants.O_RDWR, 'iommufd');
    try {
      // Prove it is an iommufd context (and that IOAS objects can be made) before promising anything.
      const probeIoas = o.addon.ioasAlloc(this.#iommufd);
      o.addon.destroy(this.#iommufd, probeIoas);
    } catch (e) {
      this.#iommufd.close();
      throw e;
    }
    this.capabilities = {
      domainTypes: (1 << 0) | (1 << 1),
      passThrough: 'emulated-identity',
      faultSource: o.kmsg ? 'kmsg' : 'none',
      faultRateLimit: o.kmsg ? KMSG_FAULT_RATE_LIMIT : null,
      mapBeforeAttach: 'direct',
      maxAreasPerDomain: null,
      pasid: false,
      unmanagedDomains: false,
      arch: process.arch === 'arm64' ? 'arm64' : 'x86_64',
    };
  }

  #dom(d: DomainRec): IommufdDomain {
    return d as IommufdDomain;
  }

  protected kernelActive(): boolean {
    return true; // an IOAS records maps with or without an attached domain
  }

  protected kernelMap(dom: DomainRec, iova: bigint, piece: Piece, perms: number): void {
    this.hot.ioasMap(this.#iommufd, this.#dom(dom).ioasId, iova, piece.alloc.native, piece.offset, piece.length, MAP_FLAGS[perms & 3]);
  }

  protected kernelUnmap(dom: DomainRec, iova: bigint, length: bigint): void {
    this.hot.ioasUnmap(this.#iommufd, this.#dom(dom).ioasId, iova, length);
  }

  protected kernelGeometry(dom: DomainRec): DomainGeometry {
    const r = this.addon.ioasIovaRanges(this.#iommufd, this.#dom(dom).ioasId);
    const alignment = r.alignment > PAGE ? r.alignment : PAGE;
    let pageSizes: bigint | null = null;
    for (const id of dom.devices) {
      const dev = this.devices.get(id) as IommufdDevice | undefined;
      if (dev?.hw?.pageSizes) pageSizes = pageSizes === null ? dev.hw.pageSizes : pageSizes & dev.hw.pageSizes;
    }
    const ranges = r.ranges.map((x) => ({ start: x.start, last: x.last }));
    return { ranges, alignment, pageSizes: pageSizes ?? alignment, addressWidth: addressWidthOf(ranges) };
  }

  protected kernelOpenDevice(id: number, bdf: string, sys: SysPciDevice): DeviceRec {
    const a = this.addon;
    const node = p(this.paths, 'dev/vfio/devices', sys.vfioDev ?? 'missing');
    const handle = a.open(node, a.constants.O_RDWR, 'device');
    let devId: number;
    try {
      devId = a.deviceBindIommufd(handle, this.#iommufd);
    } catch (e) {
      handle.close();
      throw e;
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
    const rec: IommufdDevice = {
      id,
      bdf,
      sys,
      domain: null,
      handle,
      devId,
      hw,
      attachedPt: null,
      maxPasidLog2: hw?.maxPasidLog2 ?? sys.maxPasidLog2,
      regions: this.regionsFor(() => handle, bdf),
    };
    return rec;
  }

  protected kernelCloseDevice(dev: DeviceRec): void {
    (dev as IommufdDevice).handle.close(); // closing the cdev detaches and unbinds
  }

  protected kernelAllocDomain(id: number, type: 'translate' | 'passthrough'): DomainRec {
    const ioasId = this.addon.ioasAlloc(this.#iommufd);
    const dom: IommufdDomain = { id, type, devices: new Set(), areas: new AreaIndex(), identity: new Map(), geometry: null, ioasId, hwptId: null, hwptTried: false };
    return dom;
  }

  protected kernelFreeDomain(d: DomainRec): void {
    const dom = this.#dom(d);
    if (dom.hwptId !== null) this.addon.destroy(this.#iommufd, dom.hwptId as number);
    dom.hwptId = null;
    this.addon.destroy(this.#iommufd, dom.ioasId); // drops every area with it
  }

  protected kernelAttach(d: DomainRec, dv: DeviceRec): void {
    const dom = this.#dom(d);
    const dev = dv as IommufdDevice;
    if (dom.hwptId === null && !dom.hwptTried) {
      dom.hwptTried = true;
      try {
        dom.hwptId = this.addon.hwptAlloc(this.#iommufd, dev.devId, dom.ioasId, 0);
      } catch {
        dom.hwptId = null; // older kernel / driver: attach the IOAS and let the kernel pick
      }
    }
    let out: number;
    if (dom.hwptId !== null) {
      try {
        out = this.addon.deviceAttachPt(dev.handle, dom.hwptId as number);
      } catch (e) {
        // A device behind another IOMMU instance cannot share this HWPT: give it its own.
        if (errnoOf(e) !== ERR.EINVAL) throw e;
        out = this.addon.deviceAttachPt(dev.handle, dom.ioasId);
      }
    } else {
      out = this.addon.deviceAttachPt(dev.handle, dom.ioasId);
    }
    dev.attachedPt = out;
  }

  protected kernelDetach(_dom: DomainRec, dv: DeviceRec): void {
    const dev = dv as IommufdDevice;
    this.addon.deviceDetachPt(dev.handle);
    dev.attachedPt = null;
  }

  protected kernelClose(): void {
    this.#iommufd.close();
  }

  protected kernelInspect(): Record<string, unknown> {
    return {
      iommufdFd: this.#iommufd.fd,
      domains: [...this.domains.values()].map((d) => {
        const x = this.#dom(d);
        return { handle: x.id, ioasId: x.ioasId, hwptId: x.hwptId };
      }),
      devices: [...this.devices.values()].map((d) => {
        const x = d as IommufdDevice;
        return { bdf: x.bdf, devId: x.devId, attachedPt: x.attachedPt, hwInfo: x.hw ? { type: x.hw.type, maxPasidLog2: x.hw.maxPasidLog2, capabilities: `0x${x.hw.capabilities.toString(16)}` } : null };
      }),
    };
  }
}
