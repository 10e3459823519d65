/** Shared setup for the simulator's unit tests. */
import { constants } from 'node:os';
import { SimulatedBackend, type SimulatedBackendOptions } from '../../../lib/backend/simulated/index.js';
import type { PhysicalRun } from '../../../lib/backend/contract.js';

export const E = constants.errno;
export const KiB = 1024n;
export const MiB = 1024n * KiB;
export const GiB = 1024n * MiB;
export const EDU0 = '0000:00:03.0';
export const EDU1 = '0000:00:04.0';
export const GEN0 = '0000:00:05.0';
export const GEN1 = '0000:00:05.1';
export const R = 1;
export const W = 2;
export const RW = 3;

export { expectErrno } from '../../support/expect-error.js';

export function run(pa: bigint, length: bigint): PhysicalRun[] {
  return [{ pa, length }];
}

export interface Rig {
  sim: SimulatedBackend;
  dom: number;
  dev: number;
}

/** A backend with one translate domain, optionally with EDU0 opened and attached. */
export function rig(opts: SimulatedBackendOptions = {}, attach = true): Rig {
  const sim = new SimulatedBackend(opts);
  const dom = sim.allocDomain('translate');
  const dev = sim.openDevice(EDU0);
  if (attach) sim.attach(dom, dev);
  return { sim, dom, dev };
}

/** Deterministic bytes. */
export function pattern(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
