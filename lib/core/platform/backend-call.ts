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
}

/** Run a backend leaf operation, its errors converted by `toIommuError`. */
export function viaBackend<T>(operation: string, fn: () => T, overrides: Partial<Record<string, StatusName>> = {}, extra: ErrorExtra = {}): T {
  try {
    return fn();
  } catch (e) {
    throw toIommuError(e, operation, overrides, extra);
  }
}

export function toIommuError(e: unknown, operation: string, overrides: Partial<Record<string, StatusName>> = {}, extra: ErrorExtra = {}): unknown {
  if (!isBackendError(e)) return e;
  const be = e as BackendError;
  const code = overrides[errnoLabel(be.errno)] ?? statusForErrno(be.errno);
  return IommuError.fromErrno(be.errno, be.syscall, {
    code,
    operation,
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
