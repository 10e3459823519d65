/**
 * KNOWN_DEFECTS: sweep rows that fail today only because of a defect in another branch's area
 * (issue 9). The sweep asserts that each listed row STILL fails, so a row flips to a test failure
 * the moment its defect is fixed: then delete its entry (the lead empties this list after merging
 * the branches). Nothing else is excluded, skipped or loosened.
 *
 * `rows`: exact row ids, or a prefix ending in '*'. `backends`: where the rows fail (default: the
 * simulator and both native backends; 'native' = iommufd and vfio-type1).
 */
export type SweepBackend = 'sim' | 'iommufd' | 'vfio-type1';
export interface KnownDefect {
  readonly rows: readonly string[];
  readonly reason: string;
  /** The owning area/branch: platform-split (lib/core), sim-model (lib/backend/simulated), native-boundary (lib/backend/native, native/). */
  readonly owner: 'platform-split' | 'sim-model' | 'native-boundary';
  readonly backends?: ReadonlyArray<'sim' | 'native' | 'iommufd' | 'vfio-type1'>;
}

// ---- the bad-value matrix (test/sweep/matrix.ts), on the simulator (and native, unless `backends` says) ----
export const KNOWN_DEFECTS: readonly KnownDefect[] = [];

function appliesTo(k: KnownDefect, backend: SweepBackend): boolean {
  const b = k.backends ?? ['sim', 'native'];
  return b.includes(backend) || (backend !== 'sim' && b.includes('native'));
}

export function knownDefectFor(id: string, backend: SweepBackend): KnownDefect | undefined {
  return KNOWN_DEFECTS.find((k) => appliesTo(k, backend) && k.rows.some((r) => (r.endsWith('*') ? id.startsWith(r.slice(0, -1)) : id === r)));
}

/** The entries of one sweep ('matrix' rows have no prefix; 'removal/…', 'leak/…') that apply to `backend`. */
export function defectsOf(sweep: 'matrix' | 'removal' | 'leak', backend: SweepBackend): KnownDefect[] {
  const isOf = (r: string): boolean => (sweep === 'matrix' ? !r.startsWith('removal/') && !r.startsWith('leak/') : r.startsWith(`${sweep}/`));
  return KNOWN_DEFECTS.filter((k) => appliesTo(k, backend) && k.rows.some(isOf));
}
