/**
 * Caller-owned AArch64 stage-1 translation (Unmanaged domains on arm64, WDK ConfigureDomain with
 * DOMAIN_CONFIGURATION_ARM64), as an SMMUv3 would walk it, plus the IOTLB that caches its results
 * until `flushDomain`.
 *
 * Supported: 4 KiB granule; TTBR0 for VAs in [0, 2^InputSize0) and TTBR1 for VAs whose bits
 * [63:InputSize1] are all ones (InputSize1 = 0 disables TTBR1); start level from the input size
 * (25..48 bits); table descriptors (0b11 at levels 0–2), block descriptors (0b01 at level 1 = 1 GiB
 * and level 2 = 2 MiB), page descriptors (0b11 at level 3); output address bits [47:12]; AF (bit
 * 10) must be set (else F_ACCESS); AP[2] (bit 7) = read-only and APTable[1] (bit 62 of a table
 * descriptor) = no writes below. Descriptors are read little-endian from simulated RAM; a walk
 * that leaves RAM is F_WALK_EABT. `TranslationEnabled = false` means bypass (output = input).
 * Not modelled: MAIR/shareability/cacheability (accepted, ignored), AP[1] EL0 checks, XN,
 * contiguous hint, hardware AF/dirty updates.
 *
 * IOTLB: successful walks are cached per leaf size (4 KiB / 2 MiB / 1 GiB, keyed by VA page >>
 * 0 / 9 / 18); a cached translation is used without re-reading the tables, so after the caller
 * edits a descriptor DMA keeps using the old translation until `flush` (all, or by VA: a VA
 * invalidates every cached leaf containing it).
 */
import type { Arm64DomainConfig } from '../contract.js';
import { SMMU } from './faults.js';
import type { PhysicalMemory } from './physical-memory.js';
import { ERR, fail, PAGE_SIZE, TWO_POW_52 } from './util.js';

const LEVEL_SPAN = [512 ** 3, 512 ** 2, 512, 1]; // pages per entry at level 0..3
const TLB_SPANS = [1, 512, 262144]; // pages per cached leaf: 4 KiB, 2 MiB, 1 GiB

export interface Stage1Config {
  readonly ttbr0: number;
  readonly ttbr1: number;
  readonly inputSize0: number;
  readonly inputSize1: number;
  readonly translationEnabled: boolean;
  readonly raw: Arm64DomainConfig;
}

export function checkArm64Config(config: Arm64DomainConfig, phys: PhysicalMemory, syscall: string): Stage1Config {
  if (config === null || typeof config !== 'object') throw new TypeError('config must be a DOMAIN_CONFIGURATION_ARM64 object');
  const { ttbr0, ttbr1, mair0, mair1, inputSize0, inputSize1, coherentTableWalks, translationEnabled } = config;
  for (const [name, v] of [['ttbr0', ttbr0], ['ttbr1', ttbr1]] as const) {
    if (typeof v !== 'bigint') throw new TypeError(`config.${name} must be a bigint`);
    if (v < 0n || v >= BigInt(TWO_POW_52)) fail(ERR.EINVAL, syscall, `config.${name} out of range`);
  }
  for (const [name, v] of [['mair0', mair0], ['mair1', mair1], ['inputSize0', inputSize0], ['inputSize1', inputSize1]] as const) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      throw new TypeError(`config.${name} must be a 32-bit unsigned integer`);
    }
  }
  if (typeof coherentTableWalks !== 'boolean' || typeof translationEnabled !== 'boolean') {
    throw new TypeError('config.coherentTableWalks and config.translationEnabled must be booleans');
  }
  const t0 = Number(ttbr0);
  const t1 = Number(ttbr1);
  if (translationEnabled) {
    if (inputSize0 < 25 || inputSize0 > 48) fail(ERR.EINVAL, syscall, `InputSize0 ${inputSize0} outside 25..48 (4 KiB granule)`);
    if (t0 % PAGE_SIZE !== 0 || !phys.isRam(t0, PAGE_SIZE)) fail(ERR.EINVAL, syscall, 'Ttbr0 is not a page-aligned RAM address');
    if (inputSize1 !== 0) {
      if (inputSize1 < 25 || inputSize1 > 48) fail(ERR.EINVAL, syscall, `InputSize1 ${inputSize1} outside 25..48`);
      if (t1 % PAGE_SIZE !== 0 || !phys.isRam(t1, PAGE_SIZE)) fail(ERR.EINVAL, syscall, 'Ttbr1 is not a page-aligned RAM address');
    }
  }
  return { ttbr0: t0, ttbr1: t1, inputSize0, inputSize1, translationEnabled, raw: { ...config } };
}

export class Stage1 {
  config: Stage1Config | null = null;
  readonly #tlb = [new Map<number, number>(), new Map<number, number>(), new Map<number, number>()];
  readonly #phys: PhysicalMemory;
  readonly #desc = new Uint8Array(8);
  readonly #view = new DataView(this.#desc.buffer);
  walks = 0;
  tlbHits = 0;

  // results of translate(): output page, leaf span (pages) from that output, fault code
  outPfn = 0;
  outSpan = 0;
  writable = false;
  faultCode = 0;
  faultKind: 'translation' | 'permission' | 'other' = 'translation';

  constructor(phys: PhysicalMemory) {
    this.#phys = phys;
  }

  configure(cfg: Stage1Config): void {
    this.config = cfg;
    this.flush();
  }

  flush(vaPages?: readonly number[]): void {
    if (vaPages === undefined) {
      for (const t of this.#tlb) t.clear();
      return;
    }
    for (const p of vaPages) {
      this.#tlb[0].delete(p);
      this.#tlb[1].delete(Math.floor(p / 512));
      this.#tlb[2].delete(Math.floor(p / 262144));
    }
  }

  get tlbEntries(): number {
    return this.#tlb[0].size + this.#tlb[1].size + this.#tlb[2].size;
  }

  /**
   * Translate VA page `vpage` for a read or write. Returns true and sets outPfn/outSpan/writable,
   * or false and sets faultCode/faultKind.
   */
  translate(vpage: number, write: boolean): boolean {
    const cfg = this.config;
    if (cfg === null) return this.#fault(SMMU.C_BAD_CD, 'translation');
    if (!cfg.translationEnabled) {
      if (!this.#phys.isRam(vpage * PAGE_SIZE, PAGE_SIZE)) return this.#fault(0, 'other');
      this.outPfn = vpage;
      this.outSpan = 1;
      this.writable = true;
      return true;
    }
    if (vpage >= TWO_POW_52) return this.#fault(SMMU.F_TRANSLATION, 'translation');
    // IOTLB
    for (let s = 0; s < 3; s++) {
      const span = TLB_SPANS[s];
      const key = Math.floor(vpage / span);
      const e = this.#tlb[s].get(key);
      if (e !== undefined) {
        this.tlbHits++;
        const w = e % 2 === 1;
        if (write && !w) return this.#fault(SMMU.F_PERMISSION, 'permission');
        const basePfn = Math.floor(e / 2);
        const off = vpage - key * span;
        this.outPfn = basePfn + off;
        this.outSpan = span - off;
        this.writable = w;
        return true;
      }
    }
    // select the table
    let ttb: number;
    let size: number;
    let rel: number; // page index inside the region
    const lowPages = 2 ** (cfg.inputSize0 - 12);
    if (vpage < lowPages) {
      ttb = cfg.ttbr0;
      size = cfg.inputSize0;
      rel = vpage;
    } else if (cfg.inputSize1 !== 0 && vpage >= TWO_POW_52 - 2 ** (cfg.inputSize1 - 12)) {
      ttb = cfg.ttbr1;
      size = cfg.inputSize1;
      rel = vpage - (TWO_POW_52 - 2 ** (cfg.inputSize1 - 12));
    } else {
      return this.#fault(SMMU.F_TRANSLATION, 'translation');
    }
    this.walks++;
    const levels = Math.ceil((size - 12) / 9);
    let table = ttb;
    let noWrite = false;
    for (let level = 4 - levels; level <= 3; level++) {
      const span = LEVEL_SPAN[level];
      const idx = Math.floor(rel / span) % 512;
      const addr = table + idx * 8;
      if (!this.#phys.isRam(addr, 8)) return this.#fault(SMMU.F_WALK_EABT, 'other');
      this.#phys.read(addr, this.#desc, 0, 8);
      const lo = this.#view.getUint32(0, true);
      const hi = this.#view.getUint32(4, true);
      const type = lo & 3;
      const oa = (hi & 0xffff) * 2 ** 32 + ((lo & 0xfffff000) >>> 0);
      if ((type & 1) === 0) return this.#fault(SMMU.F_TRANSLATION, 'translation');
      const isTable = type === 3 && level < 3;
      if (isTable) {
        if ((hi >>> 30) & 1) noWrite = true; // APTable[1]
        table = oa;
        continue;
      }
      // block (levels 1, 2) or page (level 3)
      if (type === 1 && (level === 0 || level === 3)) return this.#fault(SMMU.F_TRANSLATION, 'translation');
      if (((lo >>> 10) & 1) === 0) return this.#fault(SMMU.F_ACCESS, 'other');
      const readOnly = noWrite || ((lo >>> 7) & 1) === 1;
      const basePfn = Math.floor(oa / PAGE_SIZE / span) * span;
      if (!this.#phys.isRam(basePfn * PAGE_SIZE, span * PAGE_SIZE)) {
        // output outside RAM: not an SMMU event, the access itself aborts on the bus (code 0)
        return this.#fault(0, 'other');
      }
      const s = level === 3 ? 0 : level === 2 ? 1 : 2;
      this.#tlb[s].set(Math.floor(vpage / span), basePfn * 2 + (readOnly ? 0 : 1));
      if (write && readOnly) return this.#fault(SMMU.F_PERMISSION, 'permission');
      const off = vpage - Math.floor(vpage / span) * span;
      this.outPfn = basePfn + off;
      this.outSpan = span - off;
      this.writable = !readOnly;
      return true;
    }
    return this.#fault(SMMU.F_TRANSLATION, 'translation');
  }

  #fault(code: number, kind: 'translation' | 'permission' | 'other'): false {
    this.faultCode = code;
    this.faultKind = kind;
    return false;
  }
}
