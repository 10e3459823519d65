/**
 * The runners' shared loop: run every matrix row (or removal scenario) on one backend and sort the
 * outcomes against KNOWN_DEFECTS. `DMA_IOMMU_SWEEP_DUMP=dir` writes every outcome to
 * dir/<name>.json for triage (the DMA_IOMMU_ prefix reaches the VM guest too).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defectsOf, knownDefectFor, type KnownDefect, type SweepBackend } from './known-defects.js';
import { rows, runRow } from './matrix.js';
import { MODES, STAGES, readdSamePlatform, removalScenario, type RemovalDriver } from './removal.js';
import { openWorld, type WorldFactory } from './world.js';

export interface SweepResult {
  readonly total: number;
  /** Rows that misbehave and are not listed. */
  readonly unexpected: string[];
  /** Listed rows that now behave (the list must shrink). */
  readonly fixed: string[];
  /** Listed entries that match no row. */
  readonly stale: string[];
}

function dump(name: string, outcomes: unknown): void {
  const dir = process.env.DMA_IOMMU_SWEEP_DUMP;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(outcomes, null, 1));
}

function sort(backend: SweepBackend, sweep: 'matrix' | 'removal', outcomes: Array<{ id: string; problem: string | null }>): SweepResult {
  const unexpected: string[] = [];
  const fixed: string[] = [];
  const matched = new Set<KnownDefect>();
  for (const o of outcomes) {
    const known = knownDefectFor(o.id, backend);
    if (known) matched.add(known);
    if (o.problem !== null && !known) unexpected.push(`${o.id}: ${o.problem}`);
    if (o.problem === null && known) fixed.push(`${o.id} (listed: ${known.reason} [${known.owner}])`);
  }
  const stale = defectsOf(sweep, backend).filter((k) => !matched.has(k)).map((k) => k.reason);
  return { total: outcomes.length, unexpected, fixed, stale };
}

export async function sweepMatrix(f: WorldFactory): Promise<SweepResult> {
  const outcomes: Array<{ id: string; problem: string | null; code?: string }> = [];
  for (const row of rows()) outcomes.push({ id: row.id, ...(await runRow(row, () => openWorld(f))) });
  dump(`matrix-${f.name}`, outcomes);
  return sort(f.kind, 'matrix', outcomes);
}

/** Every stage × mode; on the simulator also re-adding the device on the same platform. */
export async function sweepRemoval(d: RemovalDriver): Promise<SweepResult> {
  const outcomes: Array<{ id: string; problem: string | null }> = [];
  for (const stage of STAGES) {
    for (const mode of MODES) {
      const problems = await removalScenario(d, stage, mode);
      outcomes.push({ id: `removal/${stage}/${mode}`, problem: problems.length ? problems.join('; ') : null });
    }
    if (d.backend === 'sim') {
      const problems = await readdSamePlatform(d, stage);
      outcomes.push({ id: `removal/${stage}/re-add-same-platform`, problem: problems.length ? problems.join('; ') : null });
    }
  }
  dump(`removal-${d.name}`, outcomes);
  return sort(d.kind, 'removal', outcomes);
}
