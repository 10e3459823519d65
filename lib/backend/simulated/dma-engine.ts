/**
 * The simulated DMA engine: every device-initiated read or write goes through here.
 *
 * A request names the device and, optionally, a PASID. The engine picks the translation context
 * (the domain of the PASID; else the domain of the device's IOMMU group, which a device shares
 * with its group mates; else "blocked") and translates the request PAGE BY PAGE, as QEMU's memory
 * core does for a device behind an IOMMU (pci_dma_rw → address_space_rw → flatview_read/
 * write_continue → address_space_translate_iommu → vtd_iommu_translate / smmuv3_translate, QEMU
 * 7.2 softmmu/physmem.c): every page that translates with the needed permission moves; a page
 * that does not goes to QEMU's "unassigned" region, where a write is dropped and a read yields
 * zeros (unassigned_mem_read returns 0), and the walk goes on, so pages AFTER a blocked page still
 * move. The engine returns what moved (and, for a read, the bytes the device received: zeros for
 * the blocked pages) and the first fault.
 *
 * One fault record per request: the first blocked access. On VT-d, QEMU has one fault recording
 * register (DMAR_FRCD_REG_NR = 1) and vtd_report_dmar_fault collapses a new fault of a requester
 * whose record is still pending (vtd_try_collapse_fault); the guest's fault handler cannot clear
 * the record while one DMA is in progress, so one DMA yields one record. The record holds the
 * page address (the FRCD's FI field is bits 63:12, faults.ts). SMMUv3 records the full input
 * address of the access; the simulator likewise reports one event per request.
 *
 * Pass-through domains and devices that are not behind an IOMMU use the bus address as the PA;
 * a target page that is not RAM is a bus error (fault kind 'other', no reason code), the same
 * page-by-page rule.
 */
import type { SimDomain } from './domain.js';
import { type FaultInput, SMMU, VTD } from './faults.js';
import type { SimDevice } from './machine.js';
import { SPAN } from './page-table.js';
import type { PhysicalMemory } from './physical-memory.js';
import { PAGE_SIZE, TWO_POW_52 } from './util.js';

/** Largest single simulated DMA. */
export const MAX_DMA_BYTES = 1 << 30;

export interface DmaContext {
  readonly arch: 'x86_64' | 'arm64';
  /** A device read through a write-only mapping is blocked (the virtio-iommu profile); default: readable. */
  readonly writeOnlyEnforced?: boolean;
  readonly phys: PhysicalMemory;
  /** The domain translating untagged DMA of `dev` (its own, or its group's), or null. */
  groupDomain(dev: SimDevice): SimDomain | null;
}

/** What a request did: the bytes that moved, and the first fault (null when every page moved). */
export interface DmaOutcome {
  /** Bytes that reached memory (write) or came from memory (read). */
  readonly moved: number;
  /** The first blocked access of the request (the only one recorded), or null. */
  readonly fault: FaultInput | null;
}

/** A device read: the bytes the device received (zeros for the blocked pages), and the outcome. */
export interface DmaReadOutcome extends DmaOutcome {
  readonly data: Uint8Array;
}

const BLOCKED = -1;

export class DmaEngine {
  readonly #ctx: DmaContext;
  readonly #phys: PhysicalMemory;
  // segments of the current request in order: a PA, or BLOCKED (reused, no allocation per request)
  #segPa: number[] = [];
  #segLen: number[] = [];
  #segCount = 0;
  #fault: FaultInput | null = null;
  reads = 0;
  writes = 0;
  bytesRead = 0;
  bytesWritten = 0;

  constructor(ctx: DmaContext) {
    this.#ctx = ctx;
    this.#phys = ctx.phys;
  }

  /** Device reads memory (memory → device): the bytes received (zeros where blocked), what moved, the first fault. */
  read(dev: SimDevice, iova: bigint, length: number, pasid: number | undefined): DmaReadOutcome {
    this.#translate(dev, iova, length, false, pasid);
    const data = new Uint8Array(length);
    const moved = this.#copy(data, false);
    this.reads++;
    this.bytesRead += moved;
    return { data, moved, fault: this.#fault };
  }

  /** Device writes memory (device → memory): the pages that translate are written, the others dropped. */
  write(dev: SimDevice, iova: bigint, data: Uint8Array, pasid: number | undefined): DmaOutcome {
    this.#translate(dev, iova, data.length, true, pasid);
    const moved = this.#copy(data, true);
    this.writes++;
    this.bytesWritten += moved;
    return { moved, fault: this.#fault };
  }

  /** Moves `data` through the segments #translate left (blocked ones skipped): into memory when `toMemory`, else out of it. The bytes moved. */
  #copy(data: Uint8Array, toMemory: boolean): number {
    let off = 0;
    let moved = 0;
    for (let i = 0; i < this.#segCount; i++) {
      const pa = this.#segPa[i];
      const n = this.#segLen[i];
      if (pa !== BLOCKED) {
        if (toMemory) this.#phys.write(pa, data, off, n);
        else this.#phys.read(pa, data, off, n);
        moved += n;
      }
      off += n;
    }
    return moved;
  }

  #push(pa: number, len: number): void {
    const n = this.#segCount;
    if (n > 0) {
      const last = this.#segPa[n - 1];
      if (last === BLOCKED ? pa === BLOCKED : pa !== BLOCKED && last + this.#segLen[n - 1] === pa) {
        this.#segLen[n - 1] += len;
        return;
      }
    }
    this.#segPa[n] = pa;
    this.#segLen[n] = len;
    this.#segCount = n + 1;
  }

  /** A blocked stretch of the request; the first one of the request is its fault record. */
  #block(
    len: number,
    dev: SimDevice,
    iova: bigint,
    write: boolean,
    pasid: number | undefined,
    kind: FaultInput['kind'],
    code: number | undefined,
    domain: SimDomain | null,
    detail?: string,
  ): void {
    this.#push(BLOCKED, len);
    if (this.#fault !== null) return;
    this.#fault = {
      bdf: dev.bdf,
      requesterId: dev.requesterId,
      streamId: dev.streamIds[0] ?? dev.requesterId,
      iova,
      write,
      pasid,
      kind,
      code,
      domain: domain === null ? null : domain.handle,
      ...(detail !== undefined ? { detail } : {}),
    };
  }

  #translate(dev: SimDevice, iova: bigint, length: number, write: boolean, pasid: number | undefined): void {
    this.#segCount = 0;
    this.#fault = null;
    if (length === 0) return;
    const arm = this.#ctx.arch === 'arm64';
    let domain: SimDomain | null;
    if (pasid !== undefined) {
      // the context / PASID entry blocks every page of the request alike
      if (dev.maxPasidLog2 === 0) {
        return this.#block(length, dev, iova, write, pasid, 'other', arm ? SMMU.F_STREAM_DISABLED : VTD.SM_PASID_DISABLED, null);
      }
      if (pasid >= 2 ** dev.maxPasidLog2) {
        return this.#block(length, dev, iova, write, pasid, 'other', arm ? SMMU.F_STREAM_DISABLED : VTD.SM_PASID_TOO_LARGE, null);
      }
      domain = dev.pasids.get(pasid) ?? null;
      if (domain === null) {
        return this.#block(length, dev, iova, write, pasid, 'translation', arm ? SMMU.F_STREAM_DISABLED : VTD.SM_PASID_ENTRY_NOT_PRESENT, null);
      }
    } else if (dev.iommuGroup === null) {
      return this.#identity(dev, iova, length, write, pasid, null);
    } else {
      domain = this.#ctx.groupDomain(dev);
      if (domain === null) {
        return this.#block(length, dev, iova, write, pasid, 'translation', arm ? SMMU.C_BAD_STE : VTD.CONTEXT_NOT_PRESENT, null);
      }
    }
    if (domain.type === 'passthrough') return this.#identity(dev, iova, length, write, pasid, domain);
    if (domain.type === 'unmanaged') return this.#stage1(dev, iova, length, write, pasid, domain);

    const table = domain.table!;
    const aperture = domain.aperturePages;
    // A read needs R or W: the modelled Linux drivers cannot express write-only. VT-d's
    // __domain_mapping sets DMA_FL_PTE_PRESENT, which is bit 0 == DMA_PTE_READ, in every PTE it
    // writes (second-level too), and Arm's io-pgtable (stage-1 AP bits) has no write-only
    // encoding: a write-only map is device-readable on Linux (verified on both VM kernels).
    // virtio-iommu maps write-only as such, and QEMU blocks the read (the virtio profile).
    const need = write ? 2 : this.#ctx.writeOnlyEnforced ? 1 : 3;
    let page = Number(iova >> 12n);
    let off = Number(iova & 0xfffn);
    let remaining = length;
    while (remaining > 0) {
      const at = BigInt(page) * 4096n + BigInt(off);
      if (page >= aperture) {
        this.#block(Math.min(remaining, PAGE_SIZE - off), dev, at, write, pasid, 'translation', arm ? SMMU.F_ADDR_SIZE : VTD.BEYOND_MGAW, domain);
      } else {
        const pte = table.lookup(page);
        const flags = pte & 4095;
        if (pte === 0 || (flags & need) === 0) {
          const code = arm ? (pte === 0 ? SMMU.F_TRANSLATION : SMMU.F_PERMISSION) : write ? VTD.PTE_WRITE : VTD.PTE_READ;
          this.#block(Math.min(remaining, PAGE_SIZE - off), dev, at, write, pasid, pte === 0 ? 'translation' : 'permission', code, domain);
        } else {
          const span = SPAN[table.hitLevel];
          const inLeaf = (page - table.hitBase) * PAGE_SIZE + off;
          const n = Math.min(remaining, span * PAGE_SIZE - inLeaf);
          this.#push(pte - flags + inLeaf, n);
          remaining -= n;
          page = table.hitBase + span;
          off = 0;
          continue;
        }
      }
      remaining -= Math.min(remaining, PAGE_SIZE - off);
      page++;
      off = 0;
    }
  }

  #identity(dev: SimDevice, iova: bigint, length: number, write: boolean, pasid: number | undefined, domain: SimDomain | null): void {
    const pa = iova + BigInt(length) <= BigInt(TWO_POW_52) ? Number(iova) : -1;
    if (pa >= 0 && this.#phys.isRam(pa, length)) return this.#push(pa, length);
    // some page is not RAM: page by page, each non-RAM page a bus error
    let at = iova;
    let remaining = length;
    while (remaining > 0) {
      const n = Math.min(remaining, PAGE_SIZE - Number(at & 0xfffn));
      if (at + BigInt(n) <= BigInt(TWO_POW_52) && this.#phys.isRam(Number(at), n)) this.#push(Number(at), n);
      else this.#block(n, dev, at, write, pasid, 'other', undefined, domain, `no RAM at PA ${'0x' + at.toString(16)} (bus error)`);
      remaining -= n;
      at += BigInt(n);
    }
  }

  #stage1(dev: SimDevice, iova: bigint, length: number, write: boolean, pasid: number | undefined, domain: SimDomain): void {
    const s1 = domain.stage1!;
    let page = Number(iova >> 12n);
    let off = Number(iova & 0xfffn);
    let remaining = length;
    while (remaining > 0) {
      if (!s1.translate(page, write)) {
        const code = s1.faultCode === 0 ? undefined : s1.faultCode;
        const n = Math.min(remaining, PAGE_SIZE - off);
        this.#block(n, dev, BigInt(page) * 4096n + BigInt(off), write, pasid, s1.faultKind, code, domain,
          code === undefined ? 'stage-1 output address is not RAM (bus error)' : undefined);
        remaining -= n;
        page++;
        off = 0;
        continue;
      }
      const n = Math.min(remaining, s1.outSpan * PAGE_SIZE - off);
      this.#push(s1.outPfn * PAGE_SIZE + off, n);
      remaining -= n;
      page += Math.ceil((off + n) / PAGE_SIZE);
      off = 0;
    }
  }
}
