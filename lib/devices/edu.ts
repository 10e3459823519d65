/**
 * A driver for QEMU's `edu` PCI device (1234:11e8; QEMU docs/specs/edu.rst, hw/misc/edu.c),
 * written only against `DeviceRegions` (PCI config space + BAR0), so the same code drives the
 * simulator's edu model and a real edu device in a QEMU guest through the native backend.
 *
 * Safety rules it enforces (real QEMU 7.2 aborts the whole VM otherwise):
 *  - transfer length ≥ 1 and deviceOffset + length < 4096: the device's buffer is 4 KiB at device
 *    address 0x40000 and 7.2 rejects (hw_error → VM abort) a transfer that reaches its end;
 *  - iova + length < 2^28 (edu's default 28-bit DMA mask; other masks via the constructor), since
 *    out-of-mask addresses are silently truncated to other IOVAs.
 * Completion is polled on the command register's bit 0 with a timeout.
 */
import type { DeviceRegions } from '../backend/contract.js';

export const EDU_VENDOR_ID = 0x1234;
export const EDU_DEVICE_ID = 0x11e8;
/** BAR0 register 0x00 of edu v1.0. */
export const EDU_ID = 0x010000ed;
export const EDU_BUFFER_ADDRESS = 0x40000n;
export const EDU_BUFFER_SIZE = 4096;
/** Largest safe transfer on QEMU 7.2 (ends strictly before the buffer's end). */
export const EDU_MAX_TRANSFER = EDU_BUFFER_SIZE - 1;

const REG_ID = 0x00;
const REG_LIVENESS = 0x04;
const REG_FACTORIAL = 0x08;
const REG_STATUS = 0x20;
const REG_DMA_SRC = 0x80;
const REG_DMA_DST = 0x88;
const REG_DMA_COUNT = 0x90;
const REG_DMA_CMD = 0x98;
const CMD_START = 0x1;
const CMD_TO_RAM = 0x2;
const STATUS_COMPUTING = 0x1;
const PCI_COMMAND = 0x04;
const PCI_COMMAND_MEMORY = 0x2;
const PCI_COMMAND_MASTER = 0x4;

export interface EduDeviceOptions {
  /** Give up waiting for a DMA or factorial after this many ms (default 5000). */
  readonly timeoutMs?: number;
  /** The device's DMA mask (default 2^28-1, QEMU's default `dma_mask`). */
  readonly dmaMask?: bigint;
}

/** A transfer the device did not finish in time (or a device that stopped answering). */
export class EduTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EduTimeoutError';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0) setImmediate(resolve);
    else setTimeout(resolve, ms);
  });
}

/**
 * A driver for QEMU's `edu` PCI device, written only against {@link DeviceRegions}
 * (`Platform.deviceRegions(dev)`), so the same code drives the simulator's edu model and a real
 * edu device inside `dma-iommu vm`. It refuses transfers that would crash QEMU 7.2 (length 1 …
 * `EDU_MAX_TRANSFER` = 4095 bytes, ending before the 4 KiB buffer's end) and IOVAs outside the DMA
 * mask (28 bits by default). Call {@link EduDevice.enableBusMaster} before any DMA.
 */
export class EduDevice {
  readonly #regions: DeviceRegions;
  readonly #timeoutMs: number;
  readonly #dmaMask: bigint;
  #busy = false;

  /**
   * @param regions - the device's regions, from `Platform.deviceRegions(dmaDevice)`.
   * @param options - `timeoutMs` (completion polling limit, default 5000) and `dmaMask` (default 2^28 − 1).
   * @throws `TypeError` when `regions` is not a `DeviceRegions`; `RangeError` for a bad option.
   */
  constructor(regions: DeviceRegions, options: EduDeviceOptions = {}) {
    if (regions === null || typeof regions !== 'object' || typeof regions.barRead32 !== 'function') {
      throw new TypeError('EduDevice needs the DeviceRegions of an open edu device');
    }
    const timeoutMs = options.timeoutMs ?? 5000;
    if (typeof timeoutMs !== 'number' || !(timeoutMs > 0)) throw new RangeError('timeoutMs must be > 0');
    const dmaMask = options.dmaMask ?? (1n << 28n) - 1n;
    if (typeof dmaMask !== 'bigint' || dmaMask <= 0n) throw new RangeError('dmaMask must be a positive bigint');
    this.#regions = regions;
    this.#timeoutMs = timeoutMs;
    this.#dmaMask = dmaMask;
  }

  /** The identification register (0x010000ed for edu v1.0). */
  identify(): number {
    return this.#regions.barRead32(0, REG_ID) >>> 0;
  }

  /** PCI vendor and device ID from config space. */
  pciId(): {
    /** PCI vendor ID (0x1234). */
    vendorId: number;
    /** PCI device ID (0x11e8). */
    deviceId: number;
  } {
    return { vendorId: this.#regions.configRead(0x00, 2), deviceId: this.#regions.configRead(0x02, 2) };
  }

  /** Liveness check: the device answers the bitwise NOT of what was written. */
  checkLiveness(value = 0x12345678): boolean {
    this.#regions.barWrite32(0, REG_LIVENESS, value >>> 0);
    return this.#regions.barRead32(0, REG_LIVENESS) >>> 0 === ~value >>> 0;
  }

  /** Set memory decoding and bus mastering in the PCI command register (needed before any DMA). */
  enableBusMaster(): void {
    const cmd = this.#regions.configRead(PCI_COMMAND, 2);
    this.#regions.configWrite(PCI_COMMAND, 2, cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  }

  /** Clear bus mastering in the PCI command register: the device can no longer start DMA. */
  disableBusMaster(): void {
    const cmd = this.#regions.configRead(PCI_COMMAND, 2);
    this.#regions.configWrite(PCI_COMMAND, 2, cmd & ~PCI_COMMAND_MASTER);
  }

  /** True when bus mastering is enabled in the PCI command register. */
  get busMaster(): boolean {
    return (this.#regions.configRead(PCI_COMMAND, 2) & PCI_COMMAND_MASTER) !== 0;
  }

  /** n! computed by the device (32-bit wrap-around, as the device does). */
  async factorial(n: number): Promise<number> {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xffffffff) {
      throw new RangeError(`n must be a 32-bit unsigned integer, got ${String(n)}`);
    }
    await this.#exclusive(async () => {
      await this.#poll(REG_STATUS, STATUS_COMPUTING, 'factorial');
      this.#regions.barWrite32(0, REG_FACTORIAL, n);
      await this.#poll(REG_STATUS, STATUS_COMPUTING, 'factorial');
    });
    return this.#regions.barRead32(0, REG_FACTORIAL) >>> 0;
  }

  /** RAM → device: the device reads `length` bytes at `iova` into its buffer at `deviceOffset`. */
  async dmaToDevice(iova: bigint, length: number, deviceOffset = 0): Promise<void> {
    this.#check(iova, length, deviceOffset);
    await this.#transfer(iova, EDU_BUFFER_ADDRESS + BigInt(deviceOffset), length, CMD_START);
  }

  /** Device → RAM: the device writes `length` bytes of its buffer at `deviceOffset` to `iova`. */
  async dmaFromDevice(iova: bigint, length: number, deviceOffset = 0): Promise<void> {
    this.#check(iova, length, deviceOffset);
    await this.#transfer(EDU_BUFFER_ADDRESS + BigInt(deviceOffset), iova, length, CMD_START | CMD_TO_RAM);
  }

  #check(iova: bigint, length: number, deviceOffset: number): void {
    if (typeof iova !== 'bigint') throw new TypeError(`iova must be a bigint, got ${typeof iova}`);
    if (typeof length !== 'number' || !Number.isInteger(length)) throw new TypeError('length must be an integer');
    if (typeof deviceOffset !== 'number' || !Number.isInteger(deviceOffset)) throw new TypeError('deviceOffset must be an integer');
    if (length < 1) throw new RangeError(`length must be at least 1, got ${length}`);
    if (deviceOffset < 0 || deviceOffset + length >= EDU_BUFFER_SIZE) {
      throw new RangeError(
        `deviceOffset ${deviceOffset} + length ${length} must stay below ${EDU_BUFFER_SIZE} (QEMU 7.2 aborts the VM at the buffer's end)`,
      );
    }
    if (iova < 0n || iova + BigInt(length) > this.#dmaMask) {
      throw new RangeError(`iova 0x${iova.toString(16)} + ${length} exceeds the edu DMA mask 0x${this.#dmaMask.toString(16)}`);
    }
  }

  async #transfer(src: bigint, dst: bigint, length: number, cmd: number): Promise<void> {
    await this.#exclusive(async () => {
      // never reprogram a transfer in flight (the device ignores the writes anyway)
      await this.#poll(REG_DMA_CMD, CMD_START, 'DMA');
      const r = this.#regions;
      r.barWrite64(0, REG_DMA_SRC, src);
      r.barWrite64(0, REG_DMA_DST, dst);
      r.barWrite64(0, REG_DMA_COUNT, BigInt(length));
      r.barWrite32(0, REG_DMA_CMD, cmd);
      await this.#poll(REG_DMA_CMD, CMD_START, 'DMA');
    });
  }

  /** One operation at a time on this device (the register file is shared). */
  async #exclusive(fn: () => Promise<void>): Promise<void> {
    const start = Date.now();
    while (this.#busy) {
      if (Date.now() - start > this.#timeoutMs) throw new EduTimeoutError('edu: another operation is still running');
      await sleep(1);
    }
    this.#busy = true;
    try {
      await fn();
    } finally {
      this.#busy = false;
    }
  }

  /** Wait until `bit` of register `reg` is clear. */
  async #poll(reg: number, bit: number, what: string): Promise<void> {
    const start = Date.now();
    let delay = 0;
    for (let i = 0; ; i++) {
      const v = this.#regions.barRead32(0, reg) >>> 0;
      if (v === 0xffffffff) {
        throw new EduTimeoutError(`edu: the device reads all-ones (hardware error or removed) while waiting for ${what}`);
      }
      if ((v & bit) === 0) return;
      if (Date.now() - start > this.#timeoutMs) {
        throw new EduTimeoutError(`edu: ${what} did not complete within ${this.#timeoutMs} ms (register 0x${reg.toString(16)} = 0x${v.toString(16)})`);
      }
      if (i < 4) await Promise.resolve();
      else {
        await sleep(delay);
        delay = Math.min(delay === 0 ? 1 : delay * 2, 20);
      }
    }
  }
}
