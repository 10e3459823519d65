/** A small, strict argument parser: unknown flags are errors that name the flag. */
import { type BackendChoice, BACKEND_CHOICES, parseBackendChoice } from '../backend/select.js';
import { IommuError } from '../errors.js';

export interface FlagSpec {
  readonly [name: string]: { readonly value: boolean; readonly choices?: readonly string[] };
}

export class UsageError extends Error {}

export function parseArgs(argv: readonly string[], spec: FlagSpec, command: string): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new UsageError(`${command}: unexpected argument '${a}'`);
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const s = spec[name];
    if (!s) throw new UsageError(`${command}: unknown option '--${name}' (options: ${Object.keys(spec).map((k) => `--${k}`).join(', ')})`);
    if (!s.value) {
      if (eq >= 0) throw new UsageError(`${command}: --${name} takes no value`);
      out[name] = true;
      continue;
    }
    const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
    if (v === undefined || v === '') throw new UsageError(`${command}: --${name} needs a value`);
    if (s.choices && !s.choices.includes(v)) throw new UsageError(`${command}: --${name} must be one of ${s.choices.join(', ')} (got '${v}')`);
    out[name] = v;
  }
  return out;
}

/** Render rows as an aligned text table. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}

export function hex(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}

/** JSON with bigints as hex strings. */
export function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? hex(x) : x), 2);
}

/** `--backend`: the same parser as the option and DMA_IOMMU_BACKEND; a bad name is a usage error. */
export function backendFlag(value: string | boolean | undefined, command: string): BackendChoice | undefined {
  if (value === undefined || typeof value === 'boolean') return undefined;
  try {
    return parseBackendChoice(value, '--backend', '--backend');
  } catch (e) {
    if (e instanceof IommuError) throw new UsageError(`${command}: --backend must be one of ${BACKEND_CHOICES.join(', ')} (got '${value}')`);
    throw e;
  }
}

/** setTimeout's limit: a longer delay silently becomes 1 ms. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** A millisecond count flag: a decimal integer in 1..2^31-1 (what a Node timer can wait). */
export function millisecondsFlag(value: string | boolean | undefined, flag: string, command: string): number | undefined {
  if (value === undefined || typeof value === 'boolean') return undefined;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_TIMEOUT_MS) {
    throw new UsageError(`${command}: --${flag} takes whole milliseconds in 1..${MAX_TIMEOUT_MS} (about 24.8 days, the longest a Node timer can wait; got '${value}')`);
  }
  return n;
}
