/**
 * PCI enumeration from sysfs → PciDeviceInfo, plus the VFIO node paths of a device. Every path is
 * relative to a root ('/' normally; tests pass a fake tree).
 */
import { accessSync, constants as fsc, existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { IommuModelKind, PciDeviceInfo } from '../contract.js';
import { type GroupViability, groupViability } from '../groups.js';
import { ERR } from './util.js';

export interface SysPaths {
  readonly root: string;
}

export const DEFAULT_PATHS: SysPaths = { root: '/' };

const BDF_RE = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;

export function isBdf(s: string): boolean {
  return BDF_RE.test(s);
}

export function p(paths: SysPaths, ...parts: string[]): string {
  return join(paths.root, ...parts);
}

function readHex(file: string): number | null {
  try {
    return Number.parseInt(readFileSync(file, 'utf8').trim(), 16);
  } catch {
    return null;
  }
}

/** Raw facts about one PCI function from sysfs. */
export interface SysPciDevice {
  readonly bdf: string;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly classCode: number;
  readonly iommuGroup: number | null;
  readonly driver: string | null;
  /** vfioN of the device cdev (iommufd path), when bound to vfio-pci on a kernel with VFIO_DEVICE_CDEV. */
  readonly vfioDev: string | null;
  /** Devices in the same IOMMU group (BDFs, including this one). */
  readonly groupDevices: readonly string[];
  readonly requesterId: number;
  readonly maxPasidLog2: number;
}

export function requesterIdOf(bdf: string): number {
  const [, bus, rest] = bdf.split(':');
  const [dev, fn] = rest.split('.');
  return (Number.parseInt(bus, 16) << 8) | (Number.parseInt(dev, 16) << 3) | Number.parseInt(fn, 10);
}

/** PASID capability (extended capability 0x1b) from the config space file, when readable. */
function pasidLog2(configFile: string): number {
  let cfg: Buffer;
  try {
    cfg = readFileSync(configFile);
  } catch {
    return 0;
  }
  if (cfg.length < 0x104) return 0; // no extended config space (or not root)
  let off = 0x100;
  for (let hops = 0; off >= 0x100 && off + 8 <= cfg.length && hops < 64; hops++) {
    const hdr = cfg.readUInt32LE(off);
    if (hdr === 0 || hdr === 0xffffffff) return 0;
    if ((hdr & 0xffff) === 0x1b) {
      const cap = cfg.readUInt16LE(off + 4);
      return (cap >> 8) & 0x1f;
    }
    off = (hdr >>> 20) & 0xffc;
  }
  return 0;
}

export function readPciDevice(paths: SysPaths, bdf: string): SysPciDevice | null {
  const dir = p(paths, 'sys/bus/pci/devices', bdf);
  if (!existsSync(dir)) return null;
  let iommuGroup: number | null = null;
  let groupDevices: string[] = [];
  try {
    const g = readlinkSync(join(dir, 'iommu_group'));
    iommuGroup = Number.parseInt(basename(g), 10);
    groupDevices = readdirSync(p(paths, 'sys/kernel/iommu_groups', String(iommuGroup), 'devices')).filter(isBdf).sort();
  } catch {
    /* not behind an IOMMU */
  }
  let driver: string | null = null;
  try {
    driver = basename(readlinkSync(join(dir, 'driver')));
  } catch {
    /* unbound */
  }
  let vfioDev: string | null = null;
  try {
    vfioDev = readdirSync(join(dir, 'vfio-dev')).find((n) => /^vfio\d+$/.test(n)) ?? null;
  } catch {
    /* no cdev */
  }
  return {
    bdf,
    vendorId: readHex(join(dir, 'vendor')) ?? 0,
    deviceId: readHex(join(dir, 'device')) ?? 0,
    classCode: readHex(join(dir, 'class')) ?? 0,
    iommuGroup,
    driver,
    vfioDev,
    groupDevices,
    requesterId: requesterIdOf(bdf),
    maxPasidLog2: pasidLog2(join(dir, 'config')),
  };
}

export function listPciDevices(paths: SysPaths): SysPciDevice[] {
  let names: string[];
  try {
    names = readdirSync(p(paths, 'sys/bus/pci/devices')).filter(isBdf).sort();
  } catch {
    return [];
  }
  return names.map((b) => readPciDevice(paths, b)).filter((d): d is SysPciDevice => d !== null);
}

export function canReadWrite(file: string): boolean {
  try {
    accessSync(file, fsc.R_OK | fsc.W_OK);
    return true;
  } catch {
    return false;
  }
}

export type UsableVia = 'iommufd' | 'vfio-type1';

/** The device's IOMMU group: its members, their drivers, and whether user space may own it. Null when not behind an IOMMU. */
export function groupOf(paths: SysPaths, d: SysPciDevice): GroupViability | null {
  if (d.iommuGroup === null) return null;
  const members = d.groupDevices.map((b) => (b === d.bdf ? d : readPciDevice(paths, b))).filter((m): m is SysPciDevice => m !== null);
  return groupViability(d.iommuGroup, members.map((m) => ({ bdf: m.bdf, driver: m.driver })));
}

/**
 * Why a device cannot be opened by the given backend, as the errno and call the kernel would fail
 * with (the checks in the kernel's order: the device and its driver, its node, then the group:
 * EPERM at VFIO_DEVICE_BIND_IOMMUFD / VFIO_GROUP_SET_CONTAINER when a group member is bound to a
 * host driver), or null when it can.
 */
export function openRefusal(paths: SysPaths, d: SysPciDevice, via: UsableVia): { errno: number; syscall: string; message: string } | null {
  const refuse = (errno: number, syscall: string, message: string) => ({ errno, syscall, message });
  if (d.iommuGroup === null) return refuse(ERR.ENODEV, 'open', 'not behind an IOMMU (no iommu_group)');
  if (d.driver !== 'vfio-pci') {
    const fix = `bind it: \`echo vfio-pci > /sys/bus/pci/devices/${d.bdf}/driver_override; ${d.driver ? `echo ${d.bdf} > /sys/bus/pci/devices/${d.bdf}/driver/unbind; ` : ''}echo ${d.bdf} > /sys/bus/pci/drivers_probe\``;
    return refuse(ERR.ENODEV, 'open', `${d.driver ? `bound to ${d.driver}, not vfio-pci` : 'not bound to vfio-pci'} (${fix})`);
  }
  const node = via === 'iommufd' ? (d.vfioDev ? p(paths, 'dev/vfio/devices', d.vfioDev) : null) : p(paths, 'dev/vfio', String(d.iommuGroup));
  if (node === null) return refuse(ERR.ENODEV, 'open', 'no VFIO device cdev (kernel without VFIO_DEVICE_CDEV)');
  if (!existsSync(node)) return refuse(ERR.ENOENT, 'open', `${node} does not exist`);
  if (!canReadWrite(node)) return refuse(ERR.EACCES, 'open', `${node} is not readable and writable by this user (fix: \`sudo chown "$USER" ${node}\`, or run as root)`);
  const g = groupOf(paths, d);
  if (g && !g.viable) return refuse(ERR.EPERM, via === 'iommufd' ? 'VFIO_DEVICE_BIND_IOMMUFD' : 'VFIO_GROUP_SET_CONTAINER', g.problem!);
  return null;
}

/** Why a device cannot be opened by the given backend, or null when it can. */
export function whyNotUsable(paths: SysPaths, d: SysPciDevice, via: UsableVia): string | null {
  return openRefusal(paths, d, via)?.message ?? null;
}

export function toPciDeviceInfo(paths: SysPaths, d: SysPciDevice, via: UsableVia, maxPasidLog2?: number): PciDeviceInfo {
  const why = whyNotUsable(paths, d, via);
  const base = {
    bdf: d.bdf,
    vendorId: d.vendorId,
    deviceId: d.deviceId,
    classCode: d.classCode,
    iommuGroup: d.iommuGroup,
    requesterId: d.requesterId,
    driver: d.driver,
    usable: why === null,
    maxPasidLog2: maxPasidLog2 ?? d.maxPasidLog2,
  };
  return why === null ? base : { ...base, whyNotUsable: why };
}

/** /sys/module/vfio_iommu_type1/parameters/dma_entry_limit, or null when not readable. */
export function dmaEntryLimit(paths: SysPaths): number | null {
  try {
    const v = Number.parseInt(readFileSync(p(paths, 'sys/module/vfio_iommu_type1/parameters/dma_entry_limit'), 'utf8').trim(), 10);
    return Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

/** The IOMMU the kernel drives, from /sys/class/iommu (see BackendCapabilities.iommu). */
export interface DetectedIommu {
  readonly model: IommuModelKind;
  /** The /sys/class/iommu entries (e.g. dmar0, ivhd0, 0000:00:02.0). */
  readonly units: readonly string[];
  /** The platform is a QEMU machine (DMI sys_vendor): its emulated IOMMU, with that model's limits. */
  readonly emulated: boolean;
}

/** The model of one /sys/class/iommu entry, by its name and where it sits in the device tree. */
export function iommuUnitModel(name: string, target: string): IommuModelKind {
  if (/^dmar\d+$/.test(name)) return 'vtd';
  if (/^ivhd\d+$/.test(name)) return 'amd';
  if (/\/virtio\d+\/iommu\//.test(target)) return 'virtio';
  if (/^smmu3\./.test(name) || /arm-smmu-v3/.test(target)) return 'smmuv3';
  return 'unknown';
}

export function detectIommu(paths: SysPaths): DetectedIommu {
  const dir = p(paths, 'sys/class/iommu');
  let units: string[] = [];
  try {
    units = readdirSync(dir).sort();
  } catch {
    /* no IOMMU class: no IOMMU */
  }
  const models = new Set<IommuModelKind>();
  for (const u of units) {
    let target = '';
    try {
      target = readlinkSync(join(dir, u));
    } catch {
      /* not a link: name only */
    }
    models.add(iommuUnitModel(u, target));
  }
  let vendor = '';
  try {
    vendor = readFileSync(p(paths, 'sys/class/dmi/id/sys_vendor'), 'utf8').trim();
  } catch {
    /* no DMI (e.g. arm64 virt): look at the device tree */
    try {
      vendor = /qemu|linux,dummy-virt/i.test(readFileSync(p(paths, 'proc/device-tree/compatible'), 'latin1')) ? 'QEMU' : '';
    } catch {
      /* unknown */
    }
  }
  const known = [...models].filter((m) => m !== 'unknown');
  return { model: known.length === 1 ? known[0]! : 'unknown', units, emulated: vendor === 'QEMU' };
}
