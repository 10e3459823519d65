/**
 * The kernel-log fault source of the native backend: one KmsgReader while anyone listens, each
 * parsed fault matched to the opened devices and classified against the domain's area shadow
 * (VT-d reasons 5/6: a hit is a permission fault, a miss a translation fault).
 */
import type { BackendCapabilities, BackendFault, IommuModelKind } from '../contract.js';
import { FAULT_DETAILS, WRITE_ONLY_MAPPINGS } from '../iommu-facts.js';
import type { NativeAddon } from './addon-types.js';
import { KMSG_FAULT_RATE_LIMIT, KmsgReader, type ParsedFault, faultMatchesBdf } from './kmsg.js';
import type { DeviceRec, DomainRec } from './records.js';
import type { DetectedIommu } from './sysfs.js';

/**
 * Faults per interval that reach the log. VT-d: 3 per 5 s (KMSG_FAULT_RATE_LIMIT). virtio-iommu
 * (dev_err_ratelimited, 10 lines per 5 s): QEMU's virtio-iommu reports every 4-byte access of a
 * blocked DMA on its own (measured: a blocked 2048-byte edu write logged 0x200000, 0x200004, ...
 * 0x200024, then the limit), so one blocked DMA takes the whole budget. The events reach the
 * kernel through the virtio event queue, seconds after the DMA on a loaded TCG host, so the
 * kernel's window starts late: budget 1 blocked DMA per 8 s (with 5 s, a guest suite on a loaded
 * host lost the next DMA's first line to the previous window). AMD-Vi (per-device ratelimit): 10
 * messages per 5 s, one per fault. SMMUv3 (one token per event, 10 per 5 s): QEMU's SMMUv3 also
 * raises one F_TRANSLATION event per 4-byte access (measured on the arm64 guest: a blocked
 * 2048-byte edu write dumped events for 0x200000 ... 0x200024, then "arm_smmu_evtq_thread: 502
 * callbacks suppressed"), so again 1 blocked DMA per 5 s.
 */
const RATE_LIMITS: Readonly<Record<IommuModelKind, { faults: number; intervalMs: number }>> = {
  vtd: KMSG_FAULT_RATE_LIMIT,
  virtio: { faults: 1, intervalMs: 8000 },
  amd: { faults: 10, intervalMs: 5000 },
  smmuv3: { faults: 1, intervalMs: 5000 },
  unknown: KMSG_FAULT_RATE_LIMIT,
};

/**
 * The fault-related capabilities of a native backend on `iommu`, with the kernel log readable or
 * not. QEMU 7.2's amd-iommu blocks a DMA to an unmapped IOVA without logging an event (its page
 * walk returns on a zero PTE before any fault is raised; verified in `dma-iommu vm --iommu amd`), so
 * on QEMU's AMD-Vi no fault record reaches the log: faultSource 'none'.
 */
export function faultCapabilities(iommu: DetectedIommu, kmsg: boolean): Pick<BackendCapabilities, 'iommu' | 'faultSource' | 'faultRateLimit' | 'faultDetails' | 'writeOnlyMappings'> {
  const silent = iommu.model === 'amd' && iommu.emulated;
  const writeOnlyMappings = WRITE_ONLY_MAPPINGS[iommu.model];
  if (!kmsg || silent) return { iommu: iommu.model, faultSource: 'none', faultRateLimit: null, faultDetails: null, writeOnlyMappings };
  return { iommu: iommu.model, faultSource: 'kmsg', faultRateLimit: RATE_LIMITS[iommu.model], faultDetails: FAULT_DETAILS[iommu.model], writeOnlyMappings };
}

export class KmsgFaults {
  readonly #addon: NativeAddon;
  readonly #enabled: boolean;
  readonly #devices: ReadonlyMap<number, DeviceRec>;
  readonly #domains: ReadonlyMap<number, DomainRec>;
  #kmsg: KmsgReader | null = null;
  #unsub: (() => void) | null = null;
  readonly #listeners = new Set<(f: BackendFault) => void>();

  constructor(addon: NativeAddon, enabled: boolean, devices: ReadonlyMap<number, DeviceRec>, domains: ReadonlyMap<number, DomainRec>) {
    this.#addon = addon;
    this.#enabled = enabled;
    this.#devices = devices;
    this.#domains = domains;
  }

  /** Add a listener (starting the reader on the first); returns its unsubscribe. */
  subscribe(listener: (fault: BackendFault) => void): () => void {
    this.#listeners.add(listener);
    if (this.#enabled && !this.#kmsg) {
      this.#kmsg = new KmsgReader(this.#addon);
      try {
        this.#unsub = this.#kmsg.subscribe((f) => this.#dispatch(f));
      } catch {
        this.#kmsg = null; // unreadable after all: no faults
      }
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.stop();
    };
  }

  /** Read the kernel log now. */
  poll(): void {
    this.#kmsg?.poll();
  }

  /** Stop reading and drop every listener. */
  close(): void {
    this.stop();
    this.#listeners.clear();
  }

  stop(): void {
    this.#unsub?.();
    this.#unsub = null;
    this.#kmsg?.close();
    this.#kmsg = null;
  }

  #dispatch(f: ParsedFault): void {
    for (const dev of this.#devices.values()) {
      if (!faultMatchesBdf(f, dev.bdf)) continue;
      let kind: BackendFault['kind'] = f.kindHint ?? 'other';
      const dom = dev.domain !== null ? this.#domains.get(dev.domain) : undefined;
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
        ...(f.write === null ? { directionKnown: false } : {}),
        ...(f.pasid !== undefined ? { pasid: f.pasid } : {}),
        kind,
        ...(f.reasonCode !== undefined ? { reasonCode: f.reasonCode } : {}),
        reason: f.reason,
        source: 'kmsg',
        raw: f.raw,
        timestamp: Date.now(),
      };
      for (const l of [...this.#listeners]) {
        try {
          l(fault);
        } catch {
          /* a listener's error is its own */
        }
      }
    }
  }
}
