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
import { invalidArg, statusError } from './validate.js';

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
  const bits = StateFields && typeof StateFields === 'object'
    ? (typeof StateFields.AsULONG === 'number' ? StateFields.AsULONG : 0) | (StateFields.AvailableDomainTypes ? 1 : 0)
    : 0;
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
    ctx.onHandlerError(e, 'IOMMU_INTERFACE_STATE_CHANGE_CALLBACK');
  }
}

/** The backend's device event: mark removal / presence and tell the device's callback. */
export function onDeviceEvent(ctx: PlatformContext, e: DeviceEvent): void {
  for (const d of ctx.reg.liveDevices) {
    if (d.pdo.bdf !== e.bdf) continue;
    d.removed = !e.present;
    notify(ctx, d, e.present ? e.availableDomainTypes & ctx.backend.capabilities.domainTypes : 0);
  }
}
