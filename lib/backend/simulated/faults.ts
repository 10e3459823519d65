/**
 * DMA fault records: reason codes, the kernel-log text they would produce, and the fault log.
 *
 * x86 (VT-d, legacy translation mode as QEMU 7.2's intel-iommu runs by default), codes and texts
 * from the VT-d spec as Linux prints them (drivers/iommu/intel/dmar.c):
 *   0x02 "Present bit in context entry is clear"  – device not attached to any domain (blocked)
 *   0x04 "Access beyond MGAW"                      – IOVA above the domain's address width
 *   0x05 "PTE Write access is not set"             – write to a page that is not mapped, or mapped
 *                                                   without write permission
 *   0x06 "PTE Read access is not set"              – the same for reads
 *   0x45 "SM: PASID Enable field in Context Entry is clear" – PASID-tagged DMA from a device
 *                                                   without the PASID capability
 *   0x46 "SM: PASID is larger than the max in Context Entry" – PASID beyond the device's width
 *   0x59 "SM: Present bit in PASID Table Entry is clear" – PASID not attached to any domain
 * VT-d second-level tables have no separate present bit (R=W=0 is "not present"), so real hardware
 * reports an unmapped page with 0x05/0x06, exactly as the project's VM logged it
 * (`fault reason 0x05 PTE Write access is not set` for an edu write to an unmapped IOVA). The
 * simulator does the same and tells the two cases apart with `kind`: 'translation' (no PTE) or
 * 'permission' (PTE present, access bit missing).
 *
 * arm64 (SMMUv3), event numbers of the SMMUv3 spec as Linux's arm-smmu-v3 driver names them:
 *   0x04 C_BAD_STE (stream not attached), 0x06 F_STREAM_DISABLED (PASID/substream not attached or
 *   not supported), 0x0a C_BAD_CD (Unmanaged domain not configured yet), 0x0b F_WALK_EABT (table
 *   walk left RAM), 0x10 F_TRANSLATION, 0x11 F_ADDR_SIZE, 0x12 F_ACCESS (access flag clear),
 *   0x13 F_PERMISSION.
 *
 * A DMA whose pass-through / no-IOMMU target is not RAM is a bus error, not an IOMMU fault: kind
 * 'other', no reason code.
 *
 * The address a record carries is what the modelled IOMMU records: VT-d's fault recording
 * register holds the page (FRCD bits 63:12, QEMU's VTD_FRCD_FI(addr) = addr & ~0xfff; Linux prints
 * it as "fault addr"), so an x86 record's `iova` is the faulting page's address; SMMUv3's event
 * record holds the full input address (InputAddr), so an arm64 record's `iova` is the exact byte.
 * A bus error (no IOMMU involved) keeps the exact byte on both.
 */
import type { BackendFault } from '../contract.js';
import { hex } from './util.js';

export const VTD = {
  CONTEXT_NOT_PRESENT: 0x02,
  BEYOND_MGAW: 0x04,
  PTE_WRITE: 0x05,
  PTE_READ: 0x06,
  SM_PASID_DISABLED: 0x45,
  SM_PASID_TOO_LARGE: 0x46,
  SM_PASID_ENTRY_NOT_PRESENT: 0x59,
} as const;

export const VTD_REASONS: Readonly<Record<number, string>> = {
  0x00: 'Software',
  0x01: 'Present bit in root entry is clear',
  0x02: 'Present bit in context entry is clear',
  0x03: 'Invalid context entry',
  0x04: 'Access beyond MGAW',
  0x05: 'PTE Write access is not set',
  0x06: 'PTE Read access is not set',
  0x07: 'Next page table ptr is invalid',
  0x45: 'SM: PASID Enable field in Context Entry is clear',
  0x46: 'SM: PASID is larger than the max in Context Entry',
  0x59: 'SM: Present bit in PASID Table Entry is clear',
};

export const SMMU = {
  C_BAD_STE: 0x04,
  F_STREAM_DISABLED: 0x06,
  C_BAD_CD: 0x0a,
  F_WALK_EABT: 0x0b,
  F_TRANSLATION: 0x10,
  F_ADDR_SIZE: 0x11,
  F_ACCESS: 0x12,
  F_PERMISSION: 0x13,
} as const;

export const SMMU_EVENTS: Readonly<Record<number, readonly [string, string]>> = {
  0x04: ['C_BAD_STE', 'Stream table entry not valid (stream not attached)'],
  0x06: ['F_STREAM_DISABLED', 'Substream not enabled for this stream'],
  0x0a: ['C_BAD_CD', 'Context descriptor not valid (domain not configured)'],
  0x0b: ['F_WALK_EABT', 'External abort during table walk'],
  0x10: ['F_TRANSLATION', 'Translation fault'],
  0x11: ['F_ADDR_SIZE', 'Address size fault'],
  0x12: ['F_ACCESS', 'Access flag fault'],
  0x13: ['F_PERMISSION', 'Permission fault'],
};

/** A fault as the simulator records it: the contract's record plus where it happened. */
export interface SimulatedFault extends BackendFault {
  /** Sequence number since the backend was created (survives clearFaults). */
  readonly seq: number;
  /** Domain handle the request was translated through, or null (blocked). */
  readonly domain: number | null;
  readonly requesterId: number;
}

export interface FaultInput {
  readonly bdf: string;
  readonly requesterId: number;
  readonly streamId: number;
  readonly iova: bigint;
  readonly write: boolean;
  readonly pasid: number | undefined;
  readonly kind: BackendFault['kind'];
  readonly code: number | undefined;
  readonly domain: number | null;
  /** Free text used for kind 'other' without a code. */
  readonly detail?: string;
}

/** The fault-record style of a simulated IOMMU: the arch's (VT-d / SMMUv3), or a profile's (machine.ts SIM_IOMMU_PROFILES). */
export type FaultStyle = 'x86_64' | 'arm64' | 'virtio' | 'amd';

/** virtio-iommu fault reasons (virtio spec VIRTIO_IOMMU_FAULT_R_*). */
export const VIRTIO_FAULT = { UNKNOWN: 0, DOMAIN: 1, MAPPING: 2 } as const;

/**
 * The engine's VT-d-coded input as virtio-iommu reports it (QEMU 7.2 virtio_iommu_translate):
 * no domain → R_DOMAIN; no mapping (or beyond the range) → R_MAPPING with no R/W flag (direction
 * unknown); a mapping without the permission → R_MAPPING with the R or W flag.
 */
function virtioCode(f: FaultInput): { code: number; directionKnown: boolean } {
  if (f.code === VTD.CONTEXT_NOT_PRESENT || f.code === VTD.SM_PASID_ENTRY_NOT_PRESENT) return { code: VIRTIO_FAULT.DOMAIN, directionKnown: false };
  if (f.kind === 'permission') return { code: VIRTIO_FAULT.MAPPING, directionKnown: true };
  if (f.kind === 'translation') return { code: VIRTIO_FAULT.MAPPING, directionKnown: false };
  return { code: VIRTIO_FAULT.UNKNOWN, directionKnown: false };
}

/** Builds records in the style of the platform's kernel log. */
export function describeFault(arch: FaultStyle, f: FaultInput): { reason: string; raw: string } {
  const dir = f.write ? 'DMA Write' : 'DMA Read';
  if (f.code === undefined) {
    const reason = f.detail ?? 'DMA failed';
    return { reason, raw: `sim: [${dir}] device [${f.bdf}] addr ${hex(f.iova)}: ${reason}` };
  }
  if (arch === 'virtio') {
    const v = virtioCode(f);
    const word = v.code === VIRTIO_FAULT.DOMAIN ? 'domain' : v.code === VIRTIO_FAULT.MAPPING ? 'page' : 'unknown';
    const reason = word === 'page' ? (v.directionKnown ? 'page fault (access not permitted)' : 'page fault (no mapping)') : word === 'domain' ? 'domain fault (endpoint not attached)' : 'unknown fault';
    const flags = v.directionKnown ? (f.write ? 'W' : 'R') : '';
    return { reason, raw: `virtio_iommu virtio0: ${word} fault from EP ${f.requesterId} at ${hex(f.iova)} [${flags}]` };
  }
  if (arch === 'amd') {
    // never reported (QEMU's amd-iommu logs no event); the log keeps it for inspection
    const reason = 'IO_PAGE_FAULT';
    return { reason, raw: `AMD-Vi: Event logged [IO_PAGE_FAULT device=${f.bdf.slice(5)} domain=0x0000 address=${hex(f.iova)} flags=0x${f.write ? '0020' : '0000'}]` };
  }
  if (arch === 'arm64') {
    const [name, text] = SMMU_EVENTS[f.code] ?? [`0x${f.code.toString(16)}`, 'Unknown'];
    const reason = `${name}: ${f.detail ?? text}`;
    const raw =
      `arm-smmu-v3 arm-smmu-v3.0.auto: event: ${name} client: ${f.bdf} sid: ${hex(f.streamId)} ` +
      `ssid: ${hex(f.pasid ?? 0)} iova: ${hex(f.iova)} ipa: 0x0 (unpriv data ${f.write ? 'write' : 'read'})`;
    return { reason, raw };
  }
  const reason = VTD_REASONS[f.code] ?? 'Unknown';
  const rid = f.requesterId;
  const dev = `${pad2(rid >> 8)}:${pad2((rid >> 3) & 0x1f)}.${rid & 7}`;
  const tag = f.pasid === undefined ? `${dir} NO_PASID` : `${dir} PASID ${hex(f.pasid)}`;
  // VT-d fault records hold the page address, as the kernel prints it.
  const page = recordedAddress(arch, f);
  const raw = `DMAR: [${tag}] Request device [${dev}] fault addr ${hex(page)} [fault reason 0x${pad2(f.code)}] ${reason}`;
  return { reason, raw };
}

/** The address the modelled IOMMU records for `f`: VT-d the page; SMMUv3, virtio-iommu and AMD-Vi the byte; a bus error the byte. */
export function recordedAddress(arch: FaultStyle, f: FaultInput): bigint {
  return arch === 'x86_64' && f.code !== undefined ? f.iova & ~0xfffn : f.iova;
}

function pad2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** Bounded fault log (like the hardware's fault recording registers, but deeper). */
export class FaultLog {
  readonly capacity: number;
  /** The record style of a profile that overrides the arch's ('virtio', 'amd'), or null. */
  readonly style: 'virtio' | 'amd' | null;
  /** False when the modelled IOMMU reports no fault (QEMU's amd-iommu): records are logged, not delivered. */
  readonly reported: boolean;
  #entries: SimulatedFault[] = [];
  #seq = 0;
  dropped = 0;

  constructor(capacity: number, style: 'virtio' | 'amd' | null = null) {
    this.capacity = capacity;
    this.style = style;
    this.reported = style !== 'amd';
  }

  add(archStyle: 'x86_64' | 'arm64', f: FaultInput): SimulatedFault {
    const arch: FaultStyle = this.style ?? archStyle;
    const { reason, raw } = describeFault(arch, f);
    const v = arch === 'virtio' && f.code !== undefined ? virtioCode(f) : null;
    const code = v ? v.code : arch === 'amd' ? undefined : f.code;
    const rec: SimulatedFault = {
      bdf: f.bdf,
      iova: recordedAddress(arch, f),
      write: v && !v.directionKnown ? false : f.write,
      ...(v && !v.directionKnown ? { directionKnown: false } : {}),
      ...(f.pasid !== undefined ? { pasid: f.pasid } : {}),
      kind: f.kind,
      ...(code !== undefined ? { reasonCode: code } : {}),
      reason,
      source: 'simulator',
      raw,
      timestamp: Date.now(),
      seq: ++this.#seq,
      domain: f.domain,
      requesterId: f.requesterId,
    };
    this.#entries.push(rec);
    if (this.#entries.length > this.capacity) {
      this.#entries.shift();
      this.dropped++;
    }
    return rec;
  }

  entries(): SimulatedFault[] {
    return [...this.#entries];
  }

  get size(): number {
    return this.#entries.length;
  }

  get total(): number {
    return this.#seq;
  }

  clear(): void {
    this.#entries = [];
    this.dropped = 0;
  }
}
