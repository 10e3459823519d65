/**
 * The one error class of the package. `.code` is the stable contract (the `STATUS_*` name);
 * `.status` the NTSTATUS number; `.errno` (negative, Node convention) and `.syscall` are set when a
 * kernel call (real, or the simulator's model of it) failed.
 */
import { getSystemErrorName } from 'node:util';
import { NTSTATUS, type StatusName, statusForErrno } from './status.js';
import { hex } from './util/u64.js';

/** What an {@link IommuError} is built from besides its code and message. */
export interface IommuErrorContext {
  /** Which WDK member or library call failed, e.g. 'MapLogicalRangeEx'. */
  operation?: string;
  /** The argument at fault, by its WDK name, e.g. 'ExplicitLogicalAddress'. */
  argument?: string;
  /** The errno of the failed kernel call (either sign; stored negative). */
  errno?: number;
  /** The kernel call that failed, e.g. `IOMMU_IOAS_MAP` (the same name on every backend). */
  syscall?: string;
  /** The logical address (IOVA) involved, in bytes. */
  iova?: bigint;
  /** The length involved, in bytes. */
  length?: bigint;
  /** The underlying error, kept as the standard `Error.cause`. */
  cause?: unknown;
}

/**
 * The one error class of the public API: every WDK member, platform service, `DmaMemory` method,
 * {@link IoGetIommuInterfaceEx} and {@link openPlatform} throws this and nothing else. Match on
 * `.code`; the message is for people. See the README's error table for each code's meaning.
 */
export class IommuError extends Error {
  /** The `STATUS_*` name: the stable contract, e.g. `STATUS_INVALID_PARAMETER_3`. */
  readonly code: StatusName;
  /** The NTSTATUS value of `code` (e.g. `0xC00000EF` for `STATUS_INVALID_PARAMETER_1`). */
  readonly status: number;
  /** Where a kernel call (or the simulator's model of one) failed: its errno, negative (Node convention, e.g. -22 for EINVAL). */
  readonly errno?: number;
  /** Where a kernel call failed: its name (e.g. `IOMMU_IOAS_MAP`, `VFIO_IOMMU_MAP_DMA`). */
  readonly syscall?: string;
  /** The WDK member or library call that failed (e.g. `MapLogicalRangeEx`, `allocateDmaMemory`). */
  readonly operation?: string;
  /** The argument at fault, when one is: its WDK name (`ExplicitLogicalAddress`) or option path (`options.lazy`). */
  readonly argument?: string;
  /** The logical address (IOVA) involved, in bytes, when one is. */
  readonly iova?: bigint;
  /** The length involved, in bytes, when one is. */
  readonly length?: bigint;

  /**
   * @param code - the `STATUS_*` name.
   * @param message - what went wrong, in words (prefixed with the operation and code in `.message`).
   * @param ctx - the operation, argument, errno, syscall, address and cause.
   */
  constructor(code: StatusName, message: string, ctx: IommuErrorContext = {}) {
    const parts: string[] = [];
    if (ctx.operation) parts.push(`${ctx.operation}:`);
    parts.push(message);
    if (ctx.errno !== undefined) {
      let name = String(ctx.errno);
      try {
        name = getSystemErrorName(ctx.errno < 0 ? ctx.errno : -ctx.errno);
      } catch {
        /* unknown errno: keep the number */
      }
      parts.push(`(${name}${ctx.syscall ? `, ${ctx.syscall}` : ''})`);
    }
    if (ctx.iova !== undefined) parts.push(`iova=${hex(ctx.iova)}`);
    if (ctx.length !== undefined) parts.push(`length=${hex(ctx.length)}`);
    super(`${code}: ${parts.join(' ')}`, ctx.cause !== undefined ? { cause: ctx.cause } : undefined);
    this.code = code;
    this.status = NTSTATUS[code];
    if (ctx.errno !== undefined) this.errno = ctx.errno < 0 ? ctx.errno : -ctx.errno;
    if (ctx.syscall !== undefined) this.syscall = ctx.syscall;
    if (ctx.operation !== undefined) this.operation = ctx.operation;
    if (ctx.argument !== undefined) this.argument = ctx.argument;
    if (ctx.iova !== undefined) this.iova = ctx.iova;
    if (ctx.length !== undefined) this.length = ctx.length;
    Error.captureStackTrace?.(this, new.target);
  }

  /** Build the error for a failed kernel call (or the simulator's model of one). */
  static fromErrno(
    errno: number,
    syscall: string,
    ctx: IommuErrorContext & { code?: StatusName; message?: string } = {},
  ): IommuError {
    const code = ctx.code ?? statusForErrno(errno);
    return new IommuError(code, ctx.message ?? `${syscall} failed`, { ...ctx, errno, syscall });
  }
}
Object.defineProperty(IommuError.prototype, 'name', { value: 'IommuError', enumerable: false });

/**
 * What a backend throws for a failed leaf operation: the errno and the call that failed. The
 * core turns it into an IommuError with the status the WDK member documents for that situation.
 */
export class BackendError extends Error {
  readonly errno: number;
  readonly syscall: string;
  constructor(errno: number, syscall: string, message?: string) {
    const e = errno < 0 ? errno : -errno;
    let name = String(e);
    try {
      name = getSystemErrorName(e);
    } catch {
      /* keep number */
    }
    super(message ? `${syscall}: ${name}: ${message}` : `${syscall}: ${name}`);
    this.errno = e;
    this.syscall = syscall;
  }
}
Object.defineProperty(BackendError.prototype, 'name', { value: 'BackendError', enumerable: false });

export function isBackendError(e: unknown): e is BackendError {
  return e instanceof BackendError;
}
