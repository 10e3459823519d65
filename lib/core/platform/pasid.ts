/** PASID devices (V3): CreatePasidDevice / DeletePasidDevice / AttachPasidDevice / DetachPasidDevice. */
import type { IommuDmaDevice, IommuDmaDomain } from '../objects.js';
import { IommuDmaPasidDevice } from '../objects.js';
import type { IommuError } from '../../errors.js';
import { toIommuError, viaBackend } from './backend-call.js';
import type { PlatformContext } from './context.js';
import { PasidState } from './state.js';
import { invalidArg, statusError } from './validate.js';

/** IOMMU_PASID_DEVICE_CREATE: returns { PasidDevice, Asid }. */
export function createPasidDevice(ctx: PlatformContext, DmaDevice: IommuDmaDevice): { PasidDevice: IommuDmaPasidDevice; Asid: number } {
  const op = 'CreatePasidDevice';
  ctx.live(op);
  const d = ctx.reg.device(DmaDevice, op, 1);
  if (!d.pasidTagged) throw invalidArg(op, 1, 'DmaDevice', `${d.pdo.bdf} was not created with a PasidConfigTypePasidTaggedDma configuration`);
  const max = 2 ** Math.min(d.pdo.maxPasidLog2, 20);
  let pasid = -1;
  for (let p = 1; p < max; p++) {
    if (!d.pasids.has(p)) {
      pasid = p;
      break;
    }
  }
  if (pasid < 0) throw statusError('STATUS_NONE_MAPPED', op, `no free PASID on ${d.pdo.bdf} (${max - 1} in use)`);
  const handle = new IommuDmaPasidDevice(d.handle, pasid);
  const s = new PasidState(handle, d, pasid);
  d.pasids.set(pasid, s);
  ctx.reg.pasids.set(handle, s);
  return { PasidDevice: handle, Asid: pasid };
}

/** IOMMU_PASID_DEVICE_DELETE. */
export function deletePasidDevice(ctx: PlatformContext, PasidDevice: IommuDmaPasidDevice): void {
  const op = 'DeletePasidDevice';
  ctx.live(op);
  const p = ctx.reg.pasid(PasidDevice, op, 1);
  if (p.domain) throw statusError('STATUS_RESOURCE_IN_USE', op, `PASID ${p.pasid} is still attached: DetachPasidDevice first`);
  p.deleted = true;
  p.device.pasids.delete(p.pasid);
}

/** IOMMU_DOMAIN_ATTACH_PASID_DEVICE. */
export function attachPasidDevice(ctx: PlatformContext, Domain: IommuDmaDomain, PasidDevice: IommuDmaPasidDevice): void {
  const op = 'AttachPasidDevice';
  ctx.live(op);
  const dom = ctx.reg.domain(Domain, op, 1);
  const p = ctx.reg.pasid(PasidDevice, op, 2);
  if (p.domain) throw statusError('STATUS_UNSUCCESSFUL', op, `PASID ${p.pasid} of ${p.device.pdo.bdf} is already attached`);
  if (dom.kind !== 'translate') throw invalidArg(op, 1, 'Domain', 'PASID devices attach to DomainTypeTranslate domains only');
  viaBackend(op, () => ctx.backend.attachPasid(dom.id, p.device.id, p.pasid), {
    EOPNOTSUPP: 'STATUS_INVALID_PARAMETER_1',
    EINVAL: 'STATUS_ACCESS_DENIED',
    ENODEV: 'STATUS_DEVICE_REMOVED',
  });
  p.domain = dom;
  dom.pasids.add(p);
}

/** IOMMU_DOMAIN_DETACH_PASID_DEVICE. */
export function detachPasidDevice(ctx: PlatformContext, PasidDevice: IommuDmaPasidDevice): void {
  const op = 'DetachPasidDevice';
  ctx.live(op);
  const p = ctx.reg.pasid(PasidDevice, op, 1);
  const dom = p.domain;
  if (!dom) throw invalidArg(op, 1, 'PasidDevice', `PASID ${p.pasid} is not attached`);
  // as DetachDeviceEx: a removed device's PASID is recorded detached, and STATUS_DEVICE_REMOVED reported
  let failure: IommuError | null = p.device.removed ? statusError('STATUS_DEVICE_REMOVED', op, `${p.device.pdo.bdf} was removed; PASID ${p.pasid} is now recorded detached`, 'PasidDevice') : null;
  if (!failure) {
    try {
      ctx.backend.detachPasid(p.device.id, p.pasid);
    } catch (e) {
      failure = toIommuError(e, op, { ENODEV: 'STATUS_DEVICE_REMOVED' });
      if (failure.code !== 'STATUS_DEVICE_REMOVED') throw failure;
      p.device.removed = true;
    }
  }
  dom.pasids.delete(p);
  p.domain = null;
  if (failure) throw failure;
}
