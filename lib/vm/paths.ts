/**
 * Where the VM harness finds its assets (the package's `vm/` folder) and keeps its cache.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { packageRoot } from '../util/package-root.js';

export { packageRoot };

/** A file under the package's `vm/` asset folder. */
export function assetPath(...parts: string[]): string {
  return join(packageRoot(), 'vm', ...parts);
}

/** `$DMA_IOMMU_CACHE`, else `$XDG_CACHE_HOME/dma-iommu`, else `~/.cache/dma-iommu`. Always absolute. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DMA_IOMMU_CACHE) return resolve(env.DMA_IOMMU_CACHE);
  const xdg = env.XDG_CACHE_HOME;
  return xdg ? resolve(xdg, 'dma-iommu') : join(homedir(), '.cache', 'dma-iommu');
}

/** Sub-folders of the cache, one per kind of artefact. */
export const cacheDirs = {
  kernels: (root: string) => join(root, 'kernels'),
  build: (root: string) => join(root, 'build'),
  initramfs: (root: string) => join(root, 'initramfs'),
  helper: (root: string) => join(root, 'helper'),
  locks: (root: string) => join(root, 'locks'),
  downloads: (root: string) => join(root, 'downloads'),
} as const;
