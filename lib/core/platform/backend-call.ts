/**
 * The one point where a backend's failure becomes an IommuError: every backend call the core
 * makes goes through `viaBackend` (or, on hot paths without a closure, `toIommuError` in a catch).
 * A BackendError gets the status the member documents for its errno (`overrides`), else the
 * shared errno table's.
 */
import { getSystemErrorName } from 'node:util';
import { BackendError, IommuError, isBackendError } from '../../errors.js';
import { type StatusName, statusForErrno } from '../../status.js';

export interface ErrorExtra {
  iova?: bigint;
  length?: bigint;
  message?: string;
  /** The argument at fault (`IommuError.argument`), for any errno not in `argumentFor`. */
  argument?: string;
  /** The argument at fault per errno name (e.g. `{ EFAULT: 'PhysicalAddressToMap' }`). */
  argumentFor?: Partial<Record<string, string>>;
}

/** Run a backend leaf operation, its errors converted by `toIommuError`. */
export function viaBackend<T>(operation: string, fn: () => T, overrides: Partial<Record<string, StatusName>> = {}, extra: ErrorExtra = {}): T {
  try {
    return fn();
  } catch (e) {
    throw toIommuError(e, operation, overrides, extra);
  }
}

/**
 * Any failure as an IommuError: an IommuError as is; a BackendError with its errno's status; a
 * TypeError/RangeError (a backend's own argument check the core should have made first) as
 * STATUS_INVALID_PARAMETER; anything else as STATUS_UNSUCCESSFUL. The original is the `cause`.
 */
export function toIommuError(e: unknown, operation: string, overrides: Partial<Record<string, StatusName>> = {}, extra: ErrorExtra = {}): IommuError {
  if (e instanceof IommuError) return e;
  if (!isBackendError(e)) {
    const code: StatusName = e instanceof TypeError || e instanceof RangeError ? 'STATUS_INVALID_PARAMETER' : 'STATUS_UNSUCCESSFUL';
    return new IommuError(code, extra.message ?? safeMessage(e), { operation, cause: e, ...(extra.argument !== undefined ? { argument: extra.argument } : {}) });
  }
  const be = e as BackendError;
  const label = errnoLabel(be.errno);
  const code = overrides[label] ?? statusForErrno(be.errno);
  const argument = extra.argumentFor?.[label] ?? extra.argument;
  return IommuError.fromErrno(be.errno, be.syscall, {
    code,
    operation,
    ...(argument !== undefined ? { argument } : {}),
    message: extra.message ?? be.message,
    cause: be,
    ...(extra.iova !== undefined ? { iova: extra.iova } : {}),
    ...(extra.length !== undefined ? { length: extra.length } : {}),
  });
}

/** 'EINVAL' for -22 (the key of an override table), or the number as text. */
function errnoLabel(errno: number): string {
  try {
    return getSystemErrorName(errno < 0 ? errno : -errno);
  } catch {
    return String(errno);
  }
}

/** `e.message` or a description of a thrown non-Error, without ever throwing. */
export function safeMessage(e: unknown): string {
  try {
    if (e instanceof Error) return String(e.message);
    return `threw ${typeof e === 'object' && e !== null ? 'an object' : String(e)}`;
  } catch {
    return 'threw a value that cannot be described';
  }
}
