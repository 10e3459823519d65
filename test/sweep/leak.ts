/**
 * The leak cycle (issue 9): create → attach → allocate → map → DMA (edu) → unmap → free → detach →
 * delete, on one long-lived platform, optionally with a failure injected midway. Shared by the
 * host runner (test/sweep/leak.test.ts).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { IommuError, type IommuPlatform } from '../../lib/index.js';
import { interfaceV3, nothingHeld, releaseHeld, roundTrip } from '../support/device-use.js';

/** global.gc, exposed at run time when the process was not started with --expose-gc. */
export function gcFunction(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return g;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

export interface CycleOptions {
  /** Before the cycle, arm this failure (the simulator's failNth); the cycle must then clean up. */
  readonly inject?: (p: IommuPlatform, cycle: number) => void;
}

export interface Cycler {
  readonly p: IommuPlatform;
  /** One cycle; resolves to the error code when the injected failure hit, else null. */
  cycle(i: number): Promise<string | null>;
}

export function cycler(p: IommuPlatform, bdf: string, options: CycleOptions = {}): Cycler {
  const V3 = interfaceV3(p);
  const pdo = p.findDevice(bdf);
  if (!pdo) throw new Error(`no device ${bdf}`);
  return {
    p,
    async cycle(n: number): Promise<string | null> {
      options.inject?.(p, n);
      const held = nothingHeld();
      let failure: string | null = null;
      try {
        const { moved } = await roundTrip(p, V3, pdo, held, { seed: 1, timeoutMs: 2000 });
        if (!moved) throw new Error(`cycle ${n}: the DMA did not move the bytes`);
      } catch (e) {
        if (!(e instanceof IommuError)) throw e;
        failure = e.code;
      } finally {
        releaseHeld(V3, held); // every step must succeed whatever failed above
      }
      return failure;
    },
  };
}

export interface LeakMeasure {
  readonly cycles: number;
  readonly ms: number;
  /**
   * Growth of heapUsed + external per cycle after a full GC: the median over 10 equal intervals
   * (a leak grows in every interval; a one-off step, e.g. V8 compiling a new path, in one).
   */
  readonly bytesPerCycle: number;
  readonly heapPerCycle: number;
  readonly externalPerCycle: number;
  /** Growth over the whole run, per cycle (for the report). */
  readonly totalPerCycle: number;
  /** Cycles (of the measured ones) that met an IommuError (the injected failure). */
  readonly failures: number;
}

function settle(gc: () => void): { heap: number; external: number } {
  for (let k = 0; k < 4; k++) gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, external: m.external };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Warm up, then run `cycles` cycles in 10 intervals and measure the growth per cycle after GC. */
export async function measureLeak(c: Cycler, cycles: number, warmup = 1000): Promise<LeakMeasure> {
  const gc = gcFunction();
  const intervals = 10;
  const per = Math.ceil(cycles / intervals);
  let failures = 0;
  let n = 0;
  for (; n < warmup; n++) await c.cycle(n);
  const points = [settle(gc)];
  let ms = 0;
  for (let k = 0; k < intervals; k++) {
    const t0 = performance.now();
    for (let j = 0; j < per; j++, n++) if ((await c.cycle(n)) !== null) failures++;
    ms += performance.now() - t0;
    points.push(settle(gc));
  }
  const heap = median(points.slice(1).map((p, k) => (p.heap - points[k].heap) / per));
  const external = median(points.slice(1).map((p, k) => (p.external - points[k].external) / per));
  const total = (points[intervals].heap + points[intervals].external - points[0].heap - points[0].external) / (per * intervals);
  return { cycles: per * intervals, ms, bytesPerCycle: heap + external, heapPerCycle: heap, externalPerCycle: external, totalPerCycle: total, failures };
}
