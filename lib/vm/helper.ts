/**
 * The C DMA helper (vm/helper/dma-probe.c): a stand-in for the native addon's ioctl layer in guest tests.
 * Compiled on the host into the cache; it runs in the guest because the guest runs the host's root fs.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { assetPath, cacheDirs, packageRoot } from './paths.js';
import { mustRun } from './exec.js';

/** The helper's sources and the headers they include (the shared uAPI header lives with the addon's ABI). */
export function helperSources(): string[] {
  const dir = assetPath('helper');
  return [
    ...readdirSync(dir)
      .filter((n) => n.endsWith('.c') || n.endsWith('.h'))
      .sort()
      .map((n) => join(dir, n)),
    join(packageRoot(), 'native', 'abi', 'uapi.h'),
  ];
}

/** Build (or reuse) the helper; returns the binary's path. */
export async function ensureHelper(cache: string): Promise<string> {
  const h = createHash('sha256').update('helper v1\n');
  for (const f of helperSources()) h.update(f.split('/').pop()!).update(readFileSync(f));
  const out = join(cacheDirs.helper(cache), `dma-probe-${h.digest('hex').slice(0, 12)}`);
  if (existsSync(out)) return out;
  mkdirSync(cacheDirs.helper(cache), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const sources = helperSources().filter((f) => f.endsWith('.c'));
  await mustRun('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-std=gnu11', '-o', tmp, ...sources]);
  renameSync(tmp, out);
  return out;
}
