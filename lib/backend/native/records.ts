/**
 * The records the native backend keeps per domain and per device, each generic over the kernel
 * interface's own part (`K`: the IOAS/HWPT ids of iommufd, the container and groups of type1), so
 * an ops table reads its fields without casts; plus the geometry helpers both interfaces share.
 */
import type { DomainGeometry, MemoryInfo } from '../contract.js';
import type { NativeAddon, NativeHandle } from './addon-types.js';
import type { AreaIndex } from './areas.js';
import type { Piece } from './memory.js';
import type { VfioRegions } from './regions.js';
import type { SysPaths, SysPciDevice } from './sysfs.js';
import { PAGE, U64_MAX } from './util.js';

/** One contract area: [iova, iova+length) with one permission, backed by kernel pieces. */
export class AreaRec {
  constructor(
    readonly iova: bigint,
    readonly length: bigint,
    /** (iova + length) >> 12 (exact as a number): what the fast paths compare. */
    readonly endPage: number,
    readonly perms: number,
    readonly pieces: readonly Piece[],
  ) {}

  /** iova + length (exclusive), for the general paths: computed when asked, so a map allocates no bigint for it. */
  get end(): bigint {
    return this.iova + this.length;
  }
}

/** An identity map of one physically contiguous run of an allocation (passthrough domains). */
export interface IdentityRec {
  readonly iova: bigint;
  readonly piece: Piece;
  mapped: boolean;
  error?: string;
}

/** What every domain has, whatever the kernel interface. */
export interface DomainCommon {
  readonly id: number;
  readonly type: 'translate' | 'passthrough';
  readonly devices: Set<number>;
  /** Ordered by iova. */
  readonly areas: AreaIndex<AreaRec>;
  /** allocation id → identity records (passthrough only). */
  readonly identity: Map<number, IdentityRec[]>;
  geometry: DomainGeometry | null;
}

/** A domain: the common part and the kernel interface's own fields `K`. */
export type DomainRec<K = unknown> = DomainCommon & K;

/** What every device has, whatever the kernel interface. */
export interface DeviceCommon {
  readonly id: number;
  readonly bdf: string;
  readonly sys: SysPciDevice;
  domain: number | null;
  readonly regions: VfioRegions;
  maxPasidLog2: number;
  /** The device fd (type1: null while its group moves); the request notifier is set on it (removal.ts). */
  readonly handle: NativeHandle | null;
}

/** A device: the common part and the kernel interface's own fields `K`. */
export type DeviceRec<K = unknown> = DeviceCommon & K;

export interface NativeBackendOptions {
  readonly addon: NativeAddon;
  readonly paths: SysPaths;
  readonly reason: string;
  readonly memoryInfo: MemoryInfo;
  /** Kernel log readable (faultSource 'kmsg'), else 'none'. */
  readonly kmsg: boolean;
}

/** 2^64: exclusive ends may reach it, never pass it. */
export const U64_END = 1n << 64n;

export const DEFAULT_GEOMETRY: DomainGeometry = {
  ranges: [{ start: 0n, last: U64_MAX }],
  alignment: PAGE,
  pageSizes: PAGE,
  addressWidth: 64,
};

/** Pages at or above this are left to the general paths (the fast paths use int32 page numbers). */
export const FAST_PAGE_LIMIT = 0x7fffffff;

/**
 * A geometry's usable ranges as [firstPage, endPage) pairs below FAST_PAGE_LIMIT, for the map fast
 * path; null when its alignment is not 4 KiB (then every map takes the general path).
 */
export function fastRangesOf(g: DomainGeometry): Float64Array | null {
  if (g.alignment !== PAGE) return null;
  const out: number[] = [];
  for (const r of g.ranges) {
    const first = (r.start + PAGE - 1n) >> 12n;
    const end = (r.last + 1n) >> 12n;
    const lim = BigInt(FAST_PAGE_LIMIT);
    const e = end < lim ? end : lim;
    if (first < e) out.push(Number(first), Number(e));
  }
  return Float64Array.from(out);
}

export function addressWidthOf(ranges: readonly { last: bigint }[]): number {
  let max = 0n;
  for (const r of ranges) if (r.last > max) max = r.last;
  return max === 0n ? 0 : max.toString(2).length;
}
