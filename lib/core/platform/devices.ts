/**
 * Devices: the PDO cache (enumerateDevices / findDevice), IOMMU_DMA_DEVICE creation and deletion,
 * the implicit devices the V1 members open for a PDO, and the device queries
 * (QueryAvailableDomainTypes, QueryDeviceInfo).
 */
import type { PciDeviceInfo } from '../../backend/contract.js';
import {
  IommuDeviceCreationConfigTypeAcpi,
  IommuDeviceCreationConfigTypeDeviceId,
  IommuDeviceCreationConfigTypeNone,
  IommuDeviceCreationConfigTypePasid,
  PasidConfigTypeDefaultPasidOnly,
  PasidConfigTypePasidTaggedDma,
} from '../../wdk/constants.js';
import type { IOMMU_DEVICE_CREATION_CONFIGURATION, IOMMU_DMA_DEVICE_INFORMATION } from '../../wdk/types.js';
import { IommuDmaDevice, PhysicalDeviceObject } from '../objects.js';
import { viaBackend } from './backend-call.js';
import type { PlatformContext } from './context.js';
import { DeviceState } from './state.js';
import { describe, invalidArg, invalidOption, isAbsent, linkedList, statusError } from './validate.js';

/** The PCI functions of the platform, as PDOs usable wherever the WDK takes one. */
export function enumerateDevices(ctx: PlatformContext): PhysicalDeviceObject[] {
  const op = 'enumerateDevices';
  ctx.live(op);
  return viaBackend(op, () => ctx.backend.enumerateDevices()).map((info) => pdoFor(ctx, info));
}

function pdoFor(ctx: PlatformContext, info: PciDeviceInfo): PhysicalDeviceObject {
  const prev = ctx.pdos.get(info.bdf);
  if (prev && prev.usable === info.usable && prev.iommuGroup === info.iommuGroup && prev.driver === info.driver) return prev;
  const pdo = new PhysicalDeviceObject(info);
  // keep the identity of a PDO that has live state
  if (prev && ctx.byPdo.has(prev)) return prev;
  ctx.pdos.set(info.bdf, pdo);
  return pdo;
}

/** The PDO for a BDF ('0000:00:03.0' or '00:03.0'), or undefined. */
export function findDevice(ctx: PlatformContext, bdf: unknown): PhysicalDeviceObject | undefined {
  ctx.live('findDevice');
  if (typeof bdf !== 'string') throw invalidOption('findDevice', 'bdf', `must be a PCI address string such as '0000:00:03.0' (got ${describe(bdf)})`);
  const full = /^[0-9a-f]{4}:/i.test(bdf) ? bdf.toLowerCase() : `0000:${bdf.toLowerCase()}`;
  return enumerateDevices(ctx).find((d) => d.bdf === full);
}

/** A PDO argument: one of this platform's current PDOs (or one with live state). */
export function checkPdo(ctx: PlatformContext, pdo: unknown, op: string, n: number): PhysicalDeviceObject {
  if (!(pdo instanceof PhysicalDeviceObject)) throw invalidArg(op, n, 'PhysicalDeviceObject', 'is not a device object from enumerateDevices()');
  if (ctx.pdos.get(pdo.bdf) !== pdo && !ctx.byPdo.has(pdo)) {
    throw invalidArg(op, n, 'PhysicalDeviceObject', 'belongs to another platform (or is stale: enumerate again)');
  }
  if (ctx.stalePdos.has(pdo) && !ctx.byPdo.has(pdo)) {
    throw invalidArg(op, n, 'PhysicalDeviceObject', `is stale: ${pdo.bdf} was removed (enumerate again for a device that appeared there since)`);
  }
  return pdo;
}

export function openDevice(ctx: PlatformContext, pdo: PhysicalDeviceObject, op: string, tagged: boolean, suppress: boolean): DeviceState {
  if (pdo.iommuGroup === null) {
    throw statusError('STATUS_NOT_FOUND', op, `${pdo.bdf} is not behind an IOMMU (no IOMMU group)`, 'PhysicalDeviceObject');
  }
  if (ctx.byPdo.has(pdo)) {
    throw statusError('STATUS_DEVICE_BUSY', op, `${pdo.bdf} already has an IOMMU_DMA_DEVICE on this platform: DeleteDevice it first`, 'PhysicalDeviceObject');
  }
  const id = viaBackend(op, () => ctx.backend.openDevice(pdo.bdf), {
    ENOENT: 'STATUS_NOT_FOUND',
    ENODEV: 'STATUS_NOT_FOUND',
    EBUSY: 'STATUS_DEVICE_BUSY',
    EPERM: 'STATUS_ACCESS_DENIED',
    EACCES: 'STATUS_ACCESS_DENIED',
  }, pdo.whyNotUsable ? { message: `cannot open ${pdo.bdf}: ${pdo.whyNotUsable}` } : {});
  const handle = new IommuDmaDevice(pdo);
  const state = new DeviceState(handle, pdo, id, tagged, suppress);
  ctx.reg.devices.set(handle, state);
  ctx.reg.liveDevices.add(state);
  ctx.byPdo.set(pdo, state);
  return state;
}

/** The device configurations of CreateDevice as a list (a single one, a linked list or an array). */
function configList(DeviceConfig: unknown, op: string): IOMMU_DEVICE_CREATION_CONFIGURATION[] {
  if (isAbsent(DeviceConfig)) return [];
  if (Array.isArray(DeviceConfig)) return [...DeviceConfig];
  return linkedList<IOMMU_DEVICE_CREATION_CONFIGURATION>(DeviceConfig, 'NextConfiguration', op, 2, 'DeviceConfig');
}

/** IOMMU_DEVICE_CREATE. */
export function createDevice(
  ctx: PlatformContext,
  DeviceObject: PhysicalDeviceObject,
  DeviceConfig?: IOMMU_DEVICE_CREATION_CONFIGURATION | readonly IOMMU_DEVICE_CREATION_CONFIGURATION[] | null,
): IommuDmaDevice {
  const op = 'CreateDevice';
  ctx.live(op);
  const pdo = checkPdo(ctx, DeviceObject, op, 1);
  if (ctx.stalePdos.has(pdo)) throw invalidArg(op, 1, 'DeviceObject', `is stale: ${pdo.bdf} was removed (DeleteDevice its old device, enumerate again)`);
  let tagged = false;
  let suppress = false;
  const arch = ctx.backend.capabilities.arch;
  for (const c of configList(DeviceConfig, op)) {
    if (!c || typeof c !== 'object') throw invalidArg(op, 2, 'DeviceConfig', 'entries must be IOMMU_DEVICE_CREATION_CONFIGURATION objects');
    switch (c.ConfigType) {
      case IommuDeviceCreationConfigTypeNone:
        break;
      case IommuDeviceCreationConfigTypeAcpi:
        if (arch !== 'arm64') throw invalidArg(op, 2, 'DeviceConfig', 'ACPI configurations are for ACPI-enumerated Arm64 devices only; this platform is x86_64 PCI');
        throw invalidArg(op, 2, 'DeviceConfig', 'ACPI configurations are for ACPI-enumerated devices; this device is PCI');
      case IommuDeviceCreationConfigTypeDeviceId:
        throw invalidArg(op, 2, 'DeviceConfig', 'IommuDeviceCreationConfigTypeDeviceId is undocumented and not supported');
      case IommuDeviceCreationConfigTypePasid: {
        const p = c.Pasid;
        if (!p || (p.ConfigType !== PasidConfigTypeDefaultPasidOnly && p.ConfigType !== PasidConfigTypePasidTaggedDma)) {
          throw invalidArg(op, 2, 'DeviceConfig', 'Pasid.ConfigType must be PasidConfigTypeDefaultPasidOnly or PasidConfigTypePasidTaggedDma');
        }
        if (p.ConfigType === PasidConfigTypePasidTaggedDma) {
          if (pdo.maxPasidLog2 === 0 || !ctx.backend.capabilities.pasid) {
            throw invalidArg(op, 2, 'DeviceConfig', `${pdo.bdf} has no PASID capability: PASID-tagged DMA cannot be enabled`);
          }
          tagged = true;
        }
        suppress = !!p.SuppressPasidFaults;
        break;
      }
      default:
        throw invalidArg(op, 2, 'DeviceConfig', `has an invalid ConfigType ${String(c.ConfigType)}`);
    }
  }
  const implicit = ctx.byPdo.get(pdo);
  if (implicit?.implicit && !tagged) {
    // a V1 member opened it first: the V2 device object is that same device
    implicit.implicit = false;
    return implicit.handle;
  }
  return openDevice(ctx, pdo, op, tagged, suppress).handle;
}

/** IOMMU_DEVICE_DELETE. */
export function deleteDevice(ctx: PlatformContext, DmaDevice: IommuDmaDevice): void {
  const op = 'DeleteDevice';
  ctx.live(op);
  const d = ctx.reg.device(DmaDevice, op, 1);
  if (d.domain) throw statusError('STATUS_RESOURCE_IN_USE', op, `${d.pdo.bdf} is still attached to a domain: DetachDeviceEx first`);
  if (d.pasids.size > 0) throw statusError('STATUS_RESOURCE_IN_USE', op, `${d.pdo.bdf} still has ${d.pasids.size} PASID device(s): DeletePasidDevice first`);
  if (d.callback) throw statusError('STATUS_RESOURCE_IN_USE', op, `${d.pdo.bdf} still has an interface state-change callback: UnregisterInterfaceStateChangeCallback first`);
  closeDevice(ctx, d, op);
}

/** Close the backend's device and forget it (throws the backend's error, as `op`'s IommuError, after forgetting). */
export function closeDevice(ctx: PlatformContext, d: DeviceState, op: string): void {
  try {
    viaBackend(op, () => ctx.backend.closeDevice(d.id));
  } finally {
    d.deleted = true;
    d.fault = null;
    ctx.reg.liveDevices.delete(d);
    ctx.byPdo.delete(d.pdo);
  }
}

/** The device state for a PDO in the V1 members: created on first use. */
export function v1Device(ctx: PlatformContext, pdo: PhysicalDeviceObject, op: string): DeviceState {
  const existing = ctx.byPdo.get(pdo);
  if (existing) return existing;
  const d = openDevice(ctx, pdo, op, false, false);
  d.implicit = true;
  return d;
}

/** IOMMU_DEVICE_QUERY_DOMAIN_TYPES: the mask of 1 << IOMMU_DMA_DOMAIN_TYPE. */
export function queryAvailableDomainTypes(ctx: PlatformContext, DmaDevice: IommuDmaDevice): number {
  const op = 'QueryAvailableDomainTypes';
  ctx.live(op);
  const d = ctx.reg.device(DmaDevice, op, 1);
  return availableDomainTypes(ctx, d, op);
}

export function availableDomainTypes(ctx: PlatformContext, d: DeviceState, op: string): number {
  if (d.removed) return 0;
  const mask = viaBackend(op, () => ctx.backend.availableDomainTypes(d.id), { ENODEV: 'STATUS_DEVICE_REMOVED' });
  return mask & ctx.backend.capabilities.domainTypes;
}

/** IOMMU_DEVICE_QUERY_INFORMATION. `Size` is the caller's buffer size (≥ 3 bytes). */
export function queryDeviceInfo(ctx: PlatformContext, DmaDevice: IommuDmaDevice, Size: number): IOMMU_DMA_DEVICE_INFORMATION {
  const op = 'QueryDeviceInfo';
  ctx.live(op);
  const d = ctx.reg.device(DmaDevice, op, 1);
  if (typeof Size !== 'number' || !Number.isInteger(Size) || Size < 0) throw invalidArg(op, 2, 'Size', 'must be a non-negative integer');
  if (Size < 3) throw statusError('STATUS_BUFFER_TOO_SMALL', op, `Size ${Size} is below sizeof(IOMMU_DMA_DEVICE_INFORMATION) = 3`, 'Size');
  return {
    DefaultPasidEnabled: true,
    PasidTaggedDmaEnabled: d.pasidTagged,
    PasidFaultsSuppressed: d.pasidTagged && d.suppressPasidFaults,
  };
}
