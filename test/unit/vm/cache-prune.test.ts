/**
 * Older cached versions of the arm64 guest's root folder and kernel are removed once a new version is
 * cached (lib/vm/cache-prune.ts), on a temporary cache folder: the current version, other kinds of
 * entries, work folders and temporary files stay.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pruneOlderVersions } from '../../../lib/vm/cache-prune.js';
import { arm64Dir, arm64RootDir, cachedArm64Root, pruneOlderArm64Roots } from '../../../lib/vm/arm64/rootfs.js';
import { DEBIAN_ARM64 } from '../../../lib/vm/arm64/kernel.js';
import { DEBIAN_AMD64, pruneOlderDebianKernels } from '../../../lib/vm/debian-kernel.js';

const made: string[] = [];
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A temporary cache with `entries` (a name ending in / is a folder with a file in it) under `sub`. */
function cacheWith(sub: string, entries: string[]): { cache: string; dir: string } {
  const cache = mkdtempSync(join(tmpdir(), 'dma-iommu-prune-'));
  made.push(cache);
  const dir = join(cache, sub);
  mkdirSync(dir, { recursive: true });
  for (const e of entries) {
    if (e.endsWith('/')) {
      mkdirSync(join(dir, e), { recursive: true });
      writeFileSync(join(dir, e, '.complete'), 'x\n');
    } else writeFileSync(join(dir, e), 'x');
  }
  return { cache, dir };
}

describe('pruning older cached versions', () => {
  it('removes the other entries of the prefix, and only those', () => {
    const { dir } = cacheWith('arm64', ['root-111111111111/', 'root-222222222222/', 'root-333333333333/', 'addon-aaaa.node', 'work-root-1.4242/', 'root-444444444444.4242/', 'root-555555555555.tmp']);
    expect(pruneOlderVersions(dir, 'root-', 'root-222222222222')).toEqual(['root-111111111111', 'root-333333333333']);
    expect(readdirSync(dir).sort()).toEqual(['addon-aaaa.node', 'root-222222222222', 'root-444444444444.4242', 'root-555555555555.tmp', 'work-root-1.4242']);
    expect(pruneOlderVersions(dir, 'root-', 'root-222222222222')).toEqual([]); // nothing left to prune
  });

  it('a missing folder prunes nothing; an empty prefix is refused, naming the argument', () => {
    expect(pruneOlderVersions(join(tmpdir(), 'dma-iommu-no-such-folder'), 'root-', 'root-1')).toEqual([]);
    const { dir } = cacheWith('arm64', ['root-1/']);
    expect(() => pruneOlderVersions(dir, '', 'root-1')).toThrow(/prefix must not be empty/);
    expect(existsSync(join(dir, 'root-1'))).toBe(true);
  });

  it("arm64 root: older recipes' folders go, this recipe's root stays cached", () => {
    const { cache } = cacheWith('arm64', ['root-000000000000/', 'root-ffffffffffff/', 'addon-aaaa.node']);
    const current = arm64RootDir(cache);
    mkdirSync(current);
    writeFileSync(join(current, '.complete'), 'x\n');
    expect(pruneOlderArm64Roots(cache)).toEqual(['root-000000000000', 'root-ffffffffffff'].filter((n) => n !== basename(current)));
    expect(readdirSync(arm64Dir(cache)).sort()).toEqual(['addon-aaaa.node', basename(current)].sort());
    expect(cachedArm64Root(cache)?.dir).toBe(current);
  });

  it("arm64 kernel: older arm64-debian-* entries go; the current one and the x86 kernels stay", () => {
    const keep = 'arm64-debian-6.12.118+deb12-arm64-97cbb380';
    const { cache, dir } = cacheWith('kernels', [
      'arm64-debian-6.12.100+deb12-arm64-97cbb380/',
      'arm64-debian-6.12.118+deb12-arm64-11111111/',
      `${keep}/`,
      'debian-6.12.100+deb12-amd64-97cbb380/',
      'iommufd-6.12.118-1~deb12u1-d3df7e9c63a2/',
      'build-stats.json',
    ]);
    expect(DEBIAN_ARM64.pruneOlder).toBe(true);
    expect(DEBIAN_AMD64.pruneOlder).toBeFalsy();
    expect(pruneOlderDebianKernels(cache, DEBIAN_ARM64, join(dir, keep))).toEqual([
      'arm64-debian-6.12.100+deb12-arm64-97cbb380',
      'arm64-debian-6.12.118+deb12-arm64-11111111',
    ]);
    expect(readdirSync(dir).sort()).toEqual(['build-stats.json', 'debian-6.12.100+deb12-amd64-97cbb380', 'iommufd-6.12.118-1~deb12u1-d3df7e9c63a2', keep].sort());
  });
});
