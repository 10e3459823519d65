/**
 * Lazy, memoised loading of the native addon. Tells "not built" (no binary anywhere `bindings`
 * looked) from "broken" (a binary that failed to load: ABI mismatch, missing symbol...) and keeps
 * the message. DMA_IOMMU_NATIVE_PATH names a .node file to load instead. A build for this process's
 * architecture at build/<process.arch>/Release/dma_iommu.node (the arm64 guest's cross-build, see
 * lib/vm/arm64/addon.ts) comes before the default build/Release, which holds the host's own build: an
 * x86 .node on arm64 would only fail with an ELF error.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { markAsUntransferable } from 'node:worker_threads';
import { BackendError } from '../../errors.js';
import { packageRoot } from '../../util/package-root.js';
import type { NativeAddon } from './addon-types.js';

export type LoadResult =
  | { readonly ok: true; readonly addon: NativeAddon; readonly path: string }
  | { readonly ok: false; readonly state: 'not-built' | 'broken'; readonly message: string };

const require = createRequire(import.meta.url);
let memo: LoadResult | undefined;

function buildStatusNote(root: string): string {
  try {
    const s = JSON.parse(readFileSync(join(root, 'build', 'addon-status.json'), 'utf8')) as { built?: boolean; reason?: string };
    if (s.built === false && s.reason) return ` (install-time build failed: ${s.reason})`;
  } catch {
    /* no status file */
  }
  return '';
}

function isAddon(x: unknown): x is NativeAddon {
  const a = x as NativeAddon;
  return typeof x === 'object' && x !== null && typeof a.ioasMapHot === 'function' && typeof a.allocMemory === 'function' && a.hotSlots instanceof ArrayBuffer && typeof a.setErrorClass === 'function';
}

/** Where a build for this process's architecture lives (checked before `bindings`' default places). */
export function archBuildPath(root: string, arch: string = process.arch): string {
  return join(root, 'build', arch, 'Release', 'dma_iommu.node');
}

/** Load (once) and return the addon or why it is not available. */
export function loadNative(): LoadResult {
  if (memo) return memo;
  const root = packageRoot();
  const override = process.env.DMA_IOMMU_NATIVE_PATH;
  try {
    let mod: unknown;
    let path: string;
    if (override) {
      path = override;
      if (!existsSync(override)) {
        memo = { ok: false, state: 'not-built', message: `DMA_IOMMU_NATIVE_PATH=${override} does not exist` };
        return memo;
      }
      mod = require(override);
    } else if (existsSync(archBuildPath(root))) {
      path = archBuildPath(root);
      mod = require(path);
    } else {
      const bindings = require('bindings') as (opts: { bindings: string; module_root: string }) => unknown;
      mod = bindings({ bindings: 'dma_iommu', module_root: root });
      path = join(root, 'build', 'Release', 'dma_iommu.node');
    }
    if (!isAddon(mod)) {
      memo = { ok: false, state: 'broken', message: `${path} loaded but is not the dma_iommu addon` };
      return memo;
    }
    // Kernel failures come out of the addon as BackendError (errno + bare syscall name) directly.
    mod.setErrorClass(BackendError);
    // The hot calls' argument slots must stay with this thread: never detached by a transfer.
    markAsUntransferable(mod.hotSlots);
    memo = { ok: true, addon: mod, path };
  } catch (e) {
    const err = e as Error & { tries?: string[] };
    if (Array.isArray(err.tries) || /Could not locate the bindings file/.test(err.message)) {
      memo = { ok: false, state: 'not-built', message: `the native addon is not built${buildStatusNote(root)}; run \`npm install\` (needs a C++ compiler)` };
    } else {
      memo = { ok: false, state: 'broken', message: `the native addon failed to load: ${err.message}` };
    }
  }
  return memo;
}

/** For tests: forget the memoised result. */
export function resetNativeLoader(): void {
  memo = undefined;
}
