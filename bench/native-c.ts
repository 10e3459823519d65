/**
 * The C baseline (bench/c/baseline.c) as a co-process of a guest benchmark (bench/native.ts,
 * bench/native-profile.ts): it sets up and warms up once, then times `run N` slices on request, so
 * that C and TS slices can alternate finely.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Sample } from './common.js';
import { BYTES_RANGE, IOVA, PAGES_4K, type Workload } from './native-workloads.js';

/** The C baseline as a co-process (--serve). */
export class CBaseline {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: string[] = [];
  readonly #waiters: Array<(line: string | null) => void> = [];
  #stderr = '';
  #ended = false;

  constructor(baseline: string, backend: string, bdf: string, w: Workload) {
    const args = ['--backend', backend === 'vfio-type1' ? 'type1' : backend, '--bdf', bdf, '--workload', w.c, '--warmup', String(w.warmup), '--iova', `0x${IOVA.toString(16)}`, '--serve'];
    if (w.c === 'map-unmap-4k') args.push('--pages', String(PAGES_4K));
    else args.push('--bytes', String(BYTES_RANGE));
    this.#child = spawn(baseline, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child.stderr.setEncoding('utf8').on('data', (d: string) => {
      this.#stderr += d;
    });
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      const waiter = this.#waiters.shift();
      if (waiter) waiter(line);
      else this.#lines.push(line);
    });
    this.#child.on('close', () => {
      this.#ended = true;
      for (const w of this.#waiters.splice(0)) w(null);
    });
  }

  #next(): Promise<string | null> {
    const line = this.#lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  async #reply(): Promise<{ ok?: boolean; ns?: number; ops?: number; bytes?: number; error?: string }> {
    const line = await this.#next();
    let out: { ok?: boolean; ns?: number; ops?: number; bytes?: number; error?: string } = {};
    try {
      out = JSON.parse(line ?? '') as typeof out;
    } catch {
      /* reported below */
    }
    if (!out.ok) throw new Error(`C baseline: ${out.error ?? line ?? 'exited'} ${this.#stderr}`);
    return out;
  }

  ready(): Promise<unknown> {
    return this.#reply();
  }

  async run(n: number, w: Workload): Promise<Sample> {
    this.#child.stdin.write(`run ${n}\n`);
    const out = await this.#reply();
    return { ops: w.unit === 'bytes/s' ? (out.bytes as number) : (out.ops as number), ns: out.ns as number };
  }

  /**
   * Ends the co-process and waits for it to exit: on type1 a group can be open in one process
   * only, so the next workload's baseline must not start before this one has closed its group.
   */
  async close(): Promise<void> {
    if (!this.#ended) {
      const exited = new Promise<void>((resolve) => this.#child.once('close', () => resolve()));
      this.#child.stdin.end();
      await exited;
    }
  }
}

