/**
 * A device put to use the way a driver script does, shared by the sweeps (test/sweep/world.ts,
 * removal.ts, leak.ts) and the hot-unplug scenario (test/support/hot-unplug.ts): a platform's V3
 * interface, and create → attach → map → a DMA round trip through the edu device whose bytes must
 * arrive.
 */
import {
  DomainTypeTranslate,
  EduDevice,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  type DmaMemory,
  type IommuDmaDevice,
  type IommuDmaDomain,
  type IommuPlatform,
  type PhysicalDeviceObject,
} from '../../lib/index.js';
import { buildInterfaceEx, type DMA_IOMMU_INTERFACE_V3 } from '../../lib/wdk/interface.js';

const PAGE = 4096n;

/** Where `roundTrip` maps its two pages. */
export const ROUND_TRIP_IOVA = 0x100000n;

/** The V3 table of `p`'s interface. */
export function interfaceV3(p: IommuPlatform): DMA_IOMMU_INTERFACE_V3 {
  const i = buildInterfaceEx(p, 3, 0n);
  if (i.Version !== 3) throw new Error('unreachable');
  return i.V3;
}

/** A device in use: attached to its domain, the memory mapped, the edu driver bus-mastering. */
export interface DeviceInUse {
  dev: IommuDmaDevice;
  dom: IommuDmaDomain;
  mem: DmaMemory;
  edu: EduDevice;
}

/** What `roundTrip` made so far (null: not made yet), and whether it attached and mapped. */
export type HeldDevice = { [K in keyof DeviceInUse]: DeviceInUse[K] | null } & { attached: boolean; mapped: boolean };

export function nothingHeld(): HeldDevice {
  return { dev: null, dom: null, mem: null, edu: null, attached: false, mapped: false };
}

/**
 * Create a device for `pdo` and a Translate domain, attach, map two pages of new DMA memory
 * read-write at ROUND_TRIP_IOVA, then move 256 bytes (a pattern from `seed`) from page 0 into the
 * device and back out into page 1. Each handle goes into `held` as soon as it exists, so a caller
 * can release what a failure left. Resolves to what it made and whether the bytes arrived in page 1.
 */
export async function roundTrip(
  p: IommuPlatform,
  V3: DMA_IOMMU_INTERFACE_V3,
  pdo: PhysicalDeviceObject,
  held: HeldDevice,
  options: { seed: number; timeoutMs: number },
): Promise<DeviceInUse & { moved: boolean }> {
  const dev = (held.dev = V3.CreateDevice(pdo));
  const dom = (held.dom = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null));
  V3.AttachDeviceEx(dom, dev);
  held.attached = true;
  const mem = (held.mem = p.allocateDmaMemory(2n * PAGE));
  V3.MapLogicalRangeEx(dom, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, mem.asMdl(), ROUND_TRIP_IOVA, null, null);
  held.mapped = true;
  const edu = (held.edu = new EduDevice(p.deviceRegions(dev), { timeoutMs: options.timeoutMs }));
  edu.enableBusMaster();
  const data = new Uint8Array(256).map((_v, i) => (i * 13 + options.seed) & 0xff);
  mem.bytes.set(data);
  await edu.dmaToDevice(ROUND_TRIP_IOVA, data.length);
  await edu.dmaFromDevice(ROUND_TRIP_IOVA + PAGE, data.length);
  const got = mem.bytes.subarray(Number(PAGE), Number(PAGE) + data.length);
  return { dev, dom, mem, edu, moved: got.every((v, i) => v === data[i]) };
}

/**
 * Release what `held` holds, in dependency order: unmap, free the memory, detach, delete the domain,
 * delete the device. Each step runs through `step` (by default it just runs, so a failure throws);
 * `held` is left holding nothing.
 */
export function releaseHeld(
  V3: DMA_IOMMU_INTERFACE_V3,
  held: HeldDevice,
  step: (name: string, fn: () => void) => void = (_name, fn) => fn(),
): void {
  const { dev, dom, mem, attached, mapped } = held;
  Object.assign(held, nothingHeld());
  if (mapped && dom) step('UnmapLogicalRange', () => V3.UnmapLogicalRange(dom, ROUND_TRIP_IOVA, 2n));
  if (mem) step('DmaMemory.free', () => mem.free());
  if (attached && dev) step('DetachDeviceEx', () => V3.DetachDeviceEx(dev));
  if (dom) step('DeleteDomain', () => V3.DeleteDomain(dom));
  if (dev) step('DeleteDevice', () => V3.DeleteDevice(dev));
}
