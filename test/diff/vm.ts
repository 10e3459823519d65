/**
 * `npm run test:diff`: the differential runner (main.ts) inside `dma-iommu vm` guests, the
 * simulator against the real kernel, on both kernels (type1: VFIO type1; iommufd: iommufd).
 *
 *   node dist/test/diff/vm.js [--kernel type1|iommufd|all] [--seed N] [--ops N] [--soak]
 *        [--length N] [--faults N] [--json]
 *
 * --ops is the budget per kernel (default 10000, CI's); --soak is --ops 100000 with a longer
 * timeout. Every guest's report streams through; with --json the last line is
 * {"results":[{"kernel","backend","sequences","operations","divergences",…}, …]}.
 * Exit code: 0 when no kernel's run diverged, 1 when one did, 125 when a guest run failed.
 */
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function option(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i < 0 ? undefined : argv[i + 1];
}

interface KernelResult {
  kernel: string;
  backend?: string;
  sequences?: number;
  operations?: number;
  divergences?: number;
  error?: string;
  [k: string]: unknown;
}

function runKernel(kernel: 'type1' | 'iommufd', guestArgs: string[], timeoutS: number): Promise<KernelResult> {
  const args = [join(ROOT, 'bin', 'dma-iommu.js'), 'vm', 'run', '--kernel', kernel, '--timeout', String(timeoutS), '--', 'node', 'dist/test/diff/main.js', ...guestArgs, '--json'];
  process.stderr.write(`test:diff: ${kernel}: node ${args.slice(1).join(' ')}\n`);
  const t0 = Date.now();
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let last = '';
    let buffered = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      buffered += d;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (line.startsWith('{"results"')) last = line;
        else process.stdout.write(`[${kernel}] ${line}\n`);
      }
    });
    child.on('close', (code, signal) => {
      if (buffered.startsWith('{"results"')) last = buffered;
      const seconds = (Date.now() - t0) / 1000;
      process.stderr.write(`test:diff: ${kernel}: exit ${code ?? signal} after ${seconds.toFixed(0)} s (boot included)\n`);
      try {
        const r = (JSON.parse(last) as { results: KernelResult[] }).results[0];
        resolvePromise({ ...r, kernel, wallSeconds: seconds });
      } catch {
        resolvePromise({ kernel, error: `no result line (vm run exited with ${code ?? signal})`, wallSeconds: seconds });
      }
    });
  });
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const json = argv.includes('--json');
  const soak = argv.includes('--soak');
  const which = option(argv, '--kernel') ?? 'all';
  if (!['all', 'type1', 'iommufd'].includes(which)) {
    process.stderr.write(`test:diff: --kernel must be type1, iommufd or all (got ${which})\n`);
    process.exit(2);
  }
  const ops = Number(option(argv, '--ops') ?? (soak ? 100_000 : 10_000));
  const seed = option(argv, '--seed') ?? String(Date.now() % 1_000_000_000);
  const guestArgs = ['--backend', 'native', '--seed', seed, '--ops', String(ops)];
  for (const name of ['--length', '--faults', '--shrink-seconds', '--sequences']) {
    const v = option(argv, name);
    if (v !== undefined) guestArgs.push(name, v);
  }
  // ~10,000 operations take 2-4 minutes under TCG; allow 5x that, plus boot, plus shrinking.
  const timeoutS = Math.max(900, Math.ceil(ops / 10_000) * 1200);
  const kernels: Array<'type1' | 'iommufd'> = which === 'all' ? ['type1', 'iommufd'] : [which as 'type1' | 'iommufd'];
  const results: KernelResult[] = [];
  for (const k of kernels) results.push(await runKernel(k, guestArgs, timeoutS));
  for (const r of results) {
    process.stderr.write(
      r.error
        ? `test:diff: ${r.kernel}: ERROR ${r.error}\n`
        : `test:diff: ${r.kernel} (${r.backend}): ${r.sequences} sequences, ${r.operations} operations, ${r.divergences} divergent\n`,
    );
  }
  if (json) process.stdout.write(`${JSON.stringify({ results: results.map(({ kernel, backend, sequences, operations, divergences, ...rest }) => ({ kernel, backend, sequences, operations, divergences, ...rest })) })}\n`);
  process.exitCode = results.some((r) => r.error) ? 125 : results.some((r) => (r.divergences ?? 0) > 0) ? 1 : 0;
}

main().catch((e: unknown) => {
  process.stderr.write(`test:diff: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(125);
});
