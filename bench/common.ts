/**
 * What the benchmarks share: timing, interleaved A/B repetitions with median ratios, the
 * readable table and the `--json` last line.
 *
 * Every headline figure is a ratio of two things measured in the same process, interleaved
 * (A B, B A, A B, ... so drift hits both alike), and the reported value is the median of the
 * per-repetition ratios. Absolute rates are printed for context only: on a shared or emulated
 * machine they mean little from one run to the next.
 */
import { readFileSync } from 'node:fs';

export interface Result {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
}

/** A row of the readable table: a result plus what it was made of. */
export interface Row extends Result {
  /** Target, e.g. '≥ 0.9' (empty when the figure is informational). */
  readonly target?: string;
  readonly met?: boolean;
  readonly detail?: string;
}

/** A ratio figure; with `atLeast`, its target (`≥ atLeast`) and whether it was met. */
export function ratioRow(name: string, ratio: number, atLeast: number | null, detail: string): Row {
  if (atLeast === null) return { name, value: ratio, unit: 'ratio', detail };
  return { name, value: ratio, unit: 'ratio', target: `≥ ${atLeast}`, met: ratio >= atLeast, detail };
}

/** Monotonic time in nanoseconds (as a double: exact to well below a microsecond for days). */
export function nowNs(): number {
  return Number(process.hrtime.bigint());
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A rate measurement: `ops` operations (or bytes) in `ns` nanoseconds. */
export interface Sample {
  readonly ops: number;
  readonly ns: number;
}

export const rate = (s: Sample): number => (s.ops / s.ns) * 1e9;

export interface Comparison {
  /** Median of the per-repetition ratios rate(A) / rate(B). */
  readonly ratio: number;
  readonly ratios: number[];
  /** Median rates (per second) of A and of B. */
  readonly a: number;
  readonly b: number;
}

/**
 * Run A and B `reps` times, interleaved (A B, B A, ...), and compare their rates. `before` runs
 * ahead of every timed run (e.g. a full GC), untimed.
 */
export function compare(reps: number, runA: () => Sample, runB: () => Sample, before: () => void = () => {}): Comparison {
  const as: number[] = [];
  const bs: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < reps; r++) {
    let a: Sample;
    let b: Sample;
    if (r % 2 === 0) {
      before();
      a = runA();
      before();
      b = runB();
    } else {
      before();
      b = runB();
      before();
      a = runA();
    }
    as.push(rate(a));
    bs.push(rate(b));
    ratios.push(rate(a) / rate(b));
  }
  return { ratio: median(ratios), ratios, a: median(as), b: median(bs) };
}

/** A full garbage collection when the process runs with --expose-gc; else nothing. */
export function fullGc(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
}

/** VmRSS of this process in bytes (/proc/self/status), or process.memoryUsage().rss. */
export function vmRss(): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    /* not Linux */
  }
  return process.memoryUsage().rss;
}

export function fmtRate(perSecond: number, unit = '/s'): string {
  const abs = Math.abs(perSecond);
  if (abs >= 1e9) return `${(perSecond / 1e9).toFixed(2)} G${unit}`;
  if (abs >= 1e6) return `${(perSecond / 1e6).toFixed(2)} M${unit}`;
  if (abs >= 1e3) return `${(perSecond / 1e3).toFixed(1)} k${unit}`;
  return `${perSecond.toFixed(1)} ${unit}`;
}

export function fmtBytesRate(bytesPerSecond: number): string {
  const abs = Math.abs(bytesPerSecond);
  if (abs >= 2 ** 30) return `${(bytesPerSecond / 2 ** 30).toFixed(2)} GiB/s`;
  if (abs >= 2 ** 20) return `${(bytesPerSecond / 2 ** 20).toFixed(1)} MiB/s`;
  return `${(bytesPerSecond / 1024).toFixed(1)} KiB/s`;
}

function fmtValue(r: Result): string {
  if (r.unit === 'ratio') return r.value.toFixed(3);
  if (Number.isInteger(r.value)) return String(r.value);
  return r.value.toFixed(1);
}

/** The readable table (stdout). */
export function printTable(title: string, rows: readonly Row[]): void {
  const head = ['figure', 'value', 'unit', 'target', 'met', 'measured'];
  const body = rows.map((r) => [r.name, fmtValue(r), r.unit, r.target ?? '', r.target ? (r.met ? 'yes' : 'NO') : '', r.detail ?? '']);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 1 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  console.log(`\n${title}\n`);
  console.log(line(head));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const b of body) console.log(line(b));
  console.log('');
}

/** The machine-readable last line. */
export function printJson(results: readonly Result[]): void {
  console.log(JSON.stringify({ results: results.map((r) => ({ name: r.name, value: r.value, unit: r.unit })) }));
}

export function hasFlag(argv: readonly string[], flag: string): boolean {
  return argv.includes(flag);
}

export function option(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i >= 0 && i + 1 < argv.length) return argv[i + 1];
  const eq = argv.find((a) => a.startsWith(`${name}=`));
  return eq?.slice(name.length + 1);
}

/** Progress notes go to stderr so stdout stays the table (and the JSON line). */
export function note(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}
