/**
 * The member × bad-value sweep on the simulator (issue 9): every row must throw an IommuError with
 * a STATUS_* code (STATUS_INVALID_PARAMETER* for WDK members), leave the platform's bookkeeping
 * unchanged and in agreement with the backend, and let a valid follow-up and close() succeed.
 * The table is test/sweep/matrix.ts; the same module runs against the native backends in the VM
 * (test/vm/guest/sweep-native.test.ts).
 */
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openPlatform } from '../../lib/index.js';
import { defectsOf, knownDefectFor } from './known-defects.js';
import { MEMBERS, membersWithoutRows, rows, runRow } from './matrix.js';
import { openWorld, type WorldFactory } from './world.js';

export const SIM_FACTORY: WorldFactory = {
  name: 'simulator',
  backend: 'sim',
  open: () => openPlatform({ backend: 'sim', onHandlerError: () => undefined }),
  openForeign: () => openPlatform({ backend: 'sim', onHandlerError: () => undefined }),
  bdf: '0000:00:03.0',
  foreignBdf: '0000:00:04.0',
  pasidBdf: '0000:00:05.0',
};

describe('bad-value sweep (simulator)', () => {
  it('the table covers every V1/V2/V3 member of lib/wdk/interface.ts', () => {
    expect(membersWithoutRows()).toEqual([]);
    expect(MEMBERS.length).toBeGreaterThan(40);
  });

  const all = rows();
  it(`runs ${all.length} rows: each an IommuError with a documented code, state intact, follow-up OK (known defects still failing)`, async () => {
    const unexpected: string[] = [];
    const fixed: string[] = [];
    const matched = new Set<unknown>();
    const dump: Array<{ id: string; problem: string | null; code?: string }> = [];
    for (const row of all) {
      const out = await runRow(row, () => openWorld(SIM_FACTORY));
      dump.push({ id: row.id, ...out });
      const known = knownDefectFor(row.id, 'sim');
      if (known) matched.add(known);
      if (out.problem !== null && !known) unexpected.push(`${row.id}: ${out.problem}`);
      if (out.problem === null && known) fixed.push(`${row.id} (listed: ${known.reason} [${known.owner}])`);
    }
    // SWEEP_DUMP=file.json keeps every row's outcome (for triage)
    if (process.env.SWEEP_DUMP) writeFileSync(process.env.SWEEP_DUMP, JSON.stringify(dump, null, 1));
    const stale = defectsOf('matrix', 'sim').filter((k) => !matched.has(k)).map((k) => k.reason);
    expect(unexpected, 'rows that misbehave').toEqual([]);
    expect(fixed, 'KNOWN_DEFECTS rows that now pass: remove them from the list').toEqual([]);
    expect(stale, 'KNOWN_DEFECTS entries matching no row').toEqual([]);
  }, 600_000);
});
