/**
 * The one error class of the package. `.code` is the stable contract (the `STATUS_*` name);
 * `.status` the NTSTATUS number; `.errno` (negative, Node convention) and `.syscall` are set when a
 * kernel call (real, or the simulator's model of it) failed.
 */
import { getSystemErrorName } from 'node:util';
import { NTSTATUS, type StatusName, statusForErrno } from './status.js';
import { hex } from './util/u64.js';

export interface IommuErrorContext {
  /** Which WDK member or library call failed, e.g. 'MapLogicalRangeEx'. */
  operation?: string;
  /** The argument at fault, by its WDK name, e.g. 'ExplicitLogicalAddress'. */
  argument?: string;
  errno?: number;
  syscall?: string;
  iova?: bigint;
  length?: bigint;
  cause?: unknown;
}

export class IommuError extends Error {
  readonly code: StatusName;
  readonly status: number;
  readonly errno?: number;
  readonly syscall?: string;
  readonly operation?: string;
  readonly argument?: string;
  readonly iova?: bigint;
  readonly length?: bigint;

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
