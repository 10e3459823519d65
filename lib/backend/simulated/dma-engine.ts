/**
 * The simulated DMA engine: every device-initiated read or write goes through here.
 *
 * A request names the device and, optionally, a PASID. The engine picks the translation context
 * (the domain of the PASID; else the domain of the device's IOMMU group, which a device shares
 * with its group mates; else "blocked"), translates EVERY page of the request and checks the
 * access permission of every page FIRST. Only when the whole range translates does it move bytes;
 * on a miss or a permission violation nothing moves, and one fault (for the first faulting byte,
 * with its exact IOVA) is recorded and reported.
 *
 * Pass-through domains and devices that are not behind an IOMMU use the bus address as the PA;
 * a target that is not RAM is a bus error (fault kind 'other', no reason code).
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
  readonly phys: PhysicalMemory;
  /** The domain translating untagged DMA of `dev` (its own, or its group's), or null. */
  groupDomain(dev: SimDevice): SimDomain | null;
}

export class DmaEngine {
  readonly #ctx: DmaContext;
  readonly #phys: PhysicalMemory;
  // translated segments of the current request (reused, no allocation per request)
  #segPa: number[] = [];
  #segLen: number[] = [];
  #segCount = 0;
  reads = 0;
  writes = 0;
  bytesRead = 0;
  bytesWritten = 0;

  constructor(ctx: DmaContext) {
    this.#ctx = ctx;
    this.#phys = ctx.phys;
  }

  /** Device reads memory (memory → device). Returns the bytes, or the fault that stopped it. */
  read(dev: SimDevice, iova: bigint, length: number, pasid: number | undefined): Uint8Array | FaultInput {
    const f = this.#translate(dev, iova, length, false, pasid);
    if (f !== null) return f;
    const out = new Uint8Array(length);
    let off = 0;
    for (let i = 0; i < this.#segCount; i++) {
      this.#phys.read(this.#segPa[i], out, off, this.#segLen[i]);
      off += this.#segLen[i];
    }
    this.reads++;
    this.bytesRead += length;
    return out;
  }

  /** Device writes memory (device → memory). Returns null when done, or the fault. */
  write(dev: SimDevice, iova: bigint, data: Uint8Array, pasid: number | undefined): FaultInput | null {
    const f = this.#translate(dev, iova, data.length, true, pasid);
    if (f !== null) return f;
    let off = 0;
    for (let i = 0; i < this.#segCount; i++) {
      this.#phys.write(this.#segPa[i], data, off, this.#segLen[i]);
      off += this.#segLen[i];
    }
    this.writes++;
    this.bytesWritten += data.length;
    return null;
  }

  #push(pa: number, len: number): void {
    const n = this.#segCount;
    if (n > 0 && this.#segPa[n - 1] + this.#segLen[n - 1] === pa) {
      this.#segLen[n - 1] += len;
      return;
    }
    this.#segPa[n] = pa;
    this.#segLen[n] = len;
    this.#segCount = n + 1;
  }

  #fault(
    dev: SimDevice,
    iova: bigint,
    write: boolean,
    pasid: number | undefined,
    kind: FaultInput['kind'],
    code: number | undefined,
    domain: SimDomain | null,
    detail?: string,
  ): FaultInput {
    return {
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

  #translate(dev: SimDevice, iova: bigint, length: number, write: boolean, pasid: number | undefined): FaultInput | null {
    this.#segCount = 0;
    if (length === 0) return null;
    const arm = this.#ctx.arch === 'arm64';
    let domain: SimDomain | null;
    if (pasid !== undefined) {
      if (dev.maxPasidLog2 === 0) {
        return this.#fault(dev, iova, write, pasid, 'other', arm ? SMMU.F_STREAM_DISABLED : VTD.SM_PASID_DISABLED, null);
      }
      if (pasid >= 2 ** dev.maxPasidLog2) {
        return this.#fault(dev, iova, write, pasid, 'other', arm ? SMMU.F_STREAM_DISABLED : VTD.SM_PASID_TOO_LARGE, null);
      }
      domain = dev.pasids.get(pasid) ?? null;
      if (domain === null) {
        return this.#fault(dev, iova, write, pasid, 'translation', arm ? SMMU.F_STREAM_DISABLED : VTD.SM_PASID_ENTRY_NOT_PRESENT, null);
      }
    } else if (dev.iommuGroup === null) {
      return this.#identity(dev, iova, length, write, pasid, null);
    } else {
      domain = this.#ctx.groupDomain(dev);
      if (domain === null) {
        return this.#fault(dev, iova, write, pasid, 'translation', arm ? SMMU.C_BAD_STE : VTD.CONTEXT_NOT_PRESENT, null);
      }
    }
    if (domain.type === 'passthrough') return this.#identity(dev, iova, length, write, pasid, domain);
    if (domain.type === 'unmanaged') return this.#stage1(dev, iova, length, write, pasid, domain);

    const table = domain.table!;
    const aperture = domain.aperturePages;
    const need = write ? 2 : 1;
    let page = Number(iova >> 12n);
    let off = Number(iova & 0xfffn);
    let remaining = length;
    while (remaining > 0) {
      if (page >= aperture) {
        return this.#fault(dev, BigInt(page) * 4096n + BigInt(off), write, pasid, 'translation', arm ? SMMU.F_ADDR_SIZE : VTD.BEYOND_MGAW, domain);
      }
      const pte = table.lookup(page);
      if (pte === 0) {
        const code = arm ? SMMU.F_TRANSLATION : write ? VTD.PTE_WRITE : VTD.PTE_READ;
        return this.#fault(dev, BigInt(page) * 4096n + BigInt(off), write, pasid, 'translation', code, domain);
      }
      const flags = pte & 4095;
      if ((flags & need) === 0) {
        const code = arm ? SMMU.F_PERMISSION : write ? VTD.PTE_WRITE : VTD.PTE_READ;
        return this.#fault(dev, BigInt(page) * 4096n + BigInt(off), write, pasid, 'permission', code, domain);
      }
      const span = SPAN[table.hitLevel];
      const inLeaf = (page - table.hitBase) * PAGE_SIZE + off;
      const n = Math.min(remaining, span * PAGE_SIZE - inLeaf);
      this.#push(pte - flags + inLeaf, n);
      remaining -= n;
      page = table.hitBase + span;
      off = 0;
    }
    return null;
  }

  #identity(dev: SimDevice, iova: bigint, length: number, write: boolean, pasid: number | undefined, domain: SimDomain | null): FaultInput | null {
    const pa = iova < BigInt(TWO_POW_52) ? Number(iova) : -1;
    if (pa < 0 || !this.#phys.isRam(pa, length)) {
      return this.#fault(dev, iova, write, pasid, 'other', undefined, domain, `no RAM at PA ${'0x' + iova.toString(16)}+0x${length.toString(16)} (bus error)`);
    }
    this.#push(pa, length);
    return null;
  }

  #stage1(dev: SimDevice, iova: bigint, length: number, write: boolean, pasid: number | undefined, domain: SimDomain): FaultInput | null {
    const s1 = domain.stage1!;
    let page = Number(iova >> 12n);
    let off = Number(iova & 0xfffn);
    let remaining = length;
    while (remaining > 0) {
      if (!s1.translate(page, write)) {
        const code = s1.faultCode === 0 ? undefined : s1.faultCode;
        return this.#fault(dev, BigInt(page) * 4096n + BigInt(off), write, pasid, s1.faultKind, code, domain,
          code === undefined ? 'stage-1 output address is not RAM (bus error)' : undefined);
      }
      const n = Math.min(remaining, s1.outSpan * PAGE_SIZE - off);
      this.#push(s1.outPfn * PAGE_SIZE + off, n);
      remaining -= n;
      page += Math.ceil((off + n) / PAGE_SIZE);
      off = 0;
    }
    return null;
  }
}
