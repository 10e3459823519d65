/**
 * The simulator's test controls: what a test can do to the simulated machine beyond the backend
 * contract (hot-plug, policy changes, failure injection, device DMA, inspection). A declared
 * interface of its own, as serialport's MockBindingInterface is for its mock binding: tests
 * type the backend they drive as `SimulatorTestControls` (or get it with `simulatorControls`),
 * not as the class.
 */
import type { IommuBackend, PciDeviceInfo } from '../contract.js';
import type { SimBus } from './bus.js';
import type { SimulatedFault } from './faults.js';
import type { InspectOptions, SimInspection } from './inspect.js';
import type { SimDevice, SimDeviceSpec } from './machine.js';
import { describe, ERR, fail, normalizeBdf, U64_MAX } from './util.js';

/**
 * A device read. `ok` is false when some page was blocked: `data` is then what the device received
 * (the bytes of the pages that translated, zeros for the blocked ones, as QEMU's unassigned region
 * reads), `bytesRead` how many came from memory, `fault` the one record of the request.
 */
export type DmaReadResult =
  | { readonly ok: true; readonly data: Uint8Array }
  | { readonly ok: false; readonly data: Uint8Array; readonly bytesRead: number; readonly fault: SimulatedFault };
/** A device write: `bytesWritten` reached memory (the pages that translated); `fault` when some page was blocked. */
export interface DmaWriteResult {
  readonly ok: boolean;
  readonly bytesWritten: number;
  readonly fault?: SimulatedFault;
}
export interface DmaOptions {
  /** Tag the request with this PASID. */
  readonly pasid?: number;
}

/**
 * The simulator's test controls, beyond the backend contract: hot-plug and surprise removal,
 * policy changes, failure injection, device DMA through the IOMMU, the fault log and page-table
 * inspection. Get them with {@link simulatorControls} (or use a {@link SimulatedBackend} directly).
 */
export interface SimulatorTestControls {
  /** Hot-plug a device (emits a DeviceEvent). EEXIST when the BDF is present. */
  addDevice(spec: SimDeviceSpec): PciDeviceInfo;
  /**
   * Surprise-remove a device: it leaves the enumeration, its attachments are dropped (the
   * hardware is gone), its open handle fails every call with ENODEV (closeDevice still works),
   * its DMA stops. Emits DeviceEvent { present: false, availableDomainTypes: 0 }.
   */
  removeDevice(bdf: string): void;
  /** Change the device's available domain types (a DMA-Guard-like policy change); emits a DeviceEvent. */
  setAvailableDomainTypes(bdf: string, mask: number): void;
  /**
   * Make the n-th next leaf operation (counting only `op` when given: a method name such as
   * 'map' or a syscall name such as 'IOMMU_IOAS_MAP') throw BackendError(errno), once. The
   * operation fails before changing anything. Several injections may be armed at once; each
   * counts independently, and when several come due on the same operation it fails once (with
   * the errno of the earliest armed) and all of them are spent.
   */
  failNth(n: number, errno: number, op?: string): void;
  /** Disarm every pending failNth injection. */
  clearFailures(): void;
  /** Recorded DMA faults, oldest first. */
  faultLog(): SimulatedFault[];
  /** Empty the fault log. */
  clearFaults(): void;
  /**
   * The device reads `length` bytes at `iova` (memory → device), through the IOMMU, page by page:
   * a blocked page reads as zeros and the request records one fault (its first blocked access).
   */
  dmaRead(bdf: string, iova: bigint, length: number, options?: DmaOptions): DmaReadResult;
  /**
   * The device writes `data` at `iova` (device → memory), through the IOMMU, page by page: the
   * pages that translate are written, a blocked page's bytes are dropped, one fault is recorded.
   */
  dmaWrite(bdf: string, iova: bigint, data: Uint8Array, options?: DmaOptions): DmaWriteResult;
  /** What the domain's page table says about one IOVA (null when not mapped). */
  translate(domain: number, iova: bigint): {
    /** The physical address the IOVA translates to. */
    pa: bigint;
    /** The mapping's permissions: bit 0 read, bit 1 write. */
    perms: number;
    /** The page-table level of the leaf entry (1 = 4 KiB page, 2 = 2 MiB, 3 = 1 GiB). */
    level: number;
  } | null;
  /** Structural self-check of every page table (tests): null when sound, else the first problem. */
  verifyPageTables(): string | null;
  /** Everything as JSON-able data (bigints as hex strings). */
  inspect(options?: InspectOptions): SimInspection;
}

/** The test controls of a simulated backend; TypeError for any other backend. */
export function simulatorControls(backend: IommuBackend): SimulatorTestControls & IommuBackend {
  if (backend === null || typeof backend !== 'object' || backend.kind !== 'simulated') {
    throw new TypeError(`test controls exist on the simulated backend only (this one is ${String((backend as { kind?: unknown } | null)?.kind)})`);
  }
  return backend as unknown as SimulatorTestControls & IommuBackend;
}

/** dmaRead/dmaWrite's argument checks: the device on the bus, the IOVA range, the PASID. */
export function checkDmaRequest(
  bus: SimBus,
  closed: boolean,
  bdf: unknown,
  iova: unknown,
  length: number,
  options: DmaOptions | undefined,
): { dev: SimDevice; pasid: number | undefined } {
  if (closed) fail(ERR.EBADF, 'DMA', 'backend is closed');
  if (typeof bdf !== 'string') throw new TypeError(`bdf must be a string, got ${describe(bdf)}`);
  const n = normalizeBdf(bdf);
  const dev = n === null ? undefined : bus.devices.get(n);
  if (dev === undefined) fail(ERR.ENODEV, 'DMA', `no device ${bdf} on the bus`);
  if (typeof iova !== 'bigint') throw new TypeError(`iova must be a bigint, got ${describe(iova)}`);
  if (iova < 0n || iova + BigInt(length) > U64_MAX + 1n) throw new RangeError('iova+length must stay within 2^64');
  let pasid: number | undefined;
  if (options !== undefined) {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    if (options.pasid !== undefined) {
      if (typeof options.pasid !== 'number' || !Number.isInteger(options.pasid) || options.pasid < 0 || options.pasid > 0xfffff) {
        throw new TypeError(`pasid must be an integer in [0, 2^20), got ${describe(options.pasid)}`);
      }
      pasid = options.pasid;
    }
  }
  return { dev, pasid };
}
