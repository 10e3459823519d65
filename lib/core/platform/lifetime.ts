/** Closing a platform (everything released in dependency order) and inspecting it. */
import { isBackendError } from '../../errors.js';
import { negativeErrno } from '../../status.js';
import { PAGE } from './validate.js';
import { toIommuError, viaBackend } from './backend-call.js';
import type { PlatformContext } from './context.js';
import { closeDevice } from './devices.js';
import { hex } from './validate.js';

/**
 * Tear everything down in dependency order (segments and maps → PASIDs → devices detached →
 * tokens → domains → devices → memory → backend). Idempotent; continues past failures and
 * throws the first one at the end.
 */
export function closePlatform(ctx: PlatformContext, unsubscribe: () => void): void {
  if (ctx.closed) return;
  const errors: unknown[] = [];
  const attempt = (fn: () => void): void => {
    try {
      fn();
    } catch (e) {
      errors.push(e);
    }
  };
  // a removed device is already detached by the hardware's departure: nothing to undo, no error
  const unlessRemoved = (removed: boolean, fn: () => void): void => {
    if (removed) return;
    attempt(() => {
      try {
        fn();
      } catch (e) {
        if (!(isBackendError(e) && e.errno === negativeErrno('ENODEV'))) throw e;
      }
    });
  };
  for (const dom of ctx.reg.liveDomains) {
    for (const p of [...dom.pasids]) {
      unlessRemoved(p.device.removed, () => ctx.backend.detachPasid(p.device.id, p.pasid));
      p.domain = null;
    }
    dom.pasids.clear();
    for (const d of [...dom.devices]) {
      unlessRemoved(d.removed, () => ctx.backend.detach(d.id));
      d.domain = null;
    }
    dom.devices.clear();
    attempt(() => ctx.backend.freeDomain(dom.id));
    dom.deleted = true;
    for (const t of dom.tokens) t.freed = true;
  }
  ctx.reg.liveDomains.clear();
  ctx.lastDomain = null;
  ctx.lastDomainState = null;
  for (const d of [...ctx.reg.liveDevices]) attempt(() => closeDevice(ctx, d, 'close'));
  for (const m of ctx.memory) attempt(() => m.backendMemory.freed || m.backendMemory.free());
  ctx.memory.clear();
  unsubscribe();
  ctx.faultLog.close();
  attempt(() => ctx.backend.close());
  ctx.closed = true;
  if (errors.length > 0) throw toIommuError(errors[0], 'close');
}

/** Everything as JSON-able data: the platform's objects and the backend's own view. */
export function inspectPlatform(ctx: PlatformContext): unknown {
  const backend = ctx.backend;
  return {
    backend: { kind: backend.kind, reason: backend.reason, capabilities: backend.capabilities },
    devices: [...ctx.reg.liveDevices].map((d) => ({
      handle: d.handle.toString(),
      bdf: d.pdo.bdf,
      attached: d.domain?.handle.toString() ?? null,
      pasids: [...d.pasids.keys()],
      faultReporting: !!d.fault,
      stateCallback: !!d.callback,
      removed: d.removed,
    })),
    domains: [...ctx.reg.liveDomains].map((dom) => ({
      handle: dom.handle.toString(),
      type: dom.wdkType,
      allocator: dom.allocator ? { type: 'buddy', addressWidth: dom.allocator.addressWidth } : null,
      devices: [...dom.devices].map((d) => d.pdo.bdf),
      claims: [...dom.space.all()].map((c) => ({
        kind: ['logical', 'identity', 'token', 'reserved'][c.kind],
        iova: hex(BigInt(c.start) * PAGE),
        length: hex(BigInt(c.pages) * PAGE),
        perms: c.perms,
        ...(c.segments ? { segments: c.segments.size } : {}),
      })),
    })),
    memory: [...ctx.memory].filter((m) => !m.freed).map((m) => ({ size: hex(m.size), physicalAddress: hex(m.physicalAddress) })),
    faults: ctx.faultLog.size,
    backendState: viaBackend('inspect', () => backend.inspect()),
  };
}
