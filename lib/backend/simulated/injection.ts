/**
 * The simulator's leaf operations (their syscall names, for errors and `failNth`), their call
 * and error counters, and failure injection: `failNth(n, errno, op?)` arms an injection that
 * makes the n-th next matching operation throw before it changes anything.
 */
import { BackendError } from '../../errors.js';
import { describe, errnoName } from './util.js';

/** Leaf operations, their syscall names (for errors and failNth). */
export const SIM_SYSCALLS = {
  enumerateDevices: 'sysfs',
  allocateMemory: 'mmap',
  openDevice: 'VFIO_DEVICE_BIND_IOMMUFD',
  closeDevice: 'close',
  deviceRegions: 'VFIO_DEVICE_GET_REGION_INFO',
  availableDomainTypes: 'IOMMU_GET_HW_INFO',
  inputMappingIds: 'IOMMU_GET_HW_INFO',
  allocDomain: 'IOMMU_IOAS_ALLOC',
  configureDomain: 'IOMMU_HWPT_ALLOC',
  flushDomain: 'IOMMU_HWPT_INVALIDATE',
  freeDomain: 'IOMMU_DESTROY',
  geometry: 'IOMMU_IOAS_IOVA_RANGES',
  attach: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT',
  detach: 'VFIO_DEVICE_DETACH_IOMMUFD_PT',
  attachPasid: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT',
  detachPasid: 'VFIO_DEVICE_DETACH_IOMMUFD_PT',
  map: 'IOMMU_IOAS_MAP',
  unmap: 'IOMMU_IOAS_UNMAP',
} as const;
export type SimOpName = keyof typeof SIM_SYSCALLS;
export const OP_NAMES = Object.keys(SIM_SYSCALLS) as SimOpName[];
export const OP_INDEX = Object.fromEntries(OP_NAMES.map((n, i) => [n, i])) as Record<SimOpName, number>;

interface Injection {
  remaining: number;
  readonly errno: number;
  readonly op: string | undefined;
}

/** Counters per operation and per error, and the armed injections. */
export class FailureInjector {
  /** Calls per operation, by OP_INDEX. */
  readonly ops = new Float64Array(OP_NAMES.length);
  readonly errors: Record<string, number> = {};
  /** Armed injections (the hot paths test `.length !== 0` before calling `inject`). */
  injections: Injection[] = [];

  /** Count one more `op`; throw the injected error when one comes due. */
  count(op: SimOpName): void {
    this.ops[OP_INDEX[op]]++;
    if (this.injections.length !== 0) this.inject(op);
  }

  inject(op: SimOpName): void {
    const syscall = SIM_SYSCALLS[op];
    let due: Injection | null = null;
    // every armed injection counts the ops it matches; when several come due on the same op,
    // the op fails once (with the earliest armed) and all of them are spent
    for (let i = 0; i < this.injections.length; i++) {
      const inj = this.injections[i];
      if (inj.op !== undefined && inj.op !== op && inj.op !== syscall) continue;
      if (--inj.remaining === 0 && due === null) due = inj;
    }
    if (due === null) return;
    this.injections = this.injections.filter((i) => i.remaining > 0);
    const name = errnoName(due.errno);
    this.errors[name] = (this.errors[name] ?? 0) + 1;
    throw new BackendError(due.errno, syscall, `injected by failNth (${op})`);
  }

  countError(e: unknown): void {
    const key = e instanceof BackendError ? errnoName(e.errno) : e instanceof Error ? e.name : 'unknown';
    this.errors[key] = (this.errors[key] ?? 0) + 1;
  }

  /** See SimulatorTestControls.failNth. */
  failNth(n: number, errno: number, op?: string): void {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new TypeError(`n must be a positive integer, got ${describe(n)}`);
    if (typeof errno !== 'number' || !Number.isInteger(errno) || errno === 0) throw new TypeError(`errno must be a non-zero integer, got ${describe(errno)}`);
    if (op !== undefined) {
      const known = Object.keys(SIM_SYSCALLS).includes(op) || Object.values(SIM_SYSCALLS).includes(op as never);
      if (typeof op !== 'string' || !known || op === 'closeDevice' || op === 'close') {
        throw new RangeError(`op must name a leaf operation (${Object.keys(SIM_SYSCALLS).join(', ')}) or its syscall`);
      }
    }
    this.injections.push({ remaining: n, errno: errno < 0 ? errno : -errno, op });
  }

  clear(): void {
    this.injections = [];
  }

  counters(listenerErrors: number): { ops: Record<string, number>; errors: Record<string, number>; listenerErrors: number } {
    return { ops: Object.fromEntries(OP_NAMES.map((n, i) => [n, this.ops[i]])), errors: { ...this.errors }, listenerErrors };
  }

  armed(): Array<{ remaining: number; errno: string; op: string | null }> {
    return this.injections.map((i) => ({ remaining: i.remaining, errno: errnoName(i.errno), op: i.op ?? null }));
  }
}
