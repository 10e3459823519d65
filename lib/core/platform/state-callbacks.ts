/**
 * Interface state-change callbacks (Register/UnregisterInterfaceStateChangeCallback) and the
 * backend's device events (removal, re-appearance, policy changes) that drive them.
 */
import type { DeviceEvent } from '../../backend/contract.js';
import type { IOMMU_INTERFACE_STATE_CHANGE_CALLBACK, IOMMU_INTERFACE_STATE_CHANGE_FIELDS } from '../../wdk/types.js';
import type { IommuDmaDevice } from '../objects.js';
import type { PlatformContext } from './context.js';
import { availableDomainTypes } from './devices.js';
import type { DeviceState } from './state.js';
import { booleanField, describe, invalidArg, isUlong, statusError } from './validate.js';

/** IOMMU_REGISTER_INTERFACE_STATE_CHANGE_CALLBACK: invokes the callback at once, then on change. */
export function registerInterfaceStateChangeCallback(
  ctx: PlatformContext,
  StateChangeCallback: IOMMU_INTERFACE_STATE_CHANGE_CALLBACK,
  Context: unknown,
  DmaDevice: IommuDmaDevice,
  StateFields: IOMMU_INTERFACE_STATE_CHANGE_FIELDS,
): void {
  const op = 'RegisterInterfaceStateChangeCallback';
  ctx.live(op);
  if (typeof StateChangeCallback !== 'function') throw invalidArg(op, 1, 'StateChangeCallback', 'must be a function');
  const d = ctx.reg.device(DmaDevice, op, 3);
  if (StateFields === null || typeof StateFields !== 'object') throw invalidArg(op, 4, 'StateFields', `must be an IOMMU_INTERFACE_STATE_CHANGE_FIELDS object (got ${describe(StateFields)})`);
  const asUlong: unknown = StateFields.AsULONG;
  if (asUlong !== undefined && !isUlong(asUlong)) throw invalidArg(op, 4, 'StateFields', `AsULONG must be a ULONG, an integer 0..2^32-1 (got ${describe(asUlong)})`);
  const bit = booleanField(StateFields.AvailableDomainTypes, op, 4, 'StateFields.AvailableDomainTypes');
  const bits = ((asUlong ?? 0) | (bit ? 1 : 0)) >>> 0;
  if (bits === 0) throw invalidArg(op, 4, 'StateFields', 'selects no state (set AvailableDomainTypes)');
  if ((bits & ~1) !== 0) throw invalidArg(op, 4, 'StateFields', 'has reserved bits set (only AvailableDomainTypes is defined)');
  if (d.callback) throw statusError('STATUS_UNSUCCESSFUL', op, `${d.pdo.bdf} already has a state-change callback (one per device)`);
  d.callback = { fn: StateChangeCallback, context: Context };
  notify(ctx, d, d.removed ? 0 : availableDomainTypes(ctx, d, 'QueryAvailableDomainTypes'));
}

/** IOMMU_UNREGISTER_INTERFACE_STATE_CHANGE_CALLBACK. */
export function unregisterInterfaceStateChangeCallback(ctx: PlatformContext, StateChangeCallback: IOMMU_INTERFACE_STATE_CHANGE_CALLBACK, DmaDevice: IommuDmaDevice): void {
  const op = 'UnregisterInterfaceStateChangeCallback';
  ctx.live(op);
  const d = ctx.reg.device(DmaDevice, op, 2);
  if (!d.callback || d.callback.fn !== StateChangeCallback) throw statusError('STATUS_UNSUCCESSFUL', op, `that callback is not registered for ${d.pdo.bdf}`);
  d.callback = null;
}

function notify(ctx: PlatformContext, d: DeviceState, mask: number): void {
  const cb = d.callback;
  if (!cb) return;
  try {
    cb.fn({ PresentFields: { AvailableDomainTypes: 1, AsULONG: 1 }, AvailableDomainTypes: mask }, cb.context);
  } catch (e) {
    ctx.reportHandlerError(e, 'IOMMU_INTERFACE_STATE_CHANGE_CALLBACK');
  }
}

/** The backend's device event: mark removal / presence and tell the device's callback. */
/**
 * The backend's device event. A removal marks the device's states removed for good and its PDO
 * stale (a device that appears at the same address later is a new device: enumerate again for
 * its PDO, CreateDevice anew); the callbacks then hear mask 0. Other events update the mask of
 * the devices still present.
 */
export function onDeviceEvent(ctx: PlatformContext, e: DeviceEvent): void {
  if (!e.present) {
    const pdo = ctx.pdos.get(e.bdf);
    if (pdo) {
      ctx.stalePdos.add(pdo);
      ctx.pdos.delete(e.bdf);
    }
  }
  for (const d of [...ctx.reg.liveDevices]) {
    if (d.pdo.bdf !== e.bdf || d.removed) continue;
    if (!e.present) {
      d.removed = true;
      ctx.stalePdos.add(d.pdo);
    }
    notify(ctx, d, e.present ? e.availableDomainTypes & ctx.backend.capabilities.domainTypes : 0);
  }
}
