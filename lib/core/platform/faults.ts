/**
 * DMA faults: the pure translation of a backend fault into the WDK's FAULT_INFORMATION, the
 * platform's bounded fault log with its waiters, and the fault-reporting members
 * (SetDeviceFaultReporting / SetDeviceFaultReportingEx).
 */
import type { BackendFault, IommuBackend } from '../../backend/contract.js';
import { IommuError } from '../../errors.js';
import { FaultInformationArm64, FaultInformationX64, PermissionFault, TranslationFault } from '../../wdk/constants.js';
import type { DEVICE_FAULT_CONFIGURATION, FAULT_INFORMATION } from '../../wdk/types.js';
import type { IommuDmaDevice, IommuDmaDomain } from '../objects.js';
import { PhysicalDeviceObject } from '../objects.js';
import type { PlatformContext } from './context.js';
import { checkPdo } from './devices.js';
import type { DeviceState } from './state.js';
import { U64_MAX, describe, invalidArg, invalidOption, isAbsent, statusError, timeoutMs } from './validate.js';

const FAULT_LOG_LIMIT = 1000;

/** A fault as the platform recorded it (whether or not a handler was registered). */
export interface FaultRecord {
  /** The fault as the WDK's FAULT_INFORMATION (what a fault handler receives). */
  readonly information: FAULT_INFORMATION;
  /** True when a fault handler of the device was called for it (reporting was on). */
  readonly delivered: boolean;
}

/** Who a fault concerns, as the platform knows it. */
export interface FaultParties {
  readonly pdo: PhysicalDeviceObject;
  readonly device: IommuDmaDevice | null;
  readonly domain: IommuDmaDomain | null;
}

/** FAULT_INFORMATION for a backend fault (x64 or Arm64 layout). Pure. */
export function toFaultInformation(f: BackendFault, arch: IommuBackend['capabilities']['arch'], parties: FaultParties): FAULT_INFORMATION {
  const { pdo, device, domain } = parties;
  const type = f.kind === 'permission' ? PermissionFault : TranslationFault;
  const details = {
    bdf: f.bdf,
    write: f.write,
    ...(f.directionKnown === false ? { directionKnown: false } : {}),
    ...(f.pasid !== undefined ? { pasid: f.pasid } : {}),
    reason: f.reason,
    ...(f.reasonCode !== undefined ? { reasonCode: f.reasonCode } : {}),
    source: f.source,
    ...(f.raw !== undefined ? { raw: f.raw } : {}),
    timestamp: f.timestamp,
  };
  if (arch === 'arm64') {
    return {
      Type: FaultInformationArm64,
      IsStage1: true,
      Arm64: {
        DomainHandle: domain,
        FaultAddress: f.iova,
        PhysicalDeviceObject: pdo,
        InputMappingId: pdo.requesterId,
        Flags: { WriteNotRead: f.write ? 1 : 0, InstructionNotData: 0, Privileged: 0, FaultAddressValid: 1 },
        Type: type,
        IommuBaseAddress: 0n,
      },
      PhysicalDeviceObject: pdo,
      DmaDevice: device,
      Details: details,
    };
  }
  return {
    Type: FaultInformationX64,
    IsStage1: false,
    X64: { DomainHandle: domain, FaultAddress: f.iova, Flags: { FaultAddressValid: 1 }, Type: type, IommuBaseAddress: 0n, PciSegment: Number.parseInt(f.bdf.slice(0, 4), 16) || 0 },
    PhysicalDeviceObject: pdo,
    DmaDevice: device,
    Details: details,
  };
}

export function faultAddress(info: FAULT_INFORMATION): bigint {
  return (info.X64?.FaultAddress ?? info.Arm64?.FaultAddress) as bigint;
}

interface Waiter {
  readonly filter: { readonly bdf?: string; readonly iova?: bigint };
  readonly resolve: (r: FaultRecord) => void;
  readonly reject: (e: IommuError) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

/** The recent faults (bounded) and the promises waiting for the next matching one. */
export class FaultLog {
  readonly #records: FaultRecord[] = [];
  readonly #waiters = new Set<Waiter>();
  #closed = false;

  get size(): number {
    return this.#records.length;
  }

  all(): FaultRecord[] {
    return this.#records.slice();
  }

  record(record: FaultRecord): void {
    this.#records.push(record);
    if (this.#records.length > FAULT_LOG_LIMIT) this.#records.shift();
  }

  /** Settle every waiter whose filter matches `record`. */
  wake(record: FaultRecord): void {
    const d = record.information.Details;
    for (const w of [...this.#waiters]) {
      if (w.filter.bdf !== undefined && d.bdf !== w.filter.bdf) continue;
      if (w.filter.iova !== undefined && faultAddress(record.information) !== w.filter.iova) continue;
      this.#settle(w);
      w.resolve(record);
    }
  }

  /** Resolve with the next fault matching `filter`, or reject after `timeoutMs` or at close(). */
  wait(filter: { bdf?: string; iova?: bigint }, timeoutMs: number): Promise<FaultRecord> {
    if (this.#closed) return Promise.reject(closedError());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(w);
        reject(new IommuError('STATUS_TIMEOUT', `no DMA fault${filter.bdf ? ` from ${filter.bdf}` : ''} within ${timeoutMs} ms`, { operation: 'waitForFault' }));
      }, timeoutMs);
      const w: Waiter = { filter, resolve, reject, timer };
      this.#waiters.add(w);
    });
  }

  /** Reject every pending waiter with STATUS_INVALID_DEVICE_REQUEST (the platform was closed). */
  close(): void {
    this.#closed = true;
    for (const w of [...this.#waiters]) {
      this.#settle(w);
      w.reject(closedError());
    }
  }

  #settle(w: Waiter): void {
    clearTimeout(w.timer);
    this.#waiters.delete(w);
  }
}

function closedError(): IommuError {
  return new IommuError('STATUS_INVALID_DEVICE_REQUEST', 'the platform was closed', { operation: 'waitForFault' });
}

/** waitForFault's arguments, checked: a filter { bdf?: string, iova?: bigint } and a timeout. */
export function waitForFault(ctx: PlatformContext, filter: unknown, timeout: unknown): Promise<FaultRecord> {
  const op = 'waitForFault';
  try {
    ctx.live(op);
    const f = isAbsent(filter) ? {} : filter;
    if (typeof f !== 'object' || Array.isArray(f)) throw invalidOption(op, 'filter', `must be an object { bdf?, iova? } (got ${describe(filter)})`);
    const { bdf, iova } = f as { bdf?: unknown; iova?: unknown };
    if (bdf !== undefined && typeof bdf !== 'string') throw invalidOption(op, 'filter.bdf', `must be a string (got ${describe(bdf)})`);
    if (iova !== undefined && (typeof iova !== 'bigint' || iova < 0n || iova > U64_MAX)) throw invalidOption(op, 'filter.iova', `must be a bigint within 0..2^64-1 (got ${describe(iova)})`);
    const ms = timeoutMs(timeout, op, 'timeoutMs');
    return ctx.faultLog.wait({ ...(bdf !== undefined ? { bdf } : {}), ...(iova !== undefined ? { iova } : {}) }, ms);
  } catch (e) {
    return Promise.reject(e);
  }
}

/** The backend's fault callback: record it, deliver it to the device's handler, wake waiters. */
export function onBackendFault(ctx: PlatformContext, f: BackendFault): void {
  const d = [...ctx.reg.liveDevices].find((s) => s.pdo.bdf === f.bdf);
  const pasidState = f.pasid !== undefined ? d?.pasids.get(f.pasid) : undefined;
  const domain = pasidState?.domain?.handle ?? d?.domain?.handle ?? null;
  const pdo = d?.pdo ?? ctx.pdos.get(f.bdf) ?? new PhysicalDeviceObject({
    bdf: f.bdf, vendorId: 0, deviceId: 0, classCode: 0, iommuGroup: null, requesterId: 0, driver: null, usable: false, maxPasidLog2: 0,
  });
  const info = toFaultInformation(f, ctx.backend.capabilities.arch, { pdo, device: d?.handle ?? null, domain });
  const suppressed = pasidState !== undefined && d?.suppressPasidFaults === true;
  const handler = !suppressed ? d?.fault : null;
  const record: FaultRecord = { information: info, delivered: !!handler };
  ctx.faultLog.record(record);
  if (handler) {
    try {
      handler.FaultHandler(handler.FaultContext, info);
    } catch (e) {
      ctx.reportHandlerError(e, 'IOMMU_DEVICE_FAULT_HANDLER');
    }
  }
  ctx.faultLog.wake(record);
}

function setFaultReporting(ctx: PlatformContext, d: DeviceState, op: string, base: unknown, enable: unknown, config: DEVICE_FAULT_CONFIGURATION | null | undefined): void {
  if (base !== 0) throw invalidArg(op, 2, 'InputMappingIdBase', 'must be 0 (input-mapping IDs are for ACPI-enumerated Arm64 devices)');
  if (typeof enable !== 'boolean') throw invalidArg(op, 3, 'Enable', 'must be a boolean');
  if (!d.domain) throw invalidArg(op, 1, op === 'SetDeviceFaultReporting' ? 'PhysicalDeviceObject' : 'DmaDevice', `${d.pdo.bdf} is not attached to a domain (fault reporting is set on attached devices)`);
  if (!enable) {
    d.fault = null;
    return;
  }
  if (!config || typeof config.FaultHandler !== 'function') throw invalidArg(op, 4, 'FaultConfig', 'must give a FaultHandler function when enabling');
  if (ctx.backend.capabilities.faultSource === 'none') {
    throw statusError('STATUS_NOT_SUPPORTED', op, `the ${ctx.backend.kind} backend cannot observe DMA faults here (${ctx.backend.reason})`);
  }
  d.fault = { FaultHandler: config.FaultHandler, FaultContext: config.FaultContext };
}

/** IOMMU_SET_DEVICE_FAULT_REPORTING_EX. */
export function setDeviceFaultReportingEx(ctx: PlatformContext, DmaDevice: IommuDmaDevice, InputMappingIdBase: number, Enable: boolean, FaultConfig?: DEVICE_FAULT_CONFIGURATION | null): void {
  const op = 'SetDeviceFaultReportingEx';
  ctx.live(op);
  setFaultReporting(ctx, ctx.reg.device(DmaDevice, op, 1), op, InputMappingIdBase, Enable, FaultConfig);
}

/** IOMMU_SET_DEVICE_FAULT_REPORTING (V1). */
export function setDeviceFaultReporting(ctx: PlatformContext, PhysicalDeviceObject: PhysicalDeviceObject, InputMappingIdBase: number, Enable: boolean, FaultConfig?: DEVICE_FAULT_CONFIGURATION | null): void {
  const op = 'SetDeviceFaultReporting';
  ctx.live(op);
  const pdo = checkPdo(ctx, PhysicalDeviceObject, op, 1);
  const d = ctx.byPdo.get(pdo);
  if (!d) throw invalidArg(op, 1, 'PhysicalDeviceObject', `${pdo.bdf} is not attached to a domain`);
  setFaultReporting(ctx, d, op, InputMappingIdBase, Enable, FaultConfig);
}
