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
 *
 * Every failure is an IommuError: bad arguments STATUS_INVALID_PARAMETER (`.argument` names it); a
 * device that went away (surprise removal, all-ones reads) STATUS_DEVICE_REMOVED; its handle closed
 * under it (DeleteDevice, Platform.close()) STATUS_INVALID_DEVICE_REQUEST; a transfer that does not
 * finish STATUS_TIMEOUT (an EduTimeoutError).
 */
import type { DeviceRegions } from '../backend/contract.js';
import { BackendError, IommuError } from '../errors.js';
import type { StatusName } from '../status.js';
import { PCI_COMMAND, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY } from '../util/pci.js';

export const EDU_VENDOR_ID = 0x1234;
export const EDU_DEVICE_ID = 0x11e8;
/** BAR0 register 0x00 of edu v1.0. */
export const EDU_ID = 0x010000ed;
export const EDU_BUFFER_ADDRESS = 0x40000n;
export const EDU_BUFFER_SIZE = 4096;
/** Largest safe transfer on QEMU 7.2 (ends strictly before the buffer's end). */
export const EDU_MAX_TRANSFER = EDU_BUFFER_SIZE - 1;

// BAR0 register offsets (QEMU hw/misc/edu.c): a list of constants, alike in shape only to
// lib/backend/native/hot.ts's slot indices.
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

export interface EduDeviceOptions {
  /** Give up waiting for a DMA or factorial after this many ms (default 5000). */
  readonly timeoutMs?: number;
  /** The device's DMA mask (default 2^28-1, QEMU's default `dma_mask`). */
  readonly dmaMask?: bigint;
}

/** A transfer the device did not finish in time: an IommuError with code STATUS_TIMEOUT. */
export class EduTimeoutError extends IommuError {
  constructor(message: string, operation = 'EduDevice') {
    super('STATUS_TIMEOUT', message, { operation });
  }
}
Object.defineProperty(EduTimeoutError.prototype, 'name', { value: 'EduTimeoutError', enumerable: false });

function describe(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'number' || typeof v === 'boolean' || v === undefined || v === null) return String(v);
  return typeof v === 'string' ? `'${v.slice(0, 40)}'` : `a ${typeof v}`;
}

function invalid(operation: string, argument: string, rule: string, value: unknown): IommuError {
  return new IommuError('STATUS_INVALID_PARAMETER', `${argument} ${rule} (got ${describe(value)})`, { operation, argument });
}

/** What a register access failure means to the driver: the device is gone, or the kernel said no. */
function deviceError(e: unknown, operation: string): IommuError {
  if (e instanceof IommuError) return e;
  if (e instanceof BackendError) {
    // ENODEV: the device itself went away; EBADF: its handle was closed (DeleteDevice, Platform.close())
    const code: StatusName | undefined = e.errno === -19 ? 'STATUS_DEVICE_REMOVED' : e.errno === -9 ? 'STATUS_INVALID_DEVICE_REQUEST' : undefined;
    const message = e.errno === -19 ? 'the device was removed' : e.errno === -9 ? 'the device handle was closed (DeleteDevice or Platform.close())' : e.message;
    return IommuError.fromErrno(e.errno, e.syscall, { operation, ...(code ? { code } : {}), message, cause: e });
  }
  return new IommuError('STATUS_UNSUCCESSFUL', `register access failed: ${(e as Error)?.message ?? String(e)}`, { operation, cause: e });
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
    const op = 'EduDevice';
    if (regions === null || typeof regions !== 'object' || typeof (regions as Partial<DeviceRegions>).barRead32 !== 'function') {
      throw invalid(op, 'regions', 'must be the DeviceRegions of an open edu device (Platform.deviceRegions(device))', regions);
    }
    if (options === null || typeof options !== 'object') throw invalid(op, 'options', 'must be an object { timeoutMs?, dmaMask? }', options);
    const timeoutMs = options.timeoutMs ?? 5000;
    if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 2 ** 31 - 1) {
      throw invalid(op, 'timeoutMs', 'must be whole milliseconds in 1..2147483647', timeoutMs);
    }
    const dmaMask = options.dmaMask ?? (1n << 28n) - 1n;
    if (typeof dmaMask !== 'bigint' || dmaMask <= 0n || dmaMask >= 1n << 64n) throw invalid(op, 'dmaMask', 'must be a bigint in 1..2^64-1', dmaMask);
    this.#regions = regions;
    this.#timeoutMs = timeoutMs;
    this.#dmaMask = dmaMask;
  }

  /** Run register accesses; whatever they throw leaves as an IommuError. */
  #io<T>(operation: string, fn: (r: DeviceRegions) => T): T {
    try {
      return fn(this.#regions);
    } catch (e) {
      throw deviceError(e, `EduDevice.${operation}`);
    }
  }

  /** The identification register (0x010000ed for edu v1.0). */
  identify(): number {
    return this.#io('identify', (r) => r.barRead32(0, REG_ID) >>> 0);
  }

  /** PCI vendor and device ID from config space. */
  pciId(): {
    /** PCI vendor ID (0x1234). */
    vendorId: number;
    /** PCI device ID (0x11e8). */
    deviceId: number;
  } {
    return this.#io('pciId', (r) => ({ vendorId: r.configRead(0x00, 2), deviceId: r.configRead(0x02, 2) }));
  }

  /** Liveness check: the device answers the bitwise NOT of what was written. */
  checkLiveness(value = 0x12345678): boolean {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw invalid('EduDevice.checkLiveness', 'value', 'must be a 32-bit unsigned integer', value);
    }
    return this.#io('checkLiveness', (r) => {
      r.barWrite32(0, REG_LIVENESS, value >>> 0);
      return r.barRead32(0, REG_LIVENESS) >>> 0 === ~value >>> 0;
    });
  }

  /** Set memory decoding and bus mastering in the PCI command register (needed before any DMA). */
  enableBusMaster(): void {
    this.#io('enableBusMaster', (r) => r.configWrite(PCI_COMMAND, 2, r.configRead(PCI_COMMAND, 2) | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER));
  }

  /** Clear bus mastering in the PCI command register: the device can no longer start DMA. */
  disableBusMaster(): void {
    this.#io('disableBusMaster', (r) => r.configWrite(PCI_COMMAND, 2, r.configRead(PCI_COMMAND, 2) & ~PCI_COMMAND_MASTER));
  }

  /** True when bus mastering is enabled in the PCI command register. */
  get busMaster(): boolean {
    return this.#io('busMaster', (r) => (r.configRead(PCI_COMMAND, 2) & PCI_COMMAND_MASTER) !== 0);
  }

  /** n! computed by the device (32-bit wrap-around, as the device does). */
  async factorial(n: number): Promise<number> {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xffffffff) {
      throw invalid('EduDevice.factorial', 'n', 'must be a 32-bit unsigned integer', n);
    }
    await this.#exclusive('factorial', async () => {
      await this.#poll(REG_STATUS, STATUS_COMPUTING, 'factorial');
      this.#io('factorial', (r) => r.barWrite32(0, REG_FACTORIAL, n));
      await this.#poll(REG_STATUS, STATUS_COMPUTING, 'factorial');
    });
    return this.#io('factorial', (r) => r.barRead32(0, REG_FACTORIAL) >>> 0);
  }

  /**
   * RAM → device: the device reads `length` bytes at `iova` into its buffer at `deviceOffset`.
   * Each page is translated on its own: a page the IOMMU blocks arrives as zeros (QEMU 7.2's edu
   * stores what the blocked access reads), the others arrive intact; the transfer still completes
   * (the device ignores the error) and the IOMMU records the fault.
   */
  async dmaToDevice(iova: bigint, length: number, deviceOffset = 0): Promise<void> {
    this.#check('dmaToDevice', iova, length, deviceOffset);
    await this.#transfer(iova, EDU_BUFFER_ADDRESS + BigInt(deviceOffset), length, CMD_START);
  }

  /**
   * Device → RAM: the device writes `length` bytes of its buffer at `deviceOffset` to `iova`.
   * Each page is translated on its own: the pages the IOMMU lets through are written, a blocked
   * page's bytes are dropped; the transfer still completes and the IOMMU records the fault.
   */
  async dmaFromDevice(iova: bigint, length: number, deviceOffset = 0): Promise<void> {
    this.#check('dmaFromDevice', iova, length, deviceOffset);
    await this.#transfer(EDU_BUFFER_ADDRESS + BigInt(deviceOffset), iova, length, CMD_START | CMD_TO_RAM);
  }

  #check(what: string, iova: unknown, length: unknown, deviceOffset: unknown): void {
    const op = `EduDevice.${what}`;
    if (typeof iova !== 'bigint') throw invalid(op, 'iova', 'must be a bigint', iova);
    if (typeof length !== 'number' || !Number.isInteger(length)) throw invalid(op, 'length', 'must be an integer number of bytes', length);
    if (typeof deviceOffset !== 'number' || !Number.isInteger(deviceOffset)) throw invalid(op, 'deviceOffset', 'must be an integer byte offset', deviceOffset);
    if (length < 1) throw invalid(op, 'length', 'must be at least 1', length);
    if (deviceOffset < 0 || deviceOffset + length >= EDU_BUFFER_SIZE) {
      throw new IommuError(
        'STATUS_INVALID_PARAMETER',
        `deviceOffset ${deviceOffset} + length ${length} must stay below ${EDU_BUFFER_SIZE} (QEMU 7.2 aborts the VM at the buffer's end)`,
        { operation: op, argument: deviceOffset < 0 ? 'deviceOffset' : 'length' },
      );
    }
    if (iova < 0n || iova + BigInt(length) > this.#dmaMask) {
      throw new IommuError('STATUS_INVALID_PARAMETER', `iova 0x${iova.toString(16)} + ${length} exceeds the edu DMA mask 0x${this.#dmaMask.toString(16)}`, { operation: op, argument: 'iova' });
    }
  }

  async #transfer(src: bigint, dst: bigint, length: number, cmd: number): Promise<void> {
    await this.#exclusive('DMA', async () => {
      // never reprogram a transfer in flight (the device ignores the writes anyway)
      await this.#poll(REG_DMA_CMD, CMD_START, 'DMA');
      this.#io('DMA', (r) => {
        r.barWrite64(0, REG_DMA_SRC, src);
        r.barWrite64(0, REG_DMA_DST, dst);
        r.barWrite64(0, REG_DMA_COUNT, BigInt(length));
        r.barWrite32(0, REG_DMA_CMD, cmd);
      });
      await this.#poll(REG_DMA_CMD, CMD_START, 'DMA');
    });
  }

  /** One operation at a time on this device (the register file is shared). */
  async #exclusive(what: string, fn: () => Promise<void>): Promise<void> {
    const start = Date.now();
    while (this.#busy) {
      if (Date.now() - start > this.#timeoutMs) throw new EduTimeoutError('edu: another operation is still running', `EduDevice.${what}`);
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
      const v = this.#io(what, (r) => r.barRead32(0, reg) >>> 0);
      if (v === 0xffffffff) {
        throw new IommuError('STATUS_DEVICE_REMOVED', `edu: the device reads all-ones (hardware error or removed) while waiting for ${what}`, { operation: `EduDevice.${what}` });
      }
      if ((v & bit) === 0) return;
      if (Date.now() - start > this.#timeoutMs) {
        throw new EduTimeoutError(`edu: ${what} did not complete within ${this.#timeoutMs} ms (register 0x${reg.toString(16)} = 0x${v.toString(16)})`, `EduDevice.${what}`);
      }
      if (i < 4) await Promise.resolve();
      else {
        await sleep(delay);
        delay = Math.min(delay === 0 ? 1 : delay * 2, 20);
      }
    }
  }
}
