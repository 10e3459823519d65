/**
 * The WDK-shaped interface: DMA_IOMMU_INTERFACE_EX with `Size`, `Version` and the V1, V2 or V3
 * function table, each member named exactly as the WDK field. This adapter holds no state: every
 * member is the platform's method of the same name, bound. (The platform is reachable as the
 * non-enumerable `Platform` property, for devices and memory, which the WDK gets elsewhere.)
 */
import type { IommuPlatform } from '../core/platform.js';
import { IommuError } from '../errors.js';
import {
  DMA_IOMMU_INTERFACE_EX_SIZE,
  DMA_IOMMU_INTERFACE_EX_VERSION_MAX,
  DMA_IOMMU_INTERFACE_EX_VERSION_MIN,
  DMA_IOMMU_INTERFACE_SIZE,
  DMA_IOMMU_INTERFACE_VERSION_1,
} from './constants.js';

/** The member names of the V1 table (and of the deprecated `DMA_IOMMU_INTERFACE`), in the WDK's field order. */
export const V1_MEMBERS = [
  'CreateDomain',
  'DeleteDomain',
  'AttachDevice',
  'DetachDevice',
  'FlushDomain',
  'FlushDomainByVaList',
  'QueryInputMappings',
  'MapLogicalRange',
  'UnmapLogicalRange',
  'MapIdentityRange',
  'UnmapIdentityRange',
  'SetDeviceFaultReporting',
  'ConfigureDomain',
] as const;

/** The member names of the V2 table, in the WDK's field order. */
export const V2_MEMBERS = [
  'CreateDomainEx',
  'DeleteDomain',
  'AttachDeviceEx',
  'DetachDeviceEx',
  'FlushDomain',
  'FlushDomainByVaList',
  'QueryInputMappings',
  'MapLogicalRangeEx',
  'UnmapLogicalRange',
  'MapIdentityRangeEx',
  'UnmapIdentityRangeEx',
  'SetDeviceFaultReportingEx',
  'ConfigureDomain',
  'QueryAvailableDomainTypes',
  'RegisterInterfaceStateChangeCallback',
  'UnregisterInterfaceStateChangeCallback',
  'ReserveLogicalAddressRange',
  'FreeReservedLogicalAddressRange',
  'MapReservedLogicalRange',
  'UnmapReservedLogicalRange',
  'CreateDevice',
  'DeleteDevice',
] as const;

/** The member names of the V3 table: V2's plus the PASID members and `QueryDeviceInfo`. */
export const V3_MEMBERS = [
  ...V2_MEMBERS,
  'CreatePasidDevice',
  'DeletePasidDevice',
  'AttachPasidDevice',
  'DetachPasidDevice',
  'QueryDeviceInfo',
] as const;

type Bound<K extends keyof IommuPlatform> = IommuPlatform[K];
/**
 * WDK `DMA_IOMMU_INTERFACE_V1`: the V1 function table. Each member is the {@link IommuPlatform}
 * method of the same name, bound to the platform (see it for arguments, results and status codes).
 */
export type DMA_IOMMU_INTERFACE_V1 = { readonly [K in (typeof V1_MEMBERS)[number]]: Bound<K> };
/** WDK `DMA_IOMMU_INTERFACE_V2`: the V2 function table; each member is the bound {@link IommuPlatform} method of the same name. */
export type DMA_IOMMU_INTERFACE_V2 = { readonly [K in (typeof V2_MEMBERS)[number]]: Bound<K> };
/** WDK `DMA_IOMMU_INTERFACE_V3`: the V3 function table (V2 plus PASID); each member is the bound {@link IommuPlatform} method of the same name. */
export type DMA_IOMMU_INTERFACE_V3 = { readonly [K in (typeof V3_MEMBERS)[number]]: Bound<K> };

interface InterfaceBase {
  /** sizeof(DMA_IOMMU_INTERFACE_EX) on x64. */
  readonly Size: number;
  /** The version asked for (1, 2 or 3): which of `V1`/`V2`/`V3` is present. */
  readonly Version: number;
  /** Not a WDK field: the platform behind the table (devices, DMA memory, backend). */
  readonly Platform: IommuPlatform;
}

/**
 * WDK `DMA_IOMMU_INTERFACE_EX`, what {@link IoGetIommuInterfaceEx} returns: `Size`, `Version`, and
 * the function table of that version (`V1`, `V2` or `V3`), frozen. `Platform` (not enumerable)
 * is the platform behind the table.
 */
export type DMA_IOMMU_INTERFACE_EX =
  | (InterfaceBase & {
      /** Version 1. */
      readonly Version: 1;
      /** The V1 function table. */
      readonly V1: DMA_IOMMU_INTERFACE_V1;
    })
  | (InterfaceBase & {
      /** Version 2. */
      readonly Version: 2;
      /** The V2 function table. */
      readonly V2: DMA_IOMMU_INTERFACE_V2;
    })
  | (InterfaceBase & {
      /** Version 3. */
      readonly Version: 3;
      /** The V3 function table. */
      readonly V3: DMA_IOMMU_INTERFACE_V3;
    });

/** The deprecated DMA_IOMMU_INTERFACE: `Version` and the V1 members at top level. */
export type DMA_IOMMU_INTERFACE = DMA_IOMMU_INTERFACE_V1 & {
  /** Always 1 (`DMA_IOMMU_INTERFACE_VERSION_1`). */
  readonly Version: 1;
  /** sizeof(DMA_IOMMU_INTERFACE) on x64 (`DMA_IOMMU_INTERFACE_SIZE`). */
  readonly Size: number;
  /** Not a WDK field: the platform behind the table (devices, DMA memory, backend). */
  readonly Platform: IommuPlatform;
};

function table<const M extends readonly string[]>(platform: IommuPlatform, members: M): Record<M[number], unknown> {
  const t: Record<string, unknown> = {};
  for (const name of members) {
    const fn = (platform as unknown as Record<string, (...a: unknown[]) => unknown>)[name];
    t[name] = fn.bind(platform);
    Object.defineProperty(t[name], 'name', { value: name });
  }
  return Object.freeze(t) as Record<M[number], unknown>;
}

function withPlatform<T extends object>(obj: T, platform: IommuPlatform): T {
  Object.defineProperty(obj, 'Platform', { value: platform, enumerable: false });
  return Object.freeze(obj);
}

/** IoGetIommuInterfaceEx's argument checks (before any platform is opened). */
export function checkInterfaceExRequest(Version: unknown, Flags: unknown): void {
  const op = 'IoGetIommuInterfaceEx';
  if (typeof Version !== 'number' || !Number.isInteger(Version)) {
    throw new IommuError('STATUS_INVALID_PARAMETER_1', `Version must be an integer (got ${typeof Version === 'symbol' ? 'a symbol' : typeof Version === 'object' && Version !== null ? 'an object' : String(Version)})`, { operation: op, argument: 'Version' });
  }
  if (Version < DMA_IOMMU_INTERFACE_EX_VERSION_MIN || Version > DMA_IOMMU_INTERFACE_EX_VERSION_MAX) {
    throw new IommuError('STATUS_NOT_SUPPORTED', `Version ${Version} is not supported: use DMA_IOMMU_INTERFACE_EX_VERSION_1..3`, { operation: op, argument: 'Version' });
  }
  // compared, never converted: BigInt(NaN / 1.5 / Infinity) would throw a RangeError
  if (Flags !== 0n && Flags !== 0) {
    throw new IommuError('STATUS_INVALID_PARAMETER_2', `Flags are unused and must be 0 or 0n (got ${typeof Flags === 'bigint' ? `${Flags}n` : typeof Flags === 'number' ? String(Flags) : `a ${typeof Flags}`})`, { operation: op, argument: 'Flags' });
  }
}

/** Build DMA_IOMMU_INTERFACE_EX for `Version` over a platform (IoGetIommuInterfaceEx's work). */
export function buildInterfaceEx(platform: IommuPlatform, Version: number, Flags: bigint | number = 0n): DMA_IOMMU_INTERFACE_EX {
  checkInterfaceExRequest(Version, Flags);
  const base = { Size: DMA_IOMMU_INTERFACE_EX_SIZE, Version };
  const members = Version === 1 ? V1_MEMBERS : Version === 2 ? V2_MEMBERS : V3_MEMBERS;
  const key = `V${Version}`;
  return withPlatform({ ...base, [key]: table(platform, members) }, platform) as unknown as DMA_IOMMU_INTERFACE_EX;
}

/** Build the deprecated DMA_IOMMU_INTERFACE (IoGetIommuInterface's work). */
export function buildInterface(platform: IommuPlatform, Version: number): DMA_IOMMU_INTERFACE {
  checkInterfaceRequest(Version);
  const t = table(platform, V1_MEMBERS);
  return withPlatform({ Version: 1, Size: DMA_IOMMU_INTERFACE_SIZE, ...t }, platform) as unknown as DMA_IOMMU_INTERFACE;
}

/** IoGetIommuInterface's argument check (before any platform is opened). */
export function checkInterfaceRequest(Version: unknown): void {
  if (Version !== DMA_IOMMU_INTERFACE_VERSION_1) {
    throw new IommuError('STATUS_NOT_SUPPORTED', `Version ${typeof Version === 'symbol' ? 'symbol' : String(Version)} is not supported: use DMA_IOMMU_INTERFACE_VERSION_1`, { operation: 'IoGetIommuInterface', argument: 'Version' });
  }
}
