/**
 * PCI configuration space of a simulated function: bytes plus per-bit write masks, with the type-0
 * header laid out at the standard offsets (vendor 0x00, device 0x02, command 0x04, status 0x06,
 * revision 0x08, class code 0x09–0x0b, header type 0x0e, BARs 0x10–0x24, subsystem 0x2c/0x2e,
 * capability pointer 0x34, interrupt line/pin 0x3c/0x3d).
 */

import { PCI_COMMAND, PCI_STATUS, PCI_COMMAND_MEMORY, PCI_COMMAND_MASTER } from '../../util/pci.js';

export interface HeaderSpec {
  readonly vendorId: number;
  readonly deviceId: number;
  readonly revision: number;
  readonly classCode: number;
  readonly headerType: number;
  readonly subsystemVendorId: number;
  readonly subsystemId: number;
  readonly interruptPin: number;
  /** 32-bit non-prefetchable memory BARs: size (power of two ≥ 16) and address, by index. */
  readonly bars: ReadonlyArray<{ readonly size: number; readonly address: number } | null>;
  readonly command: number;
}

export class PciConfigSpace {
  readonly size: number;
  readonly bytes: Uint8Array;
  readonly wmask: Uint8Array;
  /** Write-1-to-clear bits (status register error bits). */
  readonly w1c: Uint8Array;
  readonly #view: DataView;

  constructor(size: 256 | 4096, header: HeaderSpec) {
    this.size = size;
    this.bytes = new Uint8Array(size);
    this.wmask = new Uint8Array(size);
    this.w1c = new Uint8Array(size);
    this.#view = new DataView(this.bytes.buffer);
    this.set(0x00, 2, header.vendorId);
    this.set(0x02, 2, header.deviceId);
    this.set(PCI_COMMAND, 2, header.command);
    this.setWritable(PCI_COMMAND, 2, 0x0547); // IO, MEM, MASTER, PARITY, SERR, INTX_DISABLE
    this.setW1c(PCI_STATUS, 2, 0xf900); // error bits
    this.set(0x08, 1, header.revision);
    this.set(0x09, 1, header.classCode & 0xff);
    this.set(0x0a, 1, (header.classCode >> 8) & 0xff);
    this.set(0x0b, 1, (header.classCode >> 16) & 0xff);
    this.set(0x0e, 1, header.headerType);
    this.setWritable(0x0c, 1, 0xff); // cache line size
    header.bars.forEach((bar, i) => {
      if (!bar) return;
      const off = 0x10 + i * 4;
      this.set(off, 4, bar.address >>> 0);
      this.setWritable(off, 4, ~(bar.size - 1) & 0xfffffff0);
    });
    this.set(0x2c, 2, header.subsystemVendorId);
    this.set(0x2e, 2, header.subsystemId);
    this.set(0x3d, 1, header.interruptPin);
    this.setWritable(0x3c, 1, 0xff); // interrupt line
  }

  /** Initial value (ignores write masks). */
  set(off: number, size: 1 | 2 | 4, value: number): void {
    if (size === 1) this.#view.setUint8(off, value & 0xff);
    else if (size === 2) this.#view.setUint16(off, value & 0xffff, true);
    else this.#view.setUint32(off, value >>> 0, true);
  }

  setWritable(off: number, size: 1 | 2 | 4, mask: number): void {
    for (let i = 0; i < size; i++) this.wmask[off + i] = (mask >>> (8 * i)) & 0xff;
  }

  setW1c(off: number, size: 1 | 2 | 4, mask: number): void {
    for (let i = 0; i < size; i++) this.w1c[off + i] = (mask >>> (8 * i)) & 0xff;
  }

  read(off: number, size: 1 | 2 | 4): number {
    if (size === 1) return this.#view.getUint8(off);
    if (size === 2) return this.#view.getUint16(off, true);
    return this.#view.getUint32(off, true);
  }

  write(off: number, size: 1 | 2 | 4, value: number): void {
    for (let i = 0; i < size; i++) {
      const v = (value >>> (8 * i)) & 0xff;
      const o = off + i;
      const old = this.bytes[o];
      let next = (old & ~this.wmask[o]) | (v & this.wmask[o]);
      next &= ~(v & this.w1c[o]);
      this.bytes[o] = next & 0xff;
    }
  }

  get command(): number {
    return this.read(PCI_COMMAND, 2);
  }

  get busMaster(): boolean {
    return (this.command & PCI_COMMAND_MASTER) !== 0;
  }

  get memorySpace(): boolean {
    return (this.command & PCI_COMMAND_MEMORY) !== 0;
  }
}
