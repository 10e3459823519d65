/** Shared setup for the simulator's unit tests. */
import { constants } from 'node:os';
import { SimulatedBackend, type SimulatedBackendOptions } from '../../../lib/backend/simulated/index.js';
import type { AllocateOptions, BackendMemory, PhysicalRun } from '../../../lib/backend/contract.js';

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

/** A backend with one domain (translate unless `kind` says otherwise) and `bdf` (EDU0) opened, attached unless `attach` is false. */
export function rig(opts: SimulatedBackendOptions = {}, attach = true, bdf = EDU0, kind: 'translate' | 'passthrough' = 'translate'): Rig {
  const sim = new SimulatedBackend(opts);
  const dom = sim.allocDomain(kind);
  const dev = sim.openDevice(bdf);
  if (attach) sim.attach(dom, dev);
  return { sim, dom, dev };
}

/** One area `mappedRig` maps: IOVA, offset in the allocation, length, permissions. */
export type RigArea = readonly [iova: bigint, offset: bigint, length: bigint, perms: number];

/**
 * `rig()` (on `bdf`, attached) with one allocation of `size` bytes and `areas` of it mapped in the
 * domain, in order. The sizes and addresses stay in the test, as a table.
 */
export function mappedRig(
  size: bigint,
  areas: readonly RigArea[],
  options: { sim?: SimulatedBackendOptions; memory?: AllocateOptions; bdf?: string } = {},
): Rig & { mem: BackendMemory } {
  const r = rig(options.sim, true, options.bdf);
  const mem = r.sim.allocateMemory(size, options.memory);
  for (const [iova, offset, length, perms] of areas) r.sim.map(r.dom, iova, mem.runs(offset, length), perms);
  return { ...r, mem };
}

export { pattern } from '../../../lib/selftest.js';
