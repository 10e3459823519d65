/**
 * DeviceRegions over a VFIO device fd: PCI config space and BARs through region pread/pwrite at
 * (region offset + register offset), one access of the requested width.
 */
import type { DeviceRegions } from '../contract.js';
import type { NativeAddon, NativeHandle } from './addon-types.js';
import { ERR, fail } from './util.js';

interface Region {
  readonly offset: bigint;
  readonly size: bigint;
}

/** Reads region info lazily per device fd (type1 re-opens the fd on every attach/detach). */
export class VfioRegions implements DeviceRegions {
  #cachedFor: NativeHandle | null = null;
  #regions = new Map<number, Region>();

  constructor(
    private readonly addon: NativeAddon,
    /** The device's current fd; throws when the device is closed. */
    private readonly current: () => NativeHandle,
  ) {}

  #region(index: number, syscall: string): { h: NativeHandle; r: Region } {
    const h = this.current();
    if (h !== this.#cachedFor) {
      this.#regions.clear();
      this.#cachedFor = h;
    }
    let r = this.#regions.get(index);
    if (!r) {
      const info = this.addon.deviceGetRegionInfo(h, index);
      r = { offset: info.offset, size: info.size };
      this.#regions.set(index, r);
    }
    if (r.size === 0n) fail(ERR.EINVAL, syscall, `region ${index} is not implemented by the device`);
    return { h, r };
  }

  #at(index: number, offset: number, size: number, syscall: string): { h: NativeHandle; off: bigint } {
    if (!Number.isInteger(offset) || offset < 0) throw new RangeError('offset must be a non-negative integer');
    const { h, r } = this.#region(index, syscall);
    if (BigInt(offset + size) > r.size) fail(ERR.EINVAL, syscall, `offset ${offset} + ${size} outside region ${index} (${r.size} bytes)`);
    return { h, off: r.offset + BigInt(offset) };
  }

  #bar(bar: number): number {
    if (!Number.isInteger(bar) || bar < 0 || bar > 5) throw new RangeError('bar must be 0..5');
    return bar;
  }

  configRead(offset: number, size: 1 | 2 | 4): number {
    if (size !== 1 && size !== 2 && size !== 4) throw new RangeError('size must be 1, 2 or 4');
    const { h, off } = this.#at(this.addon.constants.VFIO_PCI_CONFIG_REGION_INDEX, offset, size, 'pread');
    return this.addon.regionRead(h, off, size);
  }

  configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    if (size !== 1 && size !== 2 && size !== 4) throw new RangeError('size must be 1, 2 or 4');
    const { h, off } = this.#at(this.addon.constants.VFIO_PCI_CONFIG_REGION_INDEX, offset, size, 'pwrite');
    this.addon.regionWrite(h, off, size, value >>> 0);
  }

  barRead32(bar: number, offset: number): number {
    const { h, off } = this.#at(this.#bar(bar), offset, 4, 'pread');
    return this.addon.regionRead(h, off, 4);
  }

  barWrite32(bar: number, offset: number, value: number): void {
    const { h, off } = this.#at(this.#bar(bar), offset, 4, 'pwrite');
    this.addon.regionWrite(h, off, 4, value >>> 0);
  }

  barRead64(bar: number, offset: number): bigint {
    const { h, off } = this.#at(this.#bar(bar), offset, 8, 'pread');
    return this.addon.regionRead(h, off, 8);
  }

  barWrite64(bar: number, offset: number, value: bigint): void {
    const { h, off } = this.#at(this.#bar(bar), offset, 8, 'pwrite');
    this.addon.regionWrite(h, off, 8, BigInt.asUintN(64, value));
  }
}
