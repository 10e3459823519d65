/**
 * The kernel-operations table: what one kernel interface (iommufd, VFIO type1) supplies to the
 * shared NativeBackend, in the layout of libvfn's `iommu_ctx_ops` and rust-vmm's `VfioOps`. `KD`
 * and `KV` are the interface's own domain and device fields; the backend hands its records back to
 * the table typed, so no cast is needed on either side. The table calls back into the backend
 * only through OpsHost.
 */
import type { BackendCapabilities, DomainGeometry } from '../contract.js';
import type { NativeAddon, NativeHandle } from './addon-types.js';
import type { HotCalls } from './hot.js';
import { faultCapabilities } from './faults.js';
import type { Piece } from './memory.js';
import type { DeviceRec, DomainRec, NativeBackendOptions } from './records.js';
import { VfioRegions } from './regions.js';
import { type SysPaths, type SysPciDevice, type UsableVia, detectIommu } from './sysfs.js';
import { ERR, fail } from './util.js';

export interface KernelOps<KD, KV> {
  /** The kernel interface (also what a device must be usable through: sysfs.ts's UsableVia). */
  readonly kind: UsableVia;
  readonly capabilities: BackendCapabilities;
  /** Syscall names the contract's map/unmap errors carry. */
  readonly mapSyscall: string;
  readonly unmapSyscall: string;
  /** Kernel mappings can be installed now (type1: a group is in the container). */
  active(dom: DomainRec<KD>): boolean;
  /** Install one kernel area: `piece` at `iova`. */
  map(dom: DomainRec<KD>, iova: bigint, piece: Piece, perms: number): void;
  /** Remove whole kernel mappings covering exactly [iova, iova + length); nothing there → ENOENT. */
  unmap(dom: DomainRec<KD>, iova: bigint, length: bigint): void;
  geometry(dom: DomainRec<KD>): DomainGeometry;
  openDevice(id: number, bdf: string, sys: SysPciDevice): DeviceRec<KV>;
  closeDevice(dev: DeviceRec<KV>): void;
  allocDomain(id: number, type: 'translate' | 'passthrough'): DomainRec<KD>;
  freeDomain(dom: DomainRec<KD>): void;
  attach(dom: DomainRec<KD>, dev: DeviceRec<KV>): void;
  detach(dom: DomainRec<KD>, dev: DeviceRec<KV>): void;
  /** Close the interface's own fds (iommufd, parking container). */
  close(): void;
  inspect(): Record<string, unknown>;
}

/** What an ops table may see of the backend that runs it. */
export interface OpsHost<KD, KV> {
  readonly domains: ReadonlyMap<number, DomainRec<KD>>;
  readonly devices: ReadonlyMap<number, DeviceRec<KV>>;
  /** Replay every shadow area / identity map of `dom` into the kernel (type1 first attach). */
  replay(dom: DomainRec<KD>): void;
  /** The kernel dropped every mapping of `dom` (type1: last group left). */
  forgot(dom: DomainRec<KD>): void;
}

/**
 * What every ops table is handed by NativeBackend: the addon, the sysfs/dev paths, its host (the
 * shared area/replay module) and the hot map/unmap calls. Only these references; every kernel
 * rule is the table's own.
 */
export class OpsBase<KD, KV> {
  protected readonly addon: NativeAddon;
  protected readonly paths: SysPaths;
  protected readonly host: OpsHost<KD, KV>;
  protected readonly hot: HotCalls;
  constructor(o: NativeBackendOptions, host: OpsHost<KD, KV>, hot: HotCalls) {
    this.addon = o.addon;
    this.paths = o.paths;
    this.host = host;
    this.hot = hot;
  }
}

/** The WDK domain types (DOMAIN_TYPE) as bit numbers of the contract's domain-type masks. */
const DOMAIN_TYPE_TRANSLATE = 0;
const DOMAIN_TYPE_PASSTHROUGH = 1;

/**
 * The capabilities both kernel interfaces share (what the native path is, whichever ioctls it
 * uses); each table adds how maps made before an attach behave and how many areas a domain holds.
 */
export function nativeCapabilities(
  o: NativeBackendOptions,
  own: Pick<BackendCapabilities, 'mapBeforeAttach' | 'maxAreasPerDomain'>,
): BackendCapabilities {
  return {
    domainTypes: (1 << DOMAIN_TYPE_TRANSLATE) | (1 << DOMAIN_TYPE_PASSTHROUGH),
    passThrough: 'emulated-identity',
    ...faultCapabilities(detectIommu(o.paths), o.kmsg),
    silentBlockOnCachedTranslation: true,
    pasid: false,
    unmanagedDomains: false,
    arch: process.arch === 'arm64' ? 'arm64' : 'x86_64',
    unattachedGeometry: 'unknown',
    ...own,
  };
}

/** DeviceRegions over the device's current fd (`get`), EBADF once it is closed. */
export function regionsFor(addon: NativeAddon, get: () => NativeHandle | null, bdf: string): VfioRegions {
  return new VfioRegions(addon, () => {
    const h = get();
    if (!h || h.closed) fail(ERR.EBADF, 'vfio region access', `${bdf} is closed`);
    return h;
  });
}
