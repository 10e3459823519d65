/**
 * What one platform knows, shared by the member families: the backend, the handle registry, the
 * PDO cache, the DMA memory it handed out, the fault log, and whether it was closed. The family
 * modules are functions over this record; `IommuPlatform` (../platform.ts) only forwards to them.
 */
import type { IommuBackend } from '../../backend/contract.js';
import type { IommuDmaDomain, PhysicalDeviceObject } from '../objects.js';
import type { DmaMemory } from '../physical.js';
import { FaultLog } from './faults.js';
import { type DeviceState, type DomainState, Registry } from './state.js';
import { statusError } from './validate.js';

export type HandlerErrorHook = (error: unknown, where: string) => void;

export class PlatformContext {
  readonly reg = new Registry();
  /** The PDO last seen for each BDF. */
  readonly pdos = new Map<string, PhysicalDeviceObject>();
  /** The device state opened for a PDO (CreateDevice or a V1 member). */
  readonly byPdo = new Map<PhysicalDeviceObject, DeviceState>();
  /** PDOs whose device was removed: they name their old state only, never a new device. */
  readonly stalePdos = new WeakSet<PhysicalDeviceObject>();
  readonly memory = new Set<DmaMemory>();
  readonly faultLog = new FaultLog();
  closed = false;
  /** The last domain looked up by the map/unmap members (handles are never reused). */
  lastDomain: IommuDmaDomain | null = null;
  lastDomainState: DomainState | null = null;

  constructor(
    readonly backend: IommuBackend,
    readonly onHandlerError: HandlerErrorHook,
  ) {}

  /**
   * Hand a handler's exception to the hook. Nothing the handler threw, and nothing the hook
   * throws, may stop the caller (fault delivery to waiters, the next callback).
   */
  reportHandlerError(error: unknown, where: string): void {
    try {
      this.onHandlerError(error, where);
    } catch {
      /* a throwing hook must not break fault delivery */
    }
  }

  /** STATUS_INVALID_DEVICE_REQUEST once the platform is closed. */
  live(op: string): void {
    if (this.closed) throw statusError('STATUS_INVALID_DEVICE_REQUEST', op, 'the platform was closed');
  }

  /** `reg.domain(Domain, op, 1)`, with a one-entry cache for the map/unmap hot paths. */
  domain(Domain: IommuDmaDomain, op: string): DomainState {
    const cached = this.lastDomainState;
    if (Domain === this.lastDomain && cached !== null && !cached.deleted) return cached;
    const dom = this.reg.domain(Domain, op, 1);
    this.lastDomain = Domain;
    this.lastDomainState = dom;
    return dom;
  }

  forgetDomain(dom: DomainState): void {
    if (this.lastDomainState === dom) {
      this.lastDomain = null;
      this.lastDomainState = null;
    }
  }
}

/** The default hook: a process warning with the handler's stack (or a description of what it threw). */
export function warnHandlerError(error: unknown, where: string): void {
  process.emitWarning(`dma-iommu: ${where} threw: ${describeThrown(error)}`);
}

/** The stack or text of a thrown value; never throws (a `.stack` getter may). */
export function describeThrown(error: unknown): string {
  try {
    const stack = (error as { stack?: unknown } | null)?.stack;
    if (typeof stack === 'string') return stack;
  } catch {
    /* fall through */
  }
  try {
    return String(error);
  } catch {
    return `a thrown ${typeof error} that cannot be described`;
  }
}
