/**
 * The differential runner's entry point: seeded random sequences of public-API operations run on
 * the simulator (a) and on a second platform (b) in lockstep, compared operation by operation.
 *
 *   node dist/test/diff/main.js [--backend native|iommufd|vfio-type1|sim] [--seed N] [--ops N]
 *        [--sequences N] [--length N] [--faults N] [--shrink-seconds N] [--json]
 *
 *  --backend    platform b (default native: iommufd where the kernel has it, else VFIO type1);
 *               `sim` runs the simulator against itself (a sanity check of the runner)
 *  --seed       first sequence's seed (sequence i uses seed + i; default: time-based, printed)
 *  --ops        operations to run on both platforms in total (default 10000)
 *  --sequences  stop after this many sequences even if --ops is not reached
 *  --length     operations per sequence, at most (default 300; one pair of platforms serves every
 *               sequence, reset through the public API between them)
 *  --faults     faulting DMA pages a sequence may spend (default 1; the kernel log reports 3 per 5 s)
 *  --devices    the two edu BDFs (default $DMA_IOMMU_VM_EDU, else 0000:00:03.0 0000:00:04.0)
 *  --json       print, as the last line, {"results":[{kernel, backend, sequences, operations, divergences, …}]}
 *
 * Exit code: 0 when no sequence diverged, 1 when one did, 2 on a usage error.
 */
import { openPlatform } from '../../lib/index.js';
import { DEFAULT_RUN_OPTIONS, type FoundDivergence, PairPool, runCampaign } from './sequence.js';
import { Side, openSimulator } from './run.js';
import { formatSequence } from './ops.js';

function usage(msg: string): never {
  process.stderr.write(`diff: ${msg}\n`);
  process.exit(2);
}

function intOption(argv: string[], name: string, fallback: number, min = 0): number {
  const i = argv.indexOf(name);
  if (i < 0) return fallback;
  const v = argv[i + 1];
  if (v === undefined || !/^\d+$/.test(v) || Number(v) < min || !Number.isSafeInteger(Number(v))) usage(`${name} needs an integer ≥ ${min} (got ${v ?? 'nothing'})`);
  return Number(v);
}

function strOption(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) usage(`${name} needs a value`);
  return v;
}

const KNOWN = new Set(['--backend', '--seed', '--ops', '--sequences', '--length', '--faults', '--shrink-seconds', '--devices', '--json']);

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  for (const a of argv) if (a.startsWith('--') && !KNOWN.has(a)) usage(`unknown option ${a}`);
  const json = argv.includes('--json');
  const backend = strOption(argv, '--backend') ?? 'native';
  if (!['native', 'iommufd', 'vfio-type1', 'type1', 'sim', 'simulated'].includes(backend)) usage(`--backend must be native, iommufd, vfio-type1 or sim (got ${backend})`);
  const seed = intOption(argv, '--seed', Date.now() % 1_000_000_000);
  const operations = intOption(argv, '--ops', 10_000, 1);
  const seqIdx = argv.indexOf('--sequences');
  const sequences = seqIdx < 0 ? undefined : intOption(argv, '--sequences', 0, 1);
  const length = intOption(argv, '--length', 300, 1);
  const faultBudget = intOption(argv, '--faults', DEFAULT_RUN_OPTIONS.faultBudget);
  const shrinkMs = intOption(argv, '--shrink-seconds', 90, 0) * 1000;
  const devices = (strOption(argv, '--devices') ?? process.env.DMA_IOMMU_VM_EDU ?? '0000:00:03.0 0000:00:04.0').split(/[ ,]+/).filter(Boolean);
  if (devices.length < 2) usage('--devices needs two edu BDFs');

  const log = (line: string): void => void process.stdout.write(`${line}\n`);
  let bKind = '';
  const makePair = () => {
    const a = new Side('simulator', openSimulator(), { devices: ['0000:00:03.0', '0000:00:04.0'] });
    let pb;
    try {
      pb = backend === 'sim' || backend === 'simulated' ? openSimulator() : openPlatform({ backend: backend as 'native' });
    } catch (e) {
      void a.close();
      throw e;
    }
    bKind = pb.backend.kind;
    try {
      return { a, b: new Side(pb.backend.kind, pb, { devices }) };
    } catch (e) {
      void a.close();
      pb.close();
      throw e;
    }
  };
  const started = Date.now();
  log(`diff: simulator vs ${backend}, seed ${seed}, ${operations} operations, ≤ ${length} per sequence, fault budget ${faultBudget} per sequence`);
  // one pair of platforms for the whole campaign, reset between sequences (see PairPool)
  const pool = new PairPool(makePair);
  let result;
  try {
    result = await runCampaign(pool, { seed, operations, sequences, length, shrinkMs, run: { ...DEFAULT_RUN_OPTIONS, faultBudget }, log });
  } finally {
    await pool.close();
  }
  const seconds = (Date.now() - started) / 1000;
  log(
    `diff: ${result.sequences} sequences, ${result.operations} operations compared (${result.skipped} skipped), ${result.faults} faulting DMA pages, ` +
      `${result.divergences} divergent sequences in ${result.classes.length} classes, ${seconds.toFixed(1)} s, ${pool.opened} platform pair(s) opened`,
  );
  for (const c of result.classes) log(`  ${c.count} × ${c.cls} (first: seed ${c.seed}, shrunk to ${c.shrunk.ops.length} ops)`);
  if (json) {
    const kernel = process.env.DMA_IOMMU_VM_KERNEL || 'host';
    const classes = result.classes.map((c: FoundDivergence) => ({ class: c.cls, count: c.count, seed: c.seed, shrunk: formatSequence(c.shrunk.ops).split('\n').map((l) => l.trim()), at: c.shrunk.divergence }));
    process.stdout.write(
      `${JSON.stringify({
        results: [{ kernel, backend: bKind, seed, sequences: result.sequences, operations: result.operations, skipped: result.skipped, faults: result.faults, divergences: result.divergences, seconds, classes }],
      })}\n`,
    );
  }
  process.exitCode = result.divergences > 0 ? 1 : 0;
}

main().catch((e: unknown) => {
  process.stderr.write(`diff: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(3);
});
