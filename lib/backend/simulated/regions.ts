/**
 * An open device's handle record, and its VFIO regions (config space + BAR access by
 * pread/pwrite) as `DeviceRegions`.
 */
import type { DeviceRegions } from '../contract.js';
import type { SimDevice } from './machine.js';
import { describe, ERR, fail, hex, U64_MAX } from './util.js';

/** An open device (the VFIO cdev fd). The backend forgets it at close; regions keep it to answer EBADF. */
export class DeviceHandle {
  closed = false;
  constructor(
    readonly handle: number,
    readonly device: SimDevice,
  ) {}
}

/** Config space + BAR access of one open device (pread/pwrite on the VFIO regions). */
export class SimRegions implements DeviceRegions {
  readonly #dh: DeviceHandle;
  readonly #backendClosed: () => boolean;
  constructor(backendClosed: () => boolean, dh: DeviceHandle) {
    this.#backendClosed = backendClosed;
    this.#dh = dh;
  }

  #device(syscall: string): SimDevice {
    if (this.#backendClosed() || this.#dh.closed) fail(ERR.EBADF, syscall, 'device handle was closed');
    const d = this.#dh.device;
    if (d.removed) fail(ERR.ENODEV, syscall, `${d.bdf} was removed`);
    return d;
  }

  configRead(offset: number, size: 1 | 2 | 4): number {
    const d = this.#device('pread');
    checkAccess(offset, size, d.model.config.size, 'pread');
    return d.model.config.read(offset, size);
  }

  configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    const d = this.#device('pwrite');
    checkAccess(offset, size, d.model.config.size, 'pwrite');
    checkValue32(value);
    d.model.config.write(offset, size, value >>> 0);
  }

  barRead32(bar: number, offset: number): number {
    const d = this.#device('pread');
    checkBar(d, bar, offset, 4, 'pread');
    return Number(d.model.mmioRead(bar, offset, 4));
  }

  barWrite32(bar: number, offset: number, value: number): void {
    const d = this.#device('pwrite');
    checkBar(d, bar, offset, 4, 'pwrite');
    checkValue32(value);
    d.model.mmioWrite(bar, offset, 4, BigInt(value >>> 0));
  }

  barRead64(bar: number, offset: number): bigint {
    const d = this.#device('pread');
    checkBar(d, bar, offset, 8, 'pread');
    return d.model.mmioRead(bar, offset, 8);
  }

  barWrite64(bar: number, offset: number, value: bigint): void {
    const d = this.#device('pwrite');
    checkBar(d, bar, offset, 8, 'pwrite');
    if (typeof value !== 'bigint') throw new TypeError(`value must be a bigint, got ${describe(value)}`);
    if (value < 0n || value > U64_MAX) fail(ERR.EINVAL, 'pwrite', 'value does not fit in 64 bits');
    d.model.mmioWrite(bar, offset, 8, value);
  }
}

function checkAccess(offset: number, size: number, limit: number, syscall: string): void {
  if (typeof offset !== 'number' || !Number.isInteger(offset)) throw new TypeError(`offset must be an integer, got ${describe(offset)}`);
  if (size !== 1 && size !== 2 && size !== 4) throw new TypeError(`size must be 1, 2 or 4, got ${describe(size)}`);
  if (offset < 0 || offset + size > limit || offset % size !== 0) {
    fail(ERR.EINVAL, syscall, `config access of ${size} bytes at ${hex(offset)} is outside the ${limit}-byte space or unaligned`);
  }
}

function checkValue32(value: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < -0x80000000 || value > 0xffffffff) {
    throw new TypeError(`value must be a 32-bit integer, got ${describe(value)}`);
  }
}

function checkBar(d: SimDevice, bar: number, offset: number, size: number, syscall: string): void {
  if (typeof bar !== 'number' || !Number.isInteger(bar)) throw new TypeError(`bar must be an integer, got ${describe(bar)}`);
  if (typeof offset !== 'number' || !Number.isInteger(offset)) throw new TypeError(`offset must be an integer, got ${describe(offset)}`);
  const barSize = bar >= 0 && bar <= 5 ? d.model.barSize(bar) : 0;
  if (barSize === 0) fail(ERR.EINVAL, syscall, `${d.bdf} has no BAR ${bar}`);
  if (offset < 0 || offset + size > barSize || offset % size !== 0) {
    fail(ERR.EINVAL, syscall, `${size}-byte access at ${hex(offset)} is outside BAR ${bar} (${hex(barSize)} bytes) or unaligned`);
  }
}
