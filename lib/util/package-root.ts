/**
 * The dma-iommu package root: the nearest directory above this file whose package.json is named
 * `dma-iommu` (works from `lib/util/*.ts` under vitest and from `dist/lib/util/*.js`). One rule for
 * every user: the addon loader, the VM harness's assets and its build caches.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let memo: string | undefined;

export function packageRoot(): string {
  if (memo !== undefined) return memo;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string };
        if (pkg.name === 'dma-iommu') return (memo = dir);
      } catch {
        // not ours; keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('dma-iommu: cannot find the package root (a package.json named dma-iommu above ' + fileURLToPath(import.meta.url) + ')');
    dir = parent;
  }
}
