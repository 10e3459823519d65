/**
 * Surprise removal at every point of the lifecycle on the simulator (issue 9): the device really
 * disappears (SimulatedBackend.removeDevice), then everything is released (or the platform is
 * closed straight away), and the device comes back as a new PDO that works. The scenarios are
 * test/sweep/removal.ts, shared with the guest runner (test/vm/guest/sweep-native.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { openPlatform, SimulatedBackend, type IommuPlatform } from '../../lib/index.js';
import { defectsOf, knownDefectFor } from './known-defects.js';
import { MODES, STAGES, readdSamePlatform, removalScenario, type RemovalDriver } from './removal.js';

const BDF = '0000:00:03.0';

function sim(p: IommuPlatform): SimulatedBackend {
  if (!(p.backend instanceof SimulatedBackend)) throw new Error('not the simulator');
  return p.backend;
}

export const SIM_REMOVAL: RemovalDriver = {
  name: 'simulator',
  backend: 'sim',
  kind: 'sim',
  open: () => openPlatform({ backend: 'sim', onHandlerError: () => undefined }),
  bdf: BDF,
  remove(p) {
    sim(p).removeDevice(BDF);
    return [];
  },
  readd(p) {
    sim(p).addDevice({ bdf: BDF, model: 'edu', iommuGroup: 3 });
  },
  goneCodes: ['STATUS_DEVICE_REMOVED'],
};

describe('surprise removal sweep (simulator)', () => {
  const scenarios: Array<{ id: string; run: () => Promise<string[]> }> = [];
  for (const stage of STAGES) {
    for (const mode of MODES) scenarios.push({ id: `removal/${stage}/${mode}`, run: () => removalScenario(SIM_REMOVAL, stage, mode) });
    scenarios.push({ id: `removal/${stage}/re-add-same-platform`, run: () => readdSamePlatform(SIM_REMOVAL, stage) });
  }
  for (const s of scenarios) {
    const known = knownDefectFor(s.id, 'sim');
    it(`${s.id}${known ? ` (KNOWN_DEFECT, must still fail: ${known.reason} [${known.owner}])` : ''}`, async () => {
      const problems = await s.run();
      if (known) expect(problems.length, `${s.id} now passes: remove it from KNOWN_DEFECTS`).toBeGreaterThan(0);
      else expect(problems.join('\n')).toBe('');
    });
  }
  it('every removal entry of KNOWN_DEFECTS matches a scenario', () => {
    const ids = scenarios.map((s) => s.id);
    const stale = defectsOf('removal', 'sim')
      .flatMap((k) => k.rows)
      .filter((r) => !ids.some((id) => (r.endsWith('*') ? id.startsWith(r.slice(0, -1)) : id === r)));
    expect(stale).toEqual([]);
  });
});
