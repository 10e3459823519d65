/**
 * Attaching devices (their RID, or one of their PASIDs) to domains, with the kernel's rules:
 * EBUSY when already attached, EINVAL when an IOMMU group mate is attached elsewhere (a group
 * moves as one), EADDRINUSE when the domain's areas clash with what the device reserves
 * (SimDomain.checkAttach); PASIDs: EOPNOTSUPP without the capability, EINVAL out of range,
 * EBUSY taken, ENOENT on detaching one not attached. Attachment keys: `d<handle>` for the RID,
 * `d<handle>/<pasid>` for a PASID.
 */
import type { SimBus } from './bus.js';
import type { SimDomain } from './domain.js';
import { SIM_SYSCALLS } from './injection.js';
import type { SimDevice } from './machine.js';
import type { DeviceHandle } from './regions.js';
import { describe, ERR, fail } from './util.js';

export function attachDevice(bus: SimBus, d: SimDomain, dh: DeviceHandle): void {
  const S = SIM_SYSCALLS.attach;
  const dev = dh.device;
  if (dev.domain !== null) fail(ERR.EBUSY, S, `${dev.bdf} is already attached to domain ${dev.domain.handle}`);
  for (const mate of bus.devices.values()) {
    if (mate !== dev && mate.iommuGroup === dev.iommuGroup && mate.domain !== null && mate.domain !== d) {
      fail(ERR.EINVAL, S, `${dev.bdf} shares IOMMU group ${dev.iommuGroup} with ${mate.bdf}, attached to domain ${mate.domain.handle}`);
    }
  }
  d.checkAttach(dev);
  dev.domain = d;
  d.addAttachment(`d${dh.handle}`, dev);
}

export function detachDevice(dh: DeviceHandle): void {
  const dev = dh.device;
  if (dev.domain === null) return; // the kernel's detach of a detached device is a no-op
  dev.domain.removeAttachment(`d${dh.handle}`);
  dev.domain = null;
}

export function checkPasid(pasid: unknown): asserts pasid is number {
  if (typeof pasid !== 'number' || !Number.isInteger(pasid)) throw new TypeError(`pasid must be an integer, got ${describe(pasid)}`);
}

export function attachPasid(d: SimDomain, dh: DeviceHandle, pasid: number): void {
  const S = SIM_SYSCALLS.attachPasid;
  const dev = dh.device;
  if (dev.maxPasidLog2 === 0) fail(ERR.EOPNOTSUPP, S, `${dev.bdf} has no PASID capability`);
  if (pasid < 1 || pasid >= 2 ** dev.maxPasidLog2) {
    fail(ERR.EINVAL, S, `PASID ${pasid} outside 1..${2 ** dev.maxPasidLog2 - 1} of ${dev.bdf}`);
  }
  const cur = dev.pasids.get(pasid);
  if (cur !== undefined) fail(ERR.EBUSY, S, `PASID ${pasid} of ${dev.bdf} is attached to domain ${cur.handle}`);
  d.checkAttach(dev);
  dev.pasids.set(pasid, d);
  d.addAttachment(`d${dh.handle}/${pasid}`, dev);
}

export function detachPasid(dh: DeviceHandle, pasid: number): void {
  const dev = dh.device;
  const d = dev.pasids.get(pasid);
  if (d === undefined) fail(ERR.ENOENT, SIM_SYSCALLS.detachPasid, `PASID ${pasid} of ${dev.bdf} is not attached`);
  dev.pasids.delete(pasid);
  d.removeAttachment(`d${dh.handle}/${pasid}`);
}

/** Drop every attachment of the device (close, removal). */
export function detachAll(d: SimDevice, handle: number): void {
  if (d.domain !== null) {
    d.domain.removeAttachment(`d${handle}`);
    d.domain = null;
  }
  for (const [pasid, dom] of d.pasids) dom.removeAttachment(`d${handle}/${pasid}`);
  d.pasids.clear();
}
