/**
 * Leak sweep on the simulator (issue 9): 10,000 create → attach → allocate → map → DMA (edu) →
 * unmap → free → detach → delete cycles on one platform, and 10,000 with a failure injected midway
 * (failNth on a rotating leaf operation); the heap + external memory after a full GC may grow at
 * most 64 bytes per cycle (the median growth over 10 intervals of 1,000 cycles, so a one-off step
 * such as V8 compiling a new path is not taken for a leak). Prints the figures and the run time.
 */
import { describe, expect, it } from 'vitest';
import { openPlatform, SimulatedBackend } from '../../lib/index.js';
import { defectsOf, knownDefectFor } from './known-defects.js';
import { cycler, measureLeak, type Cycler, type LeakMeasure } from './leak.js';

const CYCLES = 10_000;
const BOUND = 64;
const BDF = '0000:00:03.0';
/** Leaf operations a failure is injected into, in turn (one per cycle). */
const INJECT_OPS = ['openDevice', 'allocDomain', 'attach', 'allocateMemory', 'map', 'deviceRegions'] as const;

/**
 * measureLeak, confirmed: the heap after a full GC is noisy (a median of ±60 B/cycle has been seen
 * on a loaded 2-core host with no leak), while a leak grows in every run. So a first measure over
 * the bound is taken again on the same platform, and the smaller of the two is the figure: a real
 * leak of r B/cycle still shows ≥ r, a noisy interval does not fail the run.
 */
async function measureConfirmed(c: Cycler, id: string): Promise<LeakMeasure> {
  const first = await measureLeak(c, CYCLES);
  if (first.bytesPerCycle <= BOUND) return first;
  console.log(`${id}: ${first.bytesPerCycle.toFixed(1)} B/cycle over ${BOUND}: measuring again to tell a leak from noise`);
  const again = await measureLeak(c, CYCLES, 0);
  const smaller = again.bytesPerCycle < first.bytesPerCycle ? again : first;
  // every cycle of both runs counts for the failure checks
  return { ...smaller, cycles: first.cycles + again.cycles, failures: first.failures + again.failures };
}

function check(id: string, bytesPerCycle: number): void {
  const known = knownDefectFor(id, 'sim');
  if (known) expect(bytesPerCycle, `${id} now stays within ${BOUND} B/cycle: remove it from KNOWN_DEFECTS`).toBeGreaterThan(BOUND);
  else expect(bytesPerCycle, `${id}: ${bytesPerCycle.toFixed(1)} B/cycle`).toBeLessThanOrEqual(BOUND);
}

const note = (id: string): string => {
  const k = knownDefectFor(id, 'sim');
  return k ? ` (KNOWN_DEFECT, must still exceed it: ${k.owner})` : '';
};

describe('leak sweep (simulator)', () => {
  it(`leak/cycle: ${CYCLES} full lifecycles grow heap + external by at most ${BOUND} B per cycle${note('leak/cycle')}`, async () => {
    const p = openPlatform({ backend: 'sim' });
    try {
      const m = await measureConfirmed(cycler(p, BDF), 'leak/cycle');
      console.log(`leak/cycle: ${m.cycles} cycles in ${(m.ms / 1000).toFixed(1)} s; median interval growth: heap ${m.heapPerCycle.toFixed(1)} B/cycle, external ${m.externalPerCycle.toFixed(1)} B/cycle; whole run ${m.totalPerCycle.toFixed(1)} B/cycle`);
      expect(m.failures).toBe(0);
      check('leak/cycle', m.bytesPerCycle);
    } finally {
      p.close();
    }
  }, 600_000);

  it(`leak/injected: ${CYCLES} lifecycles with a failure injected midway clean up and stay within ${BOUND} B per cycle${note('leak/injected')}`, async () => {
    const p = openPlatform({ backend: 'sim' });
    const sim = p.backend as SimulatedBackend;
    try {
      const c = cycler(p, BDF, {
        inject: (_p, n) => {
          sim.clearFailures();
          sim.failNth(1, -12 /* ENOMEM */, INJECT_OPS[n % INJECT_OPS.length]);
        },
      });
      const m = await measureConfirmed(c, 'leak/injected');
      sim.clearFailures();
      console.log(`leak/injected: ${m.cycles} cycles in ${(m.ms / 1000).toFixed(1)} s, ${m.failures} injected failures; median interval growth: heap ${m.heapPerCycle.toFixed(1)} B/cycle, external ${m.externalPerCycle.toFixed(1)} B/cycle; whole run ${m.totalPerCycle.toFixed(1)} B/cycle`);
      // every cycle met its injected failure (and cleaned up after it)
      expect(m.failures).toBe(m.cycles);
      check('leak/injected', m.bytesPerCycle);
      const state = p.inspect() as { devices: unknown[]; domains: unknown[]; memory: unknown[] };
      expect([state.devices.length, state.domains.length, state.memory.length]).toEqual([0, 0, 0]);
    } finally {
      p.close();
    }
  }, 600_000);

  it('every leak entry of KNOWN_DEFECTS names a leak test', () => {
    expect(defectsOf('leak', 'sim').flatMap((k) => k.rows).filter((r) => r !== 'leak/cycle' && r !== 'leak/injected')).toEqual([]);
  });
});
