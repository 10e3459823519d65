/**
 * Older cached versions of one kind of artefact (the arm64 guest's root folder, its Debian kernel):
 * when a recipe or a release changes, a new version is cached under a new name and the old one would
 * stay on disk for good (the arm64 root is ~200 MB). Called under the lock that guards the kind, right
 * after the new version was cached, so no other process of this checkout is building one; a run of
 * another checkout that still boots the older version would lose it, which is why only a new build
 * prunes (a cache hit never does).
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Remove every entry of `dir` whose name starts with `prefix`, except `keep`; work folders
 * (`<name>.<pid>`, see removeStaleWorkDirs) and temporary files (`<name>.tmp`) are left alone.
 * Returns the names removed (sorted).
 */
export function pruneOlderVersions(dir: string, prefix: string, keep: string): string[] {
  if (!prefix) throw new TypeError('pruneOlderVersions: prefix must not be empty (it would match every entry)');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed = names.filter((n) => n.startsWith(prefix) && n !== keep && !/\.(\d+|tmp)$/.test(n)).sort();
  for (const n of removed) rmSync(join(dir, n), { recursive: true, force: true });
  return removed;
}
