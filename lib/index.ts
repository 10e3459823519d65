/**
 * dma-iommu: Windows' DMA_IOMMU_INTERFACE_EX for Node.js, over Linux iommufd / VFIO type1, or a
 * simulated IOMMU where there is none.
 *
 *   import { IoGetIommuInterfaceEx, DMA_IOMMU_INTERFACE_EX_VERSION_3 } from 'dma-iommu';
 *   const iface = IoGetIommuInterfaceEx(DMA_IOMMU_INTERFACE_EX_VERSION_3, 0n);
 *   const [pdo] = iface.Platform.enumerateDevices();
 *   const dev = iface.V3.CreateDevice(pdo);
 */
import type { IommuBackend } from './backend/contract.js';
import { type SelectOptions, describeValue, selectBackend } from './backend/select.js';
import { IommuPlatform, type PlatformOptions } from './core/platform.js';
import { IommuError } from './errors.js';
import { type DMA_IOMMU_INTERFACE, type DMA_IOMMU_INTERFACE_EX, buildInterface, buildInterfaceEx, checkInterfaceExRequest, checkInterfaceRequest } from './wdk/interface.js';

export * from './wdk/constants.js';
export type * from './wdk/types.js';
export type {
  DMA_IOMMU_INTERFACE,
  DMA_IOMMU_INTERFACE_EX,
  DMA_IOMMU_INTERFACE_V1,
  DMA_IOMMU_INTERFACE_V2,
  DMA_IOMMU_INTERFACE_V3,
} from './wdk/interface.js';
export { V1_MEMBERS, V2_MEMBERS, V3_MEMBERS } from './wdk/interface.js';
export { IommuError } from './errors.js';
export { NTSTATUS, type StatusName } from './status.js';
export { IommuPlatform, type FaultRecord, type PlatformOptions } from './core/platform.js';
export { DmaMemory } from './core/physical.js';
export { IommuDmaDevice, IommuDmaDomain, IommuDmaPasidDevice, LogicalAddressToken, PhysicalDeviceObject } from './core/objects.js';
export type * from './backend/contract.js';
export { selectBackend, type BackendChoice, type SelectOptions } from './backend/select.js';
export { SimulatedBackend, type SimulatedBackendOptions, type SimulatorTestControls, simulatorControls } from './backend/simulated/index.js';
export { EduDevice } from './devices/edu.js';

/** Options of {@link openPlatform}: the backend choice and the platform options. */
export interface OpenOptions extends SelectOptions, PlatformOptions {}

/**
 * Open a platform: choose a backend (option > DMA_IOMMU_BACKEND > auto) and wrap it. The caller
 * owns it: `close()` it (or `using`) when done.
 * @throws {@link IommuError} `STATUS_INVALID_PARAMETER` (argument `options`, `backend`, …) for a bad
 * option; `STATUS_NOT_SUPPORTED` when a native backend was asked for and is not usable.
 */
export function openPlatform(options: OpenOptions = {}): IommuPlatform {
  const { backend } = selectBackend(options);
  const hook = options.onHandlerError;
  if (hook !== undefined && typeof hook !== 'function') {
    if (!options.backend || typeof options.backend !== 'object') backend.close();
    throw new IommuError('STATUS_INVALID_PARAMETER', `the onHandlerError option must be a function (error, where) => void (got ${describeValue(hook)})`, { operation: 'openPlatform', argument: 'options.onHandlerError' });
  }
  return new IommuPlatform(backend, options);
}

let defaultPlatform: IommuPlatform | null = null;

/** The process-wide platform used when no options are given (created on first use). */
export function getDefaultPlatform(): IommuPlatform {
  if (!defaultPlatform || defaultPlatform.closed) defaultPlatform = openPlatform();
  return defaultPlatform;
}

/** Options of {@link IoGetIommuInterfaceEx} and {@link IoGetIommuInterface} (not WDK parameters). */
export interface GetInterfaceOptions extends OpenOptions {
  /** Use this platform (else a new one from the options, or the default platform). */
  readonly platform?: IommuPlatform;
}

/**
 * The platform an IoGetIommuInterface(Ex) call uses. Bad options are STATUS_INVALID_PARAMETER with
 * `.argument` naming the option (`options`, `platform`, `backend`, `simulator`).
 */
function platformFor(options: GetInterfaceOptions | undefined, op: string): IommuPlatform {
  if (options === undefined || options === null) return getDefaultPlatform();
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new IommuError('STATUS_INVALID_PARAMETER', `options must be an object of GetInterfaceOptions (got ${describeValue(options)})`, { operation: op, argument: 'options' });
  }
  if (options.platform !== undefined && options.platform !== null) {
    if (!(options.platform instanceof IommuPlatform)) {
      throw new IommuError('STATUS_INVALID_PARAMETER', `the platform option must be an IommuPlatform (from openPlatform() or an interface's Platform; got ${describeValue(options.platform)})`, { operation: op, argument: 'options.platform' });
    }
    if (options.backend !== undefined || options.simulator !== undefined) {
      throw new IommuError('STATUS_INVALID_PARAMETER', 'the platform option cannot be combined with backend or simulator (the platform already has its backend)', { operation: op, argument: 'options.platform' });
    }
    return options.platform;
  }
  if (options.backend !== undefined || options.simulator !== undefined) return openPlatform(options);
  return getDefaultPlatform();
}

/**
 * IoGetIommuInterfaceEx: the DMA_IOMMU_INTERFACE_EX for Version 1..3. Flags must be 0.
 * Without options it uses the process-wide default platform.
 * @param Version - `DMA_IOMMU_INTERFACE_EX_VERSION_1`, `_2` or `_3`: which table (`V1`/`V2`/`V3`) is returned.
 * @param Flags - reserved: must be 0.
 * @param options - not a WDK parameter: a platform to use, or a backend choice (a new platform).
 * @returns `{ Size, Version, V1 | V2 | V3 }`, frozen, with the non-enumerable `Platform`.
 * @throws {@link IommuError} `STATUS_NOT_SUPPORTED` (Version outside 1..3); `STATUS_INVALID_PARAMETER_1`
 * (Version not an integer); `STATUS_INVALID_PARAMETER_2` (Flags not 0); `STATUS_INVALID_PARAMETER`
 * (a bad option, `.argument` names it).
 */
export function IoGetIommuInterfaceEx(Version: number, Flags: bigint | number = 0n, options?: GetInterfaceOptions): DMA_IOMMU_INTERFACE_EX {
  checkInterfaceExRequest(Version, Flags);
  return buildInterfaceEx(platformFor(options, 'IoGetIommuInterfaceEx'), Version, Flags);
}

/**
 * IoGetIommuInterface (deprecated in the WDK): DMA_IOMMU_INTERFACE, Version 1: the V1 members at
 * top level, with `Version` and `Size`.
 * @throws {@link IommuError} `STATUS_NOT_SUPPORTED` (Version not 1); `STATUS_INVALID_PARAMETER` (a bad option).
 */
export function IoGetIommuInterface(Version: number, options?: GetInterfaceOptions): DMA_IOMMU_INTERFACE {
  checkInterfaceRequest(Version);
  return buildInterface(platformFor(options, 'IoGetIommuInterface'), Version);
}

export type { IommuBackend };
