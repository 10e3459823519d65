/**
 * Comparing two platforms' observations of one operation. Every field is compared exactly; the
 * only relaxation is the one the runner derived from declared capabilities (`faultsCompared`),
 * never a test of which backend produced an observation.
 */
import type { Observation } from './run.js';

/** A difference between the two platforms' observations, by field. */
export interface Difference {
  /** 'status', 'value', 'memory[<slot>]', 'edu', 'faults'. */
  readonly field: string;
  readonly a: string;
  readonly b: string;
}

export function compareObservations(a: Observation, b: Observation): Difference[] {
  const out: Difference[] = [];
  if (a.status !== b.status) out.push({ field: 'status', a: a.status, b: b.status });
  if ((a.value ?? '') !== (b.value ?? '')) out.push({ field: 'value', a: a.value ?? '(none)', b: b.value ?? '(none)' });
  const slots = Math.max(a.memory.length, b.memory.length);
  for (let i = 0; i < slots; i++) {
    if (a.memory[i] !== b.memory[i]) out.push({ field: `memory[${i}]`, a: a.memory[i] ?? '(none)', b: b.memory[i] ?? '(none)' });
  }
  if ((a.edu ?? '') !== (b.edu ?? '')) out.push({ field: 'edu', a: a.edu ?? '(none)', b: b.edu ?? '(none)' });
  if (a.faultsCompared && b.faultsCompared) {
    const fa = a.faults.slice().sort().join(', ');
    const fb = b.faults.slice().sort().join(', ');
    if (fa !== fb) out.push({ field: 'faults', a: fa || '(none)', b: fb || '(none)' });
  }
  return out;
}

/** Where two byte arrays first differ and what each holds there (for a readable memory difference). */
export function firstByteDifference(a: Uint8Array | null, b: Uint8Array | null): string {
  if (!a || !b) return `one side freed (${a ? 'b' : 'a'})`;
  const n = Math.min(a.length, b.length);
  let first = -1;
  let last = -1;
  let count = 0;
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) {
      if (first < 0) first = i;
      last = i;
      count++;
    }
  }
  if (first < 0) return a.length === b.length ? 'equal' : `lengths ${a.length} vs ${b.length}`;
  const show = (x: Uint8Array): string => Buffer.from(x.subarray(first, Math.min(first + 16, n))).toString('hex');
  return `${count} bytes differ in [0x${first.toString(16)}, 0x${(last + 1).toString(16)}); at 0x${first.toString(16)}: a ${show(a)} b ${show(b)}`;
}

/**
 * A short name for the kind of a divergence (operation, field, and the shape of each side's
 * answer), used to group divergences so each class is shrunk and reported once.
 */
export function divergenceClass(op: string, diffs: readonly Difference[]): string {
  const shape = (s: string): string => s.replace(/0x[0-9a-f]+/g, 'X').replace(/[0-9a-f]{16}/g, 'H').replace(/\d+/g, 'N').slice(0, 80);
  const d = diffs[0];
  if (!d) return op;
  const field = d.field.replace(/\[\d+\]/, '');
  if (field === 'status' || field === 'value') return `${op}: ${field} ${shape(d.a)} vs ${shape(d.b)}`;
  return `${op}: ${field}`;
}
