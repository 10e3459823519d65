/**
 * The platform's object state, one record per handle, and the checks every member uses to turn
 * a handle argument into its state (a foreign, forged or deleted handle gives the member's
 * STATUS_INVALID_PARAMETER_n).
 */
import type { DomainGeometry, IommuBackend } from '../../backend/contract.js';
import type { DEVICE_FAULT_CONFIGURATION, IOMMU_INTERFACE_STATE_CHANGE_CALLBACK } from '../../wdk/types.js';
import { Claim, IovaSpace, type PageRange, pageRanges } from '../iova-space.js';
import { toIommuError } from './backend-call.js';
import { invalidArg } from './validate.js';
import {
  IommuDmaDevice,
  IommuDmaDomain,
  IommuDmaPasidDevice,
  LogicalAddressToken,
  type PhysicalDeviceObject,
} from '../objects.js';

export type DomainKind = 'translate' | 'passthrough' | 'unmanaged';

export interface AllocatorState {
  /** Highest page the allocator may hand out (from BuddyAllocatorConfig.AddressWidth). */
  readonly maxPage: number;
  readonly addressWidth: number;
}

export class DomainState {
  readonly devices = new Set<DeviceState>();
  readonly pasids = new Set<PasidState>();
  readonly tokens = new Set<TokenState>();
  readonly space = new IovaSpace();
  deleted = false;
  configured = false;
  private geometryCache: { geometry: DomainGeometry; pages: PageRange[] } | null = null;
  constructor(
    readonly handle: IommuDmaDomain,
    readonly id: number,
    readonly wdkType: number,
    readonly kind: DomainKind,
    readonly allocator: AllocatorState | null,
    readonly backend: IommuBackend,
  ) {}

  /** The backend's geometry (cached until an attach or detach changes it); its failure as `op`'s IommuError. */
  geometry(op: string): { geometry: DomainGeometry; pages: PageRange[] } {
    if (!this.geometryCache) {
      let geometry: DomainGeometry;
      try {
        geometry = this.backend.geometry(this.id);
      } catch (e) {
        throw toIommuError(e, op);
      }
      this.geometryCache = { geometry, pages: pageRanges(geometry.ranges) };
    }
    return this.geometryCache;
  }

  invalidateGeometry(): void {
    this.geometryCache = null;
  }
}

export class DeviceState {
  domain: DomainState | null = null;
  readonly pasids = new Map<number, PasidState>();
  callback: { fn: IOMMU_INTERFACE_STATE_CHANGE_CALLBACK; context: unknown } | null = null;
  fault: DEVICE_FAULT_CONFIGURATION | null = null;
  deleted = false;
  removed = false;
  /** Opened implicitly by a V1 member (PDO-based); CreateDevice adopts it. */
  implicit = false;
  constructor(
    readonly handle: IommuDmaDevice,
    readonly pdo: PhysicalDeviceObject,
    readonly id: number,
    readonly pasidTagged: boolean,
    readonly suppressPasidFaults: boolean,
  ) {}
}

export class PasidState {
  domain: DomainState | null = null;
  deleted = false;
  constructor(
    readonly handle: IommuDmaPasidDevice,
    readonly device: DeviceState,
    readonly pasid: number,
  ) {}
}

export class TokenState {
  freed = false;
  constructor(
    readonly handle: LogicalAddressToken,
    readonly domain: DomainState,
    readonly claim: Claim,
  ) {}
}

/** Maps handles to state; owned by one platform. */
export class Registry {
  readonly domains = new WeakMap<IommuDmaDomain, DomainState>();
  readonly devices = new WeakMap<IommuDmaDevice, DeviceState>();
  readonly pasids = new WeakMap<IommuDmaPasidDevice, PasidState>();
  readonly tokens = new WeakMap<LogicalAddressToken, TokenState>();
  /** Live objects, for teardown and inspection. */
  readonly liveDomains = new Set<DomainState>();
  readonly liveDevices = new Set<DeviceState>();

  domain(h: unknown, op: string, n: number, arg = 'Domain'): DomainState {
    const s = h instanceof IommuDmaDomain ? this.domains.get(h) : undefined;
    if (!s) throw invalidArg(op, n, arg, h instanceof IommuDmaDomain ? 'belongs to another platform' : 'is not an IOMMU_DMA_DOMAIN handle');
    if (s.deleted) throw invalidArg(op, n, arg, 'was deleted (use after DeleteDomain)');
    return s;
  }

  device(h: unknown, op: string, n: number, arg = 'DmaDevice'): DeviceState {
    const s = h instanceof IommuDmaDevice ? this.devices.get(h) : undefined;
    if (!s) throw invalidArg(op, n, arg, h instanceof IommuDmaDevice ? 'belongs to another platform' : 'is not an IOMMU_DMA_DEVICE handle');
    if (s.deleted) throw invalidArg(op, n, arg, 'was deleted (use after DeleteDevice)');
    return s;
  }

  pasid(h: unknown, op: string, n: number, arg = 'PasidDevice'): PasidState {
    const s = h instanceof IommuDmaPasidDevice ? this.pasids.get(h) : undefined;
    if (!s) throw invalidArg(op, n, arg, 'is not an IOMMU_DMA_PASID_DEVICE handle of this platform');
    if (s.deleted) throw invalidArg(op, n, arg, 'was deleted (use after DeletePasidDevice)');
    return s;
  }

  token(h: unknown, op: string, n: number, arg = 'LogicalAddressToken'): TokenState {
    const s = h instanceof LogicalAddressToken ? this.tokens.get(h) : undefined;
    if (!s) throw invalidArg(op, n, arg, 'is not a logical address token of this platform');
    if (s.freed) throw invalidArg(op, n, arg, 'was freed (use after FreeReservedLogicalAddressRange)');
    return s;
  }
}
