/**
 * `npm run bench:vm`: the native path against C issuing the same ioctls, inside `dma-iommu vm`
 * guests (root needed: it boots QEMU), on both kernels.
 *
 *   native-map-unmap-4k-vs-c-<kernel>   4 KiB MapLogicalRangeEx + UnmapLogicalRange pairs/s, TS ÷ C
 *   native-map-256m-vs-c-<kernel>       map then unmap of a pre-faulted 256 MiB buffer, bytes/s, TS ÷ C
 *   native-reserved-4k-vs-c-<kernel>    (extra) MapReservedLogicalRange + UnmapReservedLogicalRange
 *                                       pairs/s in a reserved range, TS ÷ C
 * <kernel> is type1 (Debian 6.12, VFIO type1 backend) or iommufd (self-built, iommufd backend).
 *
 * Options: --json, --kernel type1|iommufd|all (default all), --reps N (default 15).
 * --profile [--base DIR]: instead of the figures, the 4 KiB pair layer by layer (bench/native-profile.ts:
 * C, two Node-API calls, the backend contract by span and by PA, the public interface, and with
 * --base the public interface of the build in DIR, e.g. a checkout of main with `npm run build`),
 * in a guest with 6 edu devices; --layers LIST picks layers (see native-profile.ts).
 * The C baseline (bench/c/baseline.c) is compiled here with gcc into bench/.build/ (keyed by its
 * source hash) and run inside the guest from the writable project directory.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Row, fmtBytesRate, fmtRate, hasFlag, note, nowNs, option, printJson, printTable, ratioRow } from './common.js';
import type { WorkloadResult } from './native.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Compile the C baseline (once per source version). Returns its path relative to ROOT. */
export function buildBaseline(): string {
  const src = join(ROOT, 'bench', 'c', 'baseline.c');
  const header = join(ROOT, 'native', 'abi', 'uapi.h'); // the uAPI it includes
  const hash = createHash('sha256').update(readFileSync(src)).update(readFileSync(header)).digest('hex').slice(0, 12);
  const dir = join(ROOT, 'bench', '.build');
  const out = join(dir, `baseline-${hash}`);
  if (!existsSync(out)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${out}.${process.pid}.tmp`;
    const compilers = process.env.CC ? [process.env.CC] : ['gcc', 'cc', 'clang'];
    let built = false;
    const errors: string[] = [];
    for (const cc of compilers) {
      const r = spawnSync(cc, ['-O2', '-std=gnu11', '-Wall', '-Wextra', '-Werror', '-o', tmp, src], { encoding: 'utf8' });
      if (!r.error && r.status === 0) {
        built = true;
        break;
      }
      errors.push(`${cc}: ${r.error?.message ?? r.stderr}`);
    }
    if (!built) throw new Error(`building the C baseline failed (install gcc, or set CC):\n${errors.join('\n')}`);
    renameSync(tmp, out);
    note(`built the C baseline: ${relative(ROOT, out)}`);
  }
  return relative(ROOT, out);
}

interface KernelRun {
  readonly kernel: 'type1' | 'iommufd';
  readonly backend: 'vfio-type1' | 'iommufd';
  readonly workloads: WorkloadResult[];
  readonly seconds: number;
}

function runInGuest(kernel: 'type1' | 'iommufd', baseline: string, reps: number): Promise<KernelRun> {
  const backend = kernel === 'type1' ? 'vfio-type1' : 'iommufd';
  const args = [
    join(ROOT, 'bin', 'dma-iommu.js'),
    'vm',
    'run',
    '--kernel',
    kernel,
    '--timeout',
    '900',
    '--',
    'node',
    'dist/bench/native.js',
    '--backend',
    backend,
    '--baseline',
    baseline,
    '--reps',
    String(reps),
    '--json',
  ];
  const t0 = nowNs();
  note(`${kernel}: node ${args.slice(1).join(' ')}`);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      stdout += d;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const line = stdout.trim().split('\n').at(-1) ?? '';
      if (code !== 0) {
        reject(new Error(`vm run --kernel ${kernel} exited with ${code ?? signal}${code === 125 ? ' (harness error: see above)' : ''}\n${stdout}`));
        return;
      }
      try {
        const parsed = JSON.parse(line) as { workloads: WorkloadResult[] };
        resolvePromise({ kernel, backend, workloads: parsed.workloads, seconds: (nowNs() - t0) / 1e9 });
      } catch {
        reject(new Error(`no result line from the guest:\n${stdout}`));
      }
    });
  });
}

function spread(xs: readonly number[]): string {
  return `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
}

function rowsFor(run: KernelRun): Row[] {
  const rows: Row[] = [];
  const byName = new Map(run.workloads.map((w) => [w.name, w]));
  const k = run.kernel;
  const pairs = (w: WorkloadResult): string =>
    `TS ${fmtRate(w.ts, 'pairs/s')} (${(1e6 / w.ts).toFixed(1)} µs) vs C ${fmtRate(w.c, 'pairs/s')} (${(1e6 / w.c).toFixed(1)} µs); ${w.reps} reps × ${w.ops} pairs; ratio range ${spread(w.ratios)}`;
  const m4 = byName.get('map-unmap-4k');
  if (m4) {
    rows.push(ratioRow(`native-map-unmap-4k-vs-c-${k}`, m4.ratio, 0.9, pairs(m4)));
  }
  const big = byName.get('map-256m');
  if (big) {
    const detail = `TS ${fmtBytesRate(big.ts)} vs C ${fmtBytesRate(big.c)}; ${big.reps} reps × ${big.ops} map+unmap of 256 MiB; ratio range ${spread(big.ratios)}`;
    rows.push(ratioRow(`native-map-256m-vs-c-${k}`, big.ratio, 0.97, detail));
  }
  const res = byName.get('reserved-4k');
  if (res) rows.push(ratioRow(`native-reserved-4k-vs-c-${k}`, res.ratio, null, pairs(res)));
  if (m4) {
    rows.push({ name: `native-map-unmap-4k-ts-pairs-per-s-${k}`, value: Math.round(m4.ts), unit: 'pairs/s' });
    rows.push({ name: `native-map-unmap-4k-c-pairs-per-s-${k}`, value: Math.round(m4.c), unit: 'pairs/s' });
  }
  if (big) {
    rows.push({ name: `native-map-256m-ts-bytes-per-s-${k}`, value: Math.round(big.ts), unit: 'bytes/s' });
    rows.push({ name: `native-map-256m-c-bytes-per-s-${k}`, value: Math.round(big.c), unit: 'bytes/s' });
  }
  return rows;
}

/** --profile: bench/native-profile.ts in a guest with one edu device per layer; its output is the result. */
function profileInGuest(kernel: 'type1' | 'iommufd', baseline: string, reps: number, base: string | undefined, layers: string | undefined): Promise<void> {
  const backend = kernel === 'type1' ? 'vfio-type1' : 'iommufd';
  const args = [join(ROOT, 'bin', 'dma-iommu.js'), 'vm', 'run', '--kernel', kernel, '--devices', '6', '--timeout', '1200', '--'];
  args.push('node', 'dist/bench/native-profile.js', '--backend', backend, '--baseline', baseline, '--reps', String(reps));
  if (base) args.push('--base', resolve(base));
  if (layers) args.push('--layers', layers);
  note(`${kernel}: node ${args.slice(1).join(' ')}`);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('close', (code, signal) => (code === 0 ? resolvePromise() : reject(new Error(`vm run --kernel ${kernel} exited with ${code ?? signal}`))));
  });
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const json = hasFlag(argv, '--json');
  const reps = Number(option(argv, '--reps') ?? 15);
  const which = option(argv, '--kernel') ?? 'all';
  const kernels: Array<'type1' | 'iommufd'> = which === 'all' ? ['type1', 'iommufd'] : [which as 'type1' | 'iommufd'];
  for (const k of kernels) if (k !== 'type1' && k !== 'iommufd') throw new Error(`--kernel ${k}: type1, iommufd or all`);
  const started = nowNs();
  const baseline = buildBaseline();
  if (hasFlag(argv, '--profile')) {
    for (const k of kernels) await profileInGuest(k, baseline, reps, option(argv, '--base'), option(argv, '--layers'));
    return;
  }
  const rows: Row[] = [];
  const times: string[] = [];
  let failed = false;
  for (const k of kernels) {
    try {
      const run = await runInGuest(k, baseline, reps);
      rows.push(...rowsFor(run));
      times.push(`${k} ${run.seconds.toFixed(0)} s`);
    } catch (e) {
      failed = true;
      note(`${k}: ${(e as Error).message}`);
    }
  }
  const secs = (nowNs() - started) / 1e9;
  printTable(`dma-iommu native benchmarks in dma-iommu vm (TS ÷ C, ${reps} interleaved reps, medians; ${times.join(', ')}; total ${secs.toFixed(0)} s)`, rows);
  if (json) printJson(rows);
  if (failed) process.exitCode = 1;
}

await main();
