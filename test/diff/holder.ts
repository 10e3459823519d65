/**
 * "Another process holds a device": one long-lived helper process per side of a differential run
 * that opens a platform of the side's backend per held device, creates the device in it and keeps
 * it until told to let go. Commands and answers are lines over its stdin/stdout:
 *
 *   hold <slot> <bdf>   →  <slot> ok | <slot> <IommuError code> | <slot> thrown <Name>
 *   release <slot>      →  <slot> released   (after the slot's platform is closed)
 *
 * Starting a node process costs ~7 s in a TCG guest: one helper for the whole run instead of one
 * process per hold. The helper imports the built package (dist/), so it runs the same from vitest
 * and from dist/test/diff. If it dies, every pending command answers `exited <code>` and the next
 * hold starts a new one.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { packageRoot } from '../../lib/util/package-root.js';

const HELPER_SCRIPT = `
const { openPlatform, IommuError } = await import(${JSON.stringify(pathToFileURL(join(packageRoot(), 'dist', 'lib', 'index.js')).href)});
const backend = process.argv[1];
const held = new Map();
const say = (line) => process.stdout.write(line + '\\n');
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const [cmd, slot, bdf] = buf.slice(0, i).split(' ');
    buf = buf.slice(i + 1);
    if (cmd === 'hold') {
      let status = 'ok';
      let platform = null;
      try {
        platform = openPlatform({ backend });
        const pdo = platform.findDevice(bdf);
        if (!pdo) throw new IommuError('STATUS_NOT_FOUND', bdf + ' not present');
        platform.CreateDevice(pdo);
      } catch (e) {
        status = e instanceof IommuError ? e.code : 'thrown ' + (e && e.name);
      }
      if (platform) held.set(slot, platform);
      say(slot + ' ' + status);
    } else if (cmd === 'release') {
      const platform = held.get(slot);
      held.delete(slot);
      try { platform?.close(); } catch {}
      say(slot + ' released');
    }
  }
});
process.stdin.on('end', () => { for (const p of held.values()) { try { p.close(); } catch {} } process.exit(0); });
`;

export class ElsewhereHolder {
  readonly #backend: string;
  readonly #env: NodeJS.ProcessEnv;
  #child: ChildProcessByStdio<Writable, Readable, null> | null = null;
  /** Answers awaited, per slot, in order. */
  readonly #waiting = new Map<string, ((line: string) => void)[]>();
  readonly #held = new Set<number>();
  /** Helper processes started (1 for a whole run unless one died). */
  started = 0;

  /** `machine`: the simulated machine the helper must name (a simulator side), else null. */
  constructor(backend: string, machine: string | null) {
    this.#backend = backend;
    this.#env = machine ? { ...process.env, DMA_IOMMU_SIM_MACHINE: machine } : process.env;
  }

  #helper(): ChildProcessByStdio<Writable, Readable, null> {
    if (this.#child) return this.#child;
    const child = spawn(process.execPath, ['--input-type=module', '-e', HELPER_SCRIPT, this.#backend], { stdio: ['pipe', 'pipe', 'inherit'], env: this.#env });
    this.started++;
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
      let i;
      while ((i = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, i);
        out = out.slice(i + 1);
        const sp = line.indexOf(' ');
        this.#waiting.get(line.slice(0, sp))?.shift()?.(line.slice(sp + 1));
      }
    });
    child.on('exit', (code) => {
      if (this.#child === child) this.#child = null;
      this.#held.clear();
      for (const queue of this.#waiting.values()) for (const answer of queue.splice(0)) answer(`exited ${code}`);
    });
    child.stdin.on('error', () => {}); // a dead helper's pipe: the exit handler answers
    this.#child = child;
    return child;
  }

  #ask(slot: number, command: string): Promise<string> {
    const child = this.#helper();
    return new Promise<string>((resolve) => {
      const key = String(slot);
      const queue = this.#waiting.get(key) ?? [];
      queue.push(resolve);
      this.#waiting.set(key, queue);
      child.stdin.write(`${command}\n`);
    });
  }

  /** The other process creates device `bdf` (slot `slot`) and holds it: its status ('ok' or an IommuError code). */
  async hold(slot: number, bdf: string): Promise<string> {
    if (this.#held.has(slot)) return 'already held';
    this.#held.add(slot);
    return this.#ask(slot, `hold ${slot} ${bdf}`);
  }

  /** The other process lets slot `slot` go (its platform closed) before this resolves. */
  async release(slot: number): Promise<void> {
    if (!this.#held.delete(slot)) return;
    await this.#ask(slot, `release ${slot}`);
  }

  /** Release everything and end the helper (waiting for it to exit). */
  async close(): Promise<void> {
    const child = this.#child;
    this.#held.clear();
    if (!child) return;
    await new Promise<void>((resolve) => {
      child.on('exit', () => resolve());
      child.stdin.end();
      if (child.exitCode !== null) resolve();
    });
  }
}
