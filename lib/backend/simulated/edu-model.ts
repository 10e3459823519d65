/**
 * Model of QEMU's `edu` teaching device (hw/misc/edu.c as of QEMU 7.2, docs/specs/edu.rst),
 * with its DMA going through the simulator's DMA engine, i.e. through the IOMMU.
 *
 * BAR0 (1 MiB MMIO): 0x00 id 0x010000ed; 0x04 liveness (reads ~last write); 0x08 factorial;
 * 0x20 status (bit0 computing, bit7 IRQ on factorial); 0x24 IRQ status; 0x60 raise / 0x64 ack
 * IRQ; 0x80 DMA source, 0x88 DMA destination, 0x90 DMA count, 0x98 DMA command (bit0 start/busy,
 * bit1 direction 1 = edu→RAM, bit2 IRQ 0x100 on completion). Offsets below 0x80 take 4-byte
 * accesses only, the DMA registers 4 or 8; anything else reads all-ones and ignores writes.
 * DMA registers are frozen while a transfer is pending. The internal buffer is 4 KiB at device
 * address 0x40000; bus addresses are ANDed with the DMA mask (28 bits by default).
 *
 * Timing: a started transfer or factorial completes after `delayMs` (0 = on a microtask); drivers
 * poll bit0. With the bus-master bit clear the transfer still completes, as in QEMU, but goes
 * nowhere: QEMU's bus-master address space is then disabled (pci_init_bus_master), so a read from
 * RAM fills the buffer with zeros and a write to RAM is dropped, with no IOMMU fault. A transfer that leaves the buffer, or ends exactly at its end (QEMU 7.2's
 * off-by-one), aborts the whole VM in QEMU 7.2 (hw_error); here the device enters a
 * hardware-error state instead: the message is kept (inspect), no memory is touched, MMIO reads
 * return all-ones from then on and writes are ignored (a dead device).
 *
 * Translation is page by page (the DMA engine's rule, QEMU's memory core): the pages that translate
 * move; a blocked page of a RAM → edu transfer leaves zeros in the buffer (QEMU's pci_dma_read
 * stores what the unassigned region reads, 0), a blocked page of an edu → RAM transfer is
 * dropped. The engine records the fault; the edu itself ignores the error, as in QEMU 7.2.
 */
import { PciConfigSpace } from './config-space.js';

export const EDU_ID = 0x010000ed;
export const EDU_VENDOR = 0x1234;
export const EDU_DEVICE = 0x11e8;
export const EDU_BAR0_SIZE = 1 << 20;
export const EDU_DMA_START = 0x40000n;
export const EDU_DMA_SIZE = 4096n;
const RUN = 1n;
const DIR_TO_PCI = 2n;
const DMA_IRQ_ON_DONE = 4n;
const FACT_IRQ = 0x1;
const DMA_IRQ = 0x100;
const STATUS_COMPUTING = 0x1;
const STATUS_IRQFACT = 0x80;
const ALL_ONES_64 = (1n << 64n) - 1n;
const U64 = (1n << 64n) - 1n;

export interface DeviceModel {
  readonly kind: 'edu' | 'generic';
  readonly config: PciConfigSpace;
  /** Size of BAR `bar` in bytes, 0 when the BAR is not implemented. */
  barSize(bar: number): number;
  mmioRead(bar: number, offset: number, size: 4 | 8): bigint;
  mmioWrite(bar: number, offset: number, size: 4 | 8, value: bigint): void;
  /** The device went away (removal, backend close): cancel pending work. */
  stop(): void;
  inspect(): Record<string, unknown>;
}

/** What the edu needs from the machine: DMA through the IOMMU and a clock. */
export interface EduHost {
  /** The bytes read (zeros for blocked pages) and whether every page translated; null when the device or machine is gone. */
  dmaRead(iova: bigint, length: number): { readonly data: Uint8Array; readonly ok: boolean } | null;
  dmaWrite(iova: bigint, data: Uint8Array): boolean;
  readonly delayMs: number;
}

export interface EduOptions {
  readonly bar0Address: number;
  readonly dmaMask: bigint;
  readonly revision?: number;
}

export class EduModel implements DeviceModel {
  readonly kind = 'edu' as const;
  readonly config: PciConfigSpace;
  readonly buffer = new Uint8Array(Number(EDU_DMA_SIZE));
  readonly dmaMask: bigint;
  liveness = 0;
  fact = 0;
  status = 0;
  irqStatus = 0;
  dmaSrc = 0n;
  dmaDst = 0n;
  dmaCnt = 0n;
  dmaCmd = 0n;
  hardwareError: string | null = null;
  /** Guest-error log lines (e.g. "EDU: clamping DMA ..."), newest last, bounded. */
  readonly log: string[] = [];
  transfers = 0;
  droppedTransfers = 0;
  failedTransfers = 0;
  interruptsRaised = 0;
  readonly #host: EduHost;
  #generation = 0;
  #timers = new Set<ReturnType<typeof setTimeout>>();

  constructor(host: EduHost, options: EduOptions) {
    this.#host = host;
    this.dmaMask = options.dmaMask;
    this.config = new PciConfigSpace(256, {
      vendorId: EDU_VENDOR,
      deviceId: EDU_DEVICE,
      revision: options.revision ?? 0x10,
      classCode: 0x00ff00,
      headerType: 0x00,
      subsystemVendorId: 0x1af4,
      subsystemId: 0x1100,
      interruptPin: 1,
      bars: [{ size: EDU_BAR0_SIZE, address: options.bar0Address }],
      command: 0x0002, // firmware enabled memory decoding; bus mastering is the driver's job
    });
    // MSI capability at 0x40 (64-bit capable, one vector), as QEMU's edu has
    this.config.set(0x06, 2, 0x0010);
    this.config.set(0x34, 1, 0x40);
    this.config.set(0x40, 1, 0x05);
    this.config.set(0x41, 1, 0x00);
    this.config.set(0x42, 2, 0x0080);
    this.config.setWritable(0x42, 2, 0x0071);
    this.config.setWritable(0x44, 4, 0xfffffffc);
    this.config.setWritable(0x48, 4, 0xffffffff);
    this.config.setWritable(0x4c, 2, 0xffff);
  }

  barSize(bar: number): number {
    return bar === 0 ? EDU_BAR0_SIZE : 0;
  }

  get dead(): boolean {
    return this.hardwareError !== null;
  }

  mmioRead(_bar: number, offset: number, size: 4 | 8): bigint {
    if (this.dead || !this.config.memorySpace) return size === 8 ? ALL_ONES_64 : 0xffffffffn;
    if ((offset < 0x80 && size !== 4) || (size !== 4 && size !== 8)) return size === 8 ? ALL_ONES_64 : 0xffffffffn;
    let v: bigint;
    switch (offset) {
      case 0x00:
        v = BigInt(EDU_ID);
        break;
      case 0x04:
        v = BigInt(this.liveness >>> 0);
        break;
      case 0x08:
        v = BigInt(this.fact >>> 0);
        break;
      case 0x20:
        v = BigInt(this.status);
        break;
      case 0x24:
        v = BigInt(this.irqStatus >>> 0);
        break;
      case 0x80:
        v = this.dmaSrc;
        break;
      case 0x88:
        v = this.dmaDst;
        break;
      case 0x90:
        v = this.dmaCnt;
        break;
      case 0x98:
        v = this.dmaCmd;
        break;
      default:
        v = ALL_ONES_64;
    }
    return size === 4 ? v & 0xffffffffn : v;
  }

  mmioWrite(_bar: number, offset: number, size: 4 | 8, value: bigint): void {
    if (this.dead || !this.config.memorySpace) return;
    if ((offset < 0x80 && size !== 4) || (size !== 4 && size !== 8)) return;
    const v = size === 4 ? value & 0xffffffffn : value & U64;
    const v32 = Number(v & 0xffffffffn);
    switch (offset) {
      case 0x04:
        this.liveness = ~v32 >>> 0;
        break;
      case 0x08:
        if (this.status & STATUS_COMPUTING) break;
        this.fact = v32;
        this.status |= STATUS_COMPUTING;
        this.#schedule(() => this.#factorialDone());
        break;
      case 0x20:
        if (v32 & STATUS_IRQFACT) this.status |= STATUS_IRQFACT;
        else this.status &= ~STATUS_IRQFACT;
        break;
      case 0x60:
        this.#raise(v32);
        break;
      case 0x64:
        this.irqStatus = (this.irqStatus & ~v32) >>> 0;
        break;
      case 0x80:
        if (!(this.dmaCmd & RUN)) this.dmaSrc = v;
        break;
      case 0x88:
        if (!(this.dmaCmd & RUN)) this.dmaDst = v;
        break;
      case 0x90:
        if (!(this.dmaCmd & RUN)) this.dmaCnt = v;
        break;
      case 0x98:
        if (!(v & RUN) || this.dmaCmd & RUN) break;
        this.dmaCmd = v;
        this.#schedule(() => this.#dmaTimer());
        break;
      default:
        break;
    }
  }

  stop(): void {
    this.#generation++;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  #schedule(fn: () => void): void {
    const gen = this.#generation;
    const run = (): void => {
      if (gen === this.#generation) fn();
    };
    if (this.#host.delayMs <= 0) {
      queueMicrotask(run);
    } else {
      const t = setTimeout(() => {
        this.#timers.delete(t);
        run();
      }, this.#host.delayMs);
      t.unref?.();
      this.#timers.add(t);
    }
  }

  #raise(value: number): void {
    this.irqStatus = (this.irqStatus | value) >>> 0;
    this.interruptsRaised++;
  }

  #factorialDone(): void {
    let n = this.fact >>> 0;
    let r = 1;
    while (n > 0 && r !== 0) r = Math.imul(r, n--) >>> 0;
    this.fact = r >>> 0;
    this.status &= ~STATUS_COMPUTING;
    if (this.status & STATUS_IRQFACT) this.#raise(FACT_IRQ);
  }

  /** edu_check_range of QEMU 7.2: [addr, addr+size) inside the buffer, end strictly before its end. */
  #inRange(addr: bigint, size: bigint): boolean {
    const end1 = (addr + size) & U64;
    const end2 = EDU_DMA_START + EDU_DMA_SIZE;
    const within = (a: bigint): boolean => EDU_DMA_START <= a && a < end2;
    if (within(addr) && end1 > addr && within(end1)) return true;
    const h = (x: bigint): string => `0x${x.toString(16).padStart(16, '0')}`;
    this.hardwareError =
      `EDU: DMA range ${h(addr)}-${h((end1 - 1n) & U64)} out of bounds (${h(EDU_DMA_START)}-${h(end2 - 1n)})!`;
    return false;
  }

  #clamp(addr: bigint): bigint {
    const res = addr & this.dmaMask;
    if (res !== addr) {
      const h = (x: bigint): string => `0x${x.toString(16).padStart(16, '0')}`;
      this.log.push(`EDU: clamping DMA ${h(addr)} to ${h(res)}!`);
      if (this.log.length > 100) this.log.shift();
    }
    return res;
  }

  #dmaTimer(): void {
    if (!(this.dmaCmd & RUN)) return;
    const cnt = this.dmaCnt;
    if ((this.dmaCmd & DIR_TO_PCI) === 0n) {
      // RAM → edu
      if (!this.#inRange(this.dmaDst, cnt)) return;
      const off = Number(this.dmaDst - EDU_DMA_START);
      if (!this.config.busMaster) {
        this.buffer.fill(0, off, off + Number(cnt));
        this.droppedTransfers++;
      } else {
        const r = this.#host.dmaRead(this.#clamp(this.dmaSrc), Number(cnt));
        if (r !== null) this.buffer.set(r.data, off);
        if (r !== null && r.ok) this.transfers++;
        else this.failedTransfers++;
      }
    } else {
      // edu → RAM
      if (!this.#inRange(this.dmaSrc, cnt)) return;
      const off = Number(this.dmaSrc - EDU_DMA_START);
      if (!this.config.busMaster) {
        this.droppedTransfers++;
      } else if (this.#host.dmaWrite(this.#clamp(this.dmaDst), this.buffer.slice(off, off + Number(cnt)))) {
        this.transfers++;
      } else this.failedTransfers++;
    }
    this.dmaCmd &= ~RUN;
    if (this.dmaCmd & DMA_IRQ_ON_DONE) this.#raise(DMA_IRQ);
  }

  inspect(): Record<string, unknown> {
    const h = (x: bigint | number): string => `0x${x.toString(16)}`;
    return {
      model: 'edu',
      state: this.dead ? 'hardware-error' : 'running',
      hardwareError: this.hardwareError,
      busMaster: this.config.busMaster,
      registers: {
        liveness: h(this.liveness),
        factorial: h(this.fact),
        status: h(this.status),
        irqStatus: h(this.irqStatus),
        dmaSrc: h(this.dmaSrc),
        dmaDst: h(this.dmaDst),
        dmaCount: h(this.dmaCnt),
        dmaCmd: h(this.dmaCmd),
      },
      dmaMask: h(this.dmaMask),
      transfers: this.transfers,
      droppedTransfers: this.droppedTransfers,
      failedTransfers: this.failedTransfers,
      interruptsRaised: this.interruptsRaised,
      log: [...this.log],
    };
  }
}

/**
 * A generic DMA-capable PCIe function without registers of its own (config space only, with a PCI
 * Express capability and, when it has PASIDs, the PASID extended capability at 0x100). Its DMA is
 * driven by the backend's `dmaRead` / `dmaWrite` test controls.
 */
export class GenericModel implements DeviceModel {
  readonly kind = 'generic' as const;
  readonly config: PciConfigSpace;

  constructor(spec: { vendorId: number; deviceId: number; classCode: number; revision: number; multifunction: boolean; maxPasidLog2: number }) {
    this.config = new PciConfigSpace(4096, {
      vendorId: spec.vendorId,
      deviceId: spec.deviceId,
      revision: spec.revision,
      classCode: spec.classCode,
      headerType: spec.multifunction ? 0x80 : 0x00,
      subsystemVendorId: 0x1af4,
      subsystemId: 0x1100,
      interruptPin: 1,
      bars: [],
      command: 0x0002,
    });
    // PCI Express capability (endpoint, v2) at 0x40
    this.config.set(0x06, 2, 0x0010);
    this.config.set(0x34, 1, 0x40);
    this.config.set(0x40, 1, 0x10);
    this.config.set(0x41, 1, 0x00);
    this.config.set(0x42, 2, 0x0002);
    if (spec.maxPasidLog2 > 0) {
      // PASID extended capability: ID 0x1b, version 1, next 0; max PASID width in bits 12:8
      this.config.set(0x100, 4, 0x0001001b);
      this.config.set(0x104, 2, (spec.maxPasidLog2 & 0x1f) << 8);
      this.config.set(0x106, 2, 0);
      this.config.setWritable(0x106, 2, 0x0007); // enable, exec, privileged
    }
  }

  barSize(): number {
    return 0;
  }

  mmioRead(): bigint {
    return (1n << 64n) - 1n;
  }

  mmioWrite(): void {
    /* no BARs */
  }

  stop(): void {
    /* nothing pending */
  }

  inspect(): Record<string, unknown> {
    return { model: 'generic', busMaster: this.config.busMaster };
  }
}
