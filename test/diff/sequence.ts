/**
 * Running one sequence on two platforms in lockstep (operation by operation, in the same process)
 * and a campaign of seeded sequences with fast-check, shrinking each new kind of divergence to a
 * minimal sequence.
 *
 * What the runner reads from the backends' declared capabilities (never their kind):
 *  - `faultRateLimit`: a DMA the shadow predicts will fault waits for room in the fault source's
 *    window (test/support/fault-pacer.ts), and a sequence spends at most `faultBudget` faults;
 *  - `faultSource`: an asynchronous source ('kmsg') gets time to deliver before faults are compared;
 *  - `passThrough`: a DMA through a pass-through domain is only compared when both platforms pass
 *    through the same way (real bypass reaches any RAM; emulated identity only mapped memory);
 *  - `silentBlockOnCachedTranslation`: a DMA the shadow predicts will be blocked on a page whose
 *    translation the device used in the other direction may go unreported: its fault records are
 *    not compared (its bytes are).
 */
import fc from 'fast-check';
import { paceFault } from '../support/fault-pacer.js';
import { type Difference, compareObservations, divergenceClass, firstByteDifference } from './compare.js';
import { type Op, formatOp, formatSequence, sequenceArbitrary } from './ops.js';
import type { Observation, Side } from './run.js';

export interface RunOptions {
  /** Faulting DMAs (predicted faulting pages) one sequence may spend; the rest are skipped on both. */
  readonly faultBudget: number;
  /** How long to wait for a fault the other platform (or the shadow) saw (ms). */
  readonly faultWaitMs: number;
  /** Extra time an asynchronous fault source gets after a faulting DMA (ms). */
  readonly settleMs: number;
}

export const DEFAULT_RUN_OPTIONS: RunOptions = { faultBudget: 1, faultWaitMs: 4000, settleMs: 150 };

export interface Divergence {
  readonly index: number;
  readonly op: string;
  readonly diffs: readonly Difference[];
  /** Memory differences in bytes, when a digest differed. */
  readonly details: readonly string[];
  readonly cls: string;
  /** The error messages of the diverging operation, when either failed. */
  readonly messages?: { readonly a?: string; readonly b?: string };
}

export interface SequenceResult {
  /** Operations run on both platforms (not skipped). */
  readonly executed: number;
  readonly skipped: number;
  /** Faulting pages the shadow predicted (spent from the budget). */
  readonly faults: number;
  readonly divergence: Divergence | null;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Opens the two platforms of one sequence (fresh ones for every sequence). */
export type PairFactory = () => { a: Side; b: Side };

/**
 * One pair of platforms kept open across sequences: between two sequences both sides are reset
 * through the public API (Side.reset) and their edu buffers zeroed again where a DMA wrote them;
 * a pair whose reset or sequence failed is closed and the next sequence opens a fresh one.
 * Opening two platforms costs ~1-1.6 s under TCG, a reset a few ms plus one edu DMA per written device.
 */
export class PairPool {
  readonly #make: PairFactory;
  #pair: { a: Side; b: Side } | null = null;
  /** Pairs opened (1 when every reset succeeded). */
  opened = 0;
  constructor(make: PairFactory) {
    this.#make = make;
  }
  async take(): Promise<{ a: Side; b: Side }> {
    const p = this.#pair;
    this.#pair = null;
    if (p) {
      let ok = false;
      try {
        ok = (await p.a.reset()) && (await p.b.reset());
      } catch {
        ok = false;
      }
      if (ok) return p;
      await closePair(p);
    }
    this.opened++;
    return this.#make();
  }
  /** Give the pair back after a sequence (`healthy` false: it is closed instead). */
  async give(p: { a: Side; b: Side }, healthy: boolean): Promise<void> {
    if (healthy) this.#pair = p;
    else await closePair(p);
  }
  async close(): Promise<void> {
    const p = this.#pair;
    this.#pair = null;
    if (p) await closePair(p);
  }
}

async function closePair(p: { a: Side; b: Side }): Promise<void> {
  try {
    await p.a.close();
  } finally {
    await p.b.close();
  }
}

/** Operations that move bytes in the memory slots: their memory is digested afresh (see Side.lastMemoryDigests). */
const MOVES_BYTES = new Set<Op['op']>(['dma', 'cpuWrite', 'free', 'alloc']);

function observe(side: Side, r: { status: string; value?: string; edu?: string; detail?: string }, faultsCompared: boolean, fresh: boolean): Observation {
  return { ...r, memory: fresh ? side.memoryDigests() : side.lastMemoryDigests(), faults: side.takeFaults(), faultsCompared };
}

async function settleFaults(a: Side, b: Side, predicted: number, compared: boolean, o: RunOptions): Promise<void> {
  // A synchronous source ('engine') has delivered everything by now; an asynchronous one ('kmsg')
  // is waited for until it has as many as the synchronous side (or, with no synchronous side, as
  // many as the shadow predicts), then given `settleMs` for any more.
  const sync = [a, b].filter((s) => s.caps.faultSource === 'engine');
  const async = [a, b].filter((s) => s.caps.faultSource === 'kmsg');
  if (async.length === 0) return;
  const want = sync.length ? Math.max(...sync.map((s) => s.pendingFaults)) : predicted;
  if (compared && want > 0) {
    const until = Date.now() + o.faultWaitMs;
    while (async.some((s) => s.pendingFaults < want) && Date.now() < until) await sleep(20);
  }
  if (want > 0 || predicted > 0) await sleep(o.settleMs);
}

/** Run `ops` on a fresh pair; stop at the first divergence. */
/** Where the time goes (ms and count per key), for the end-of-run report. */
export class Timing {
  readonly #ms = new Map<string, [number, number]>();
  add(key: string, ms: number): void {
    const t = this.#ms.get(key) ?? [0, 0];
    t[0] += ms;
    t[1]++;
    this.#ms.set(key, t);
  }
  /** The `n` largest entries, largest first. */
  /** Counts of the keys starting with `prefix`. */
  counts(prefix: string): string {
    return [...this.#ms.entries()]
      .filter(([k]) => k.startsWith(prefix))
      .sort((x, y) => y[1][1] - x[1][1])
      .map(([k, [, c]]) => `${k.slice(prefix.length)} ×${c}`)
      .join(', ');
  }
  top(n = 12): string {
    return [...this.#ms.entries()]
      .sort((x, y) => y[1][0] - x[1][0])
      .slice(0, n)
      .map(([k, [ms, c]]) => `${k} ${(ms / 1000).toFixed(1)} s/${c}`)
      .join(', ');
  }
}
export const timing = new Timing();

export async function runSequence(source: PairFactory | PairPool, ops: readonly Op[], o: RunOptions = DEFAULT_RUN_OPTIONS): Promise<SequenceResult> {
  const tOpen = Date.now();
  const pool = source instanceof PairPool ? source : null;
  const pair = pool ? await pool.take() : (source as PairFactory)();
  const { a, b } = pair;
  let executed = 0;
  let skipped = 0;
  let faults = 0;
  try {
    await a.init();
    await b.init();
  } catch (e) {
    await closePair(pair);
    throw e;
  }
  // (a faulting DMA of the previous sequence was given settleMs after it: settleFaults)
  a.takeFaults();
  b.takeFaults();
  timing.add(pool ? 'reset' : 'open', Date.now() - tOpen);
  let healthy = false;
  try {
    for (let index = 0; index < ops.length; index++) {
      const op = ops[index];
      let skip = a.skipReason(op) ?? b.skipReason(op);
      let predicted = 0;
      let faultsCompared = true;
      if (!skip && op.op === 'dma') {
        const pa = a.planDma(op);
        const pb = b.planDma(op);
        predicted = Math.max(pa.faultingPages, pb.faultingPages);
        if ((pa.passThrough || pb.passThrough) && a.caps.passThrough !== b.caps.passThrough) {
          skip = `pass-through DMA (capability passThrough: ${a.caps.passThrough} vs ${b.caps.passThrough})`;
        } else if (predicted > 0 && faults + predicted > o.faultBudget) {
          skip = 'fault budget spent';
        } else if (predicted > 0 && (pa.cachedOtherDirection || pb.cachedOtherDirection) && (a.caps.silentBlockOnCachedTranslation || b.caps.silentBlockOnCachedTranslation)) {
          faultsCompared = false;
        }
      }
      let ra: { status: string; value?: string; edu?: string; detail?: string };
      let rb: typeof ra;
      if (skip) {
        skipped++;
        timing.add(`skip ${op.op}: ${skip}`, 0);
        ra = rb = { status: `skipped: ${skip}` };
      } else {
        executed++;
        faults += predicted;
        const tp = Date.now();
        for (let k = 0; k < predicted; k++) {
          await paceFault(a.caps);
          await paceFault(b.caps);
        }
        timing.add('fault pacing', Date.now() - tp);
        // The edu buffer is read back (two more DMAs, ~100 ms each on QEMU: edu starts a transfer
        // on a 100 ms timer) after a DMA into the device that is predicted to be blocked, and
        // after every fourth other one.
        const readEdu = predicted > 0 || index % 4 === 0;
        const t0 = Date.now();
        ra = await a.execute(op, readEdu);
        const t1 = Date.now();
        rb = await b.execute(op, readEdu);
        const t2 = Date.now();
        timing.add(`a ${op.op}`, t1 - t0);
        timing.add(`b ${op.op}`, t2 - t1);
        if (op.op === 'dma') {
          const t3 = Date.now();
          await settleFaults(a, b, predicted, faultsCompared, o);
          timing.add('fault settle', Date.now() - t3);
        }
      }
      const fresh = MOVES_BYTES.has(op.op) || index === ops.length - 1;
      const oa = observe(a, ra, faultsCompared, fresh);
      const ob = observe(b, rb, faultsCompared, fresh);
      const diffs = compareObservations(oa, ob);
      if (diffs.length) {
        const details = diffs
          .filter((d) => d.field.startsWith('memory['))
          .map((d) => {
            const slot = Number(d.field.slice(7, -1));
            return `${d.field}: ${firstByteDifference(a.memoryBytes(slot), b.memoryBytes(slot))}`;
          });
        const name = formatOp(op);
        healthy = true;
        return { executed, skipped, faults, divergence: { index, op: name, diffs, details, messages: ra.detail || rb.detail ? { a: ra.detail, b: rb.detail } : undefined, cls: divergenceClass(op.op === 'bad' ? `bad ${op.call}` : op.op, diffs) } };
      }
    }
    healthy = true;
    return { executed, skipped, faults, divergence: null };
  } finally {
    const tClose = Date.now();
    if (pool) await pool.give(pair, healthy);
    else await closePair(pair);
    timing.add(pool ? 'give back' : 'close', Date.now() - tClose);
  }
}

export interface CampaignOptions {
  readonly seed: number;
  /** Stop after this many sequences (default: until `operations` is reached). */
  readonly sequences?: number;
  /** Stop once this many operations ran on both platforms. */
  readonly operations: number;
  /** Operations per sequence (at most). */
  readonly length: number;
  /** Time allowed for shrinking one divergence (ms). */
  readonly shrinkMs: number;
  readonly run?: RunOptions;
  /** Progress and divergence reports (human-readable lines). */
  readonly log?: (line: string) => void;
}

export interface FoundDivergence {
  readonly seed: number;
  readonly cls: string;
  /** How many sequences showed this class. */
  count: number;
  readonly original: { readonly length: number; readonly divergence: Divergence };
  readonly shrunk: { readonly ops: readonly Op[]; readonly divergence: Divergence };
}

export interface CampaignResult {
  readonly sequences: number;
  readonly operations: number;
  readonly skipped: number;
  readonly faults: number;
  /** Sequences that diverged. */
  readonly divergences: number;
  readonly classes: FoundDivergence[];
}

export function formatDivergence(d: Divergence): string {
  const lines = [`  at op ${d.index}: ${d.op}`];
  for (const x of d.diffs) lines.push(`    ${x.field}: a=${x.a}  b=${x.b}`);
  if (d.messages) lines.push(`    messages: a: ${d.messages.a ?? '-'} | b: ${d.messages.b ?? '-'}`);
  for (const x of d.details) lines.push(`    ${x}`);
  return lines.join('\n');
}

/** Seeded sequences until the budget is spent; every new divergence class is shrunk and reported. */
export async function runCampaign(makePair: PairFactory | PairPool, c: CampaignOptions): Promise<CampaignResult> {
  const log = c.log ?? (() => {});
  const run = c.run ?? DEFAULT_RUN_OPTIONS;
  const classes = new Map<string, FoundDivergence>();
  let sequences = 0;
  let operations = 0;
  let skipped = 0;
  let faults = 0;
  let divergences = 0;
  const started = Date.now();
  while (operations < c.operations && (c.sequences === undefined || sequences < c.sequences)) {
    const seed = c.seed + sequences;
    sequences++;
    let first: { ops: readonly Op[]; result: SequenceResult } | null = null;
    let target: string | null = null;
    let last: { ops: readonly Op[]; divergence: Divergence } | null = null;
    let deadline = Infinity;
    let harnessError: unknown = null;
    const property = fc.asyncProperty(sequenceArbitrary(c.length), async (ops) => {
      // Past the shrinking deadline every candidate "passes" without running, so fast-check ends
      // with the smallest failing sequence so far. (Its own interruptAfterTimeLimit is not used: it
      // abandons a run in flight, whose platform would then still hold the devices.)
      if (first && Date.now() > deadline) return true;
      if (harnessError) return true;
      let result: SequenceResult;
      try {
        result = await runSequence(makePair, ops, run);
      } catch (e) {
        // a harness failure (a platform that would not open or close) ends the campaign
        harnessError = e;
        return true;
      }
      if (!first) {
        first = { ops, result };
        if (!result.divergence || classes.has(result.divergence.cls)) return true;
        target = result.divergence.cls;
        deadline = Date.now() + c.shrinkMs;
      }
      if (result.divergence && result.divergence.cls === target) {
        last = { ops, divergence: result.divergence };
        return false;
      }
      return true;
    });
    await fc.check(property, { seed, numRuns: 1 });
    if (harnessError) throw harnessError;
    const f = first as { ops: readonly Op[]; result: SequenceResult } | null;
    if (!f) throw new Error(`seed ${seed}: fast-check ran no sequence`);
    operations += f.result.executed;
    skipped += f.result.skipped;
    faults += f.result.faults;
    const div = f.result.divergence;
    if (div) {
      divergences++;
      const known = classes.get(div.cls);
      if (known) {
        known.count++;
        log(`seed ${seed}: divergence (known class: ${div.cls})`);
      } else {
        const l = (last as { ops: readonly Op[]; divergence: Divergence } | null) ?? { ops: f.ops, divergence: div };
        // the operations after the divergent one never ran
        const shrunk = { ops: l.ops.slice(0, l.divergence.index + 1), divergence: l.divergence };
        const found: FoundDivergence = { seed, cls: div.cls, count: 1, original: { length: f.ops.length, divergence: div }, shrunk };
        classes.set(div.cls, found);
        log(`\nDIVERGENCE seed ${seed} (replay: --seed ${seed} --sequences 1 --length ${c.length}): ${div.cls}`);
        log(`shrunk from ${f.ops.length} to ${shrunk.ops.length} operations (a = first platform, b = second):`);
        log(formatSequence(shrunk.ops));
        log(formatDivergence(shrunk.divergence));
      }
    }
    if (sequences % 10 === 0) log(`  time: ${timing.top()}\n  skipped: ${timing.counts('skip ')}`);
    if (sequences % 10 === 0) log(`… ${sequences} sequences, ${operations} operations, ${divergences} divergent, ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  return { sequences, operations, skipped, faults, divergences, classes: [...classes.values()] };
}
