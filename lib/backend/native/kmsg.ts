/**
 * DMA faults from the kernel log. Linux gives user space no fault record for a non-PRI device on
 * a paging domain, but the IOMMU driver logs each one:
 *
 *   Intel VT-d (≥ 5.x): DMAR: [DMA Write NO_PASID] Request device [00:03.0] fault addr 0x102000 [fault reason 0x05] PTE Write access is not set
 *   Intel VT-d (older): DMAR: [DMA Write] Request device [00:03.0] PASID ffffffff fault addr 102000 [fault reason 05] PTE Write access is not set
 *   AMD-Vi:             vfio-pci 0000:00:03.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0002 address=0x102000 flags=0x0020]
 *                       AMD-Vi: Event logged [IO_PAGE_FAULT device=00:03.0 domain=0x0002 address=0x102000 flags=0x0020]
 *   Arm SMMUv3 (≥ 6.13):arm-smmu-v3 ...: event: F_TRANSLATION client: 0000:00:03.0 sid: 0x18 ssid: 0x0 iova: 0x102000 ipa: 0x0
 *   virtio-iommu:       virtio_iommu virtio0: page fault from EP 24 at 0x200000 []
 *                       (viommu_fault_handler: "%s fault from EP %u at %#llx [%s%s%s]", reason
 *                       "page" = VIRTIO_IOMMU_FAULT_R_MAPPING, "domain" = R_DOMAIN, else "unknown";
 *                       R/W/X flags only when the device reports them (QEMU 7.2 reports none, so
 *                       the direction is unknown); "%s fault from EP %u" without an address.
 *                       EP is the endpoint ID, on PCI the requester ID: (segment << 16) | (bus << 8) | devfn.)
 *
 * Intel and virtio lines are parsed fully; AMD and SMMU lines are recognised (device, address,
 * direction where printed). /dev/kmsg is read non-blocking from its end on a short, unref'd poll timer while
 * someone listens.
 */
import type { NativeAddon, NativeHandle } from './addon-types.js';
import { SmmuEventAssembler } from './kmsg-smmu.js';

export interface ParsedFault {
  /** 'bb:dd.f' as the log prints it (no PCI domain), or a full BDF when the log has one. */
  readonly device: string;
  readonly iova: bigint;
  readonly write: boolean | null;
  readonly reasonCode?: number;
  readonly reason: string;
  readonly pasid?: number;
  readonly vendor: 'intel' | 'amd' | 'smmu' | 'virtio';
  /** What the log itself says about the kind, when it says anything. */
  readonly kindHint: 'translation' | 'permission' | 'other' | null;
  readonly raw: string;
}

/** The message part of a /dev/kmsg record ("prio,seq,usec,flags;message\n KEY=value..."). */
export function kmsgMessage(record: string): string {
  const semi = record.indexOf(';');
  const body = semi >= 0 && /^\d+,\d+,\d+/.test(record) ? record.slice(semi + 1) : record;
  const nl = body.indexOf('\n');
  return (nl >= 0 ? body.slice(0, nl) : body).trim();
}

const INTEL_NEW =
  /DMAR: \[(DMA Read|DMA Write|INTR-REMAP)(?: (NO_PASID|PASID 0x[0-9a-f]+|PASID [0-9a-f]+))?\] Request device \[([0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\](?: PASID ([0-9a-f]+))? fault (?:addr|index) (?:0x)?([0-9a-f]+) \[fault reason (?:0x)?([0-9a-f]+)\] ?(.*)$/i;
const AMD = /AMD-Vi: Event logged \[IO_PAGE_FAULT(?: device=([0-9a-f]{2}:[0-9a-f]{2}\.[0-7]))?[^\]]*? address=0x([0-9a-f]+) flags=0x([0-9a-f]+)\]/i;
const AMD_PREFIX = /([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]): AMD-Vi:/i;
const VIRTIO = /\bvirtio_iommu \S+: (page|domain|unknown) fault from EP (\d+)(?: at (?:0x)?([0-9a-f]+) \[(R?)(W?)(X?)\])?\s*$/i;
/** virtio-iommu fault reasons (virtio spec 5.13.6.9, VIRTIO_IOMMU_FAULT_R_*) by the word Linux prints. */
export const VIRTIO_FAULT_REASONS: Readonly<Record<string, number>> = { unknown: 0, domain: 1, page: 2 };

/** The PCI address of a virtio-iommu endpoint ID (the requester ID, with the PCI segment above bit 16). */
export function endpointBdf(ep: number): string {
  const h = (v: number, w: number) => v.toString(16).padStart(w, '0');
  return `${h(Math.floor(ep / 0x10000), 4)}:${h((ep >> 8) & 0xff, 2)}:${h((ep >> 3) & 0x1f, 2)}.${ep & 7}`;
}

const SMMU = /event: (F_\w+) client: ([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]).*?iova: 0x([0-9a-f]+)/i;

/** VT-d legacy fault reasons (Intel VT-d spec, table "Non-Recoverable Fault Reasons"). */
function intelKind(code: number): 'translation' | 'permission' | 'other' {
  // 0x05/0x06: the PTE lacks write/read. A non-present second-level PTE (R=W=0) reports the same
  // codes, so the caller refines it with its own mapping table.
  if (code === 0x05 || code === 0x06) return 'permission';
  if (code === 0x01 || code === 0x02 || code === 0x03 || code === 0x04 || code === 0x07) return 'translation';
  return 'other';
}

export function parseFaultLine(line: string): ParsedFault | null {
  const msg = kmsgMessage(line);
  let m = INTEL_NEW.exec(msg);
  if (m) {
    const kind = m[1].toUpperCase();
    if (kind === 'INTR-REMAP') return null; // interrupt remapping, not DMA
    const code = Number.parseInt(m[6], 16);
    let pasid: number | undefined;
    const tag = m[2] ?? '';
    const pm = /^PASID (?:0x)?([0-9a-f]+)$/i.exec(tag);
    if (pm) pasid = Number.parseInt(pm[1], 16);
    else if (m[4] && m[4].toLowerCase() !== 'ffffffff') pasid = Number.parseInt(m[4], 16);
    return {
      device: m[3].toLowerCase(),
      iova: BigInt(`0x${m[5]}`),
      write: kind === 'DMA WRITE',
      reasonCode: code,
      reason: m[7].trim() || `fault reason ${code}`,
      ...(pasid !== undefined ? { pasid } : {}),
      vendor: 'intel',
      kindHint: intelKind(code),
      raw: msg,
    };
  }
  m = AMD.exec(msg);
  if (m) {
    const dev = m[1] ?? AMD_PREFIX.exec(msg)?.[1];
    if (!dev) return null;
    const flags = Number.parseInt(m[3], 16);
    return {
      device: dev.toLowerCase(),
      iova: BigInt(`0x${m[2]}`),
      write: (flags & 0x20) !== 0,
      reason: 'IO_PAGE_FAULT',
      vendor: 'amd',
      // flags bit 0x10 (PR): the page was present → a permission problem
      kindHint: (flags & 0x10) !== 0 ? 'permission' : 'translation',
      raw: msg,
    };
  }
  m = VIRTIO.exec(msg);
  if (m) {
    const word = m[1].toLowerCase();
    const ep = Number(m[2]);
    if (!Number.isSafeInteger(ep) || ep > 0xffffffff) return null;
    // with no address, the fault is about the endpoint (not attached), not an IOVA
    if (m[3] === undefined && word === 'page') return null;
    const read = m[4] !== undefined && m[4] !== '';
    const write = m[5] !== undefined && m[5] !== '';
    return {
      device: endpointBdf(ep),
      iova: m[3] !== undefined ? BigInt(`0x${m[3]}`) : 0n,
      write: write ? true : read ? false : null,
      reasonCode: VIRTIO_FAULT_REASONS[word],
      reason: word === 'page' ? (read || write ? 'page fault (access not permitted)' : 'page fault (no mapping)') : word === 'domain' ? 'domain fault (endpoint not attached)' : 'unknown fault',
      vendor: 'virtio',
      // QEMU sets R/W only when a mapping exists but lacks the permission; none for no mapping
      kindHint: word === 'unknown' ? 'other' : read || write ? 'permission' : 'translation',
      raw: msg,
    };
  }
  m = SMMU.exec(msg);
  if (m) {
    const ev = m[1].toUpperCase();
    return {
      device: m[2].toLowerCase(),
      iova: BigInt(`0x${m[3]}`),
      write: /\bwrite\b/i.test(msg) ? true : /\bread\b/i.test(msg) ? false : null,
      reason: ev,
      vendor: 'smmu',
      kindHint: ev === 'F_TRANSLATION' ? 'translation' : ev === 'F_PERMISSION' ? 'permission' : 'other',
      raw: msg,
    };
  }
  return null;
}

/** Does a parsed fault's device match this full BDF ('0000:00:03.0')? */
export function faultMatchesBdf(f: ParsedFault, bdf: string): boolean {
  const b = bdf.toLowerCase();
  return f.device.length > 7 ? f.device === b : b.endsWith(`:${f.device}`) && b.startsWith('0000:');
}

/** Polls /dev/kmsg while it has subscribers. */
export class KmsgReader {
  #handle: NativeHandle | null = null;
  #timer: NodeJS.Timeout | null = null;
  #listeners = new Set<(f: ParsedFault) => void>();
  #closed = false;
  #smmu = new SmmuEventAssembler(); // SMMUv3 ≤ 6.13: a fault is a five-record dump (kmsg-smmu.ts)

  constructor(
    private readonly addon: NativeAddon,
    private readonly intervalMs = 25,
  ) {}

  /** Open now (at the log's end) so faults from this moment on are seen. Throws when unreadable. */
  start(): void {
    if (this.#handle || this.#closed) return;
    this.#handle = this.addon.kmsgOpen();
    this.#timer = setInterval(() => this.poll(), this.intervalMs);
    this.#timer.unref();
  }

  subscribe(fn: (f: ParsedFault) => void): () => void {
    this.#listeners.add(fn);
    this.start();
    return () => {
      this.#listeners.delete(fn);
      if (this.#listeners.size === 0) this.stop();
    };
  }

  /** Read what is pending now and dispatch it. */
  poll(): void {
    const h = this.#handle;
    if (!h) return;
    for (let round = 0; round < 16; round++) {
      let recs: string[];
      try {
        recs = this.addon.kmsgRead(h, 256);
      } catch {
        return;
      }
      for (const r of recs) {
        const f = parseFaultLine(r) ?? this.#smmu.feed(kmsgMessage(r));
        if (f) for (const l of [...this.#listeners]) l(f);
      }
      if (recs.length < 256) return;
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#handle) {
      try {
        this.#handle.close();
      } catch {
        /* ignore */
      }
    }
    this.#handle = null;
  }

  close(): void {
    this.stop();
    this.#listeners.clear();
    this.#closed = true;
  }
}

/**
 * Intel VT-d: dmar_fault() prints under a static ratelimit (DEFAULT_RATELIMIT_BURST 10 per
 * DEFAULT_RATELIMIT_INTERVAL 5 s) and spends three tokens per fault (the "handling fault status"
 * line, the record, the loop's exit check), so only 3 faults per 5 s reach the log; the rest are
 * dropped by the kernel ("callbacks suppressed"). Measured in `dma-iommu vm` on 6.12.
 */
export const KMSG_FAULT_RATE_LIMIT = { faults: 3, intervalMs: 5000 } as const;
