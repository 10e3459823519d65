/**
 * The contract's `MemorySpan` map source (contract.ts), checked the same way by every backend: its
 * shape (TypeError, as a malformed run is), a freed allocation (EFAULT, as a freed allocation's
 * physical pages are), a range outside the allocation (EINVAL). A backend maps a span of its own
 * live allocation directly; any other span becomes the physical runs it names (`spanRuns`), so the
 * backend decides exactly as it would for those runs.
 */
import type { MapSource, MemorySpan, PhysicalRun } from './contract.js';
import { ERR, describe, fail, hex } from './shared.js';

/** Whether a map source is a span (anything not an array; a malformed one fails in `checkSpan`). */
export function isSpan(source: MapSource): source is MemorySpan {
  return !Array.isArray(source);
}

/** A span's shape, liveness and range; throws as described above. */
export function checkSpan(span: unknown, syscall: string): asserts span is MemorySpan {
  if (span === null || typeof span !== 'object') throw new TypeError(`the map source must be an array of runs or a { memory, offset, length } span, got ${describe(span)}`);
  const s = span as { memory?: unknown; offset?: unknown; length?: unknown };
  const m = s.memory as { freed?: unknown; size?: unknown; runs?: unknown; id?: unknown } | null | undefined;
  if (m === null || typeof m !== 'object' || typeof m.runs !== 'function' || typeof m.size !== 'bigint') {
    throw new TypeError(`span.memory must be memory from allocateMemory, got ${describe(m)}`);
  }
  if (typeof s.offset !== 'bigint' || typeof s.length !== 'bigint') throw new TypeError('span.offset and span.length must be bigints');
  if (m.freed === true) fail(ERR.EFAULT, syscall, `allocation ${String(m.id)} was freed: its pages are not memory this backend allocated`);
  if (s.offset < 0n || s.length <= 0n || s.offset + s.length > m.size) {
    fail(ERR.EINVAL, syscall, `span ${hex(s.offset)}+${hex(s.length)} is not inside allocation ${String(m.id)} of ${hex(m.size)} bytes`);
  }
}

/** The physical runs a span names (after `checkSpan`): what the backend maps when the span is not its own. */
export function spanRuns(span: unknown, syscall: string): readonly PhysicalRun[] {
  checkSpan(span, syscall);
  return span.memory.runs(span.offset, span.length);
}

/**
 * The bytes a map source asks for (its runs' lengths, or the span's), for the memlock and limit
 * messages; parts that are not bigints count 0 (the map's own checks report them).
 */
export function sourceBytes(source: unknown): bigint {
  let n = 0n;
  if (Array.isArray(source)) {
    for (const r of source) if (typeof (r as PhysicalRun | null)?.length === 'bigint') n += (r as PhysicalRun).length;
  } else if (typeof (source as { length?: unknown } | null)?.length === 'bigint') n = (source as { length: bigint }).length;
  return n;
}
