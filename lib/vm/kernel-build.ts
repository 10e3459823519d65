/**
 * The `iommufd` guest kernel: built from Debian's linux-source-6.12 with vm/kernel/iommufd.config applied
 * on top of `x86_64_defconfig kvm_guest.config`, everything built in (no modules). Built once per machine:
 * cached under kernels/iommufd-<source version>-<key>/ where the key hashes the fragment, the recipe and
 * the compiler. Built in a temp dir, renamed into place, under a lock.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { assetPath, cacheDirs } from './paths.js';
import { capture, mustRun, runLines } from './exec.js';
import { buildRequirements, ensureRequirements, installedVersion } from './deps.js';
import { VmError } from './errors.js';
import { acquireLock, removeStaleWorkDirs } from './lock.js';
import { formatDuration, type VmLogger } from './log.js';
import type { GuestKernel } from './kernel-types.js';

export const KERNEL_SOURCE_PACKAGE = 'linux-source-6.12';
/** The base configuration the fragment is applied to. */
export const BASE_CONFIG_TARGETS = ['x86_64_defconfig', 'kvm_guest.config'];
/** Bump when the build recipe changes in a way that changes the output. */
const RECIPE_VERSION = 1;
/** Compile steps of a build of this config, used for the percentage before the first build finished. */
const DEFAULT_COMPILE_STEPS = 1700;

export function fragmentPath(): string {
  return assetPath('kernel', 'iommufd.config');
}

interface BuiltKernelMeta {
  sourcePackage: string;
  sourceVersion: string;
  fragmentSha256: string;
  compiler: string;
  key: string;
  builtAt: string;
  buildSeconds: number;
  compileSteps: number;
}

async function compilerId(): Promise<string> {
  const r = await capture('gcc', ['--version']);
  return r.stdout.split('\n')[0] ?? 'gcc';
}

/** The cache key: source version + fragment + recipe + compiler. */
export function buildKey(sourceVersion: string, fragment: string, compiler: string): string {
  const h = createHash('sha256');
  h.update(`recipe ${RECIPE_VERSION}\nbase ${BASE_CONFIG_TARGETS.join(' ')}\nsource ${sourceVersion}\ncompiler ${compiler}\n`);
  h.update(fragment);
  return h.digest('hex').slice(0, 12);
}

function dirName(sourceVersion: string, key: string): string {
  return `iommufd-${sourceVersion.replace(/[^A-Za-z0-9.+~-]/g, '_')}-${key}`;
}

function fromDir(dir: string): GuestKernel | undefined {
  const metaPath = join(dir, 'kernel.json');
  if (!existsSync(metaPath) || !existsSync(join(dir, 'bzImage'))) return undefined;
  const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as BuiltKernelMeta;
  return {
    flavor: 'iommufd',
    id: dir.split('/').pop()!,
    image: join(dir, 'bzImage'),
    modules: [],
    description: `built from ${meta.sourcePackage} ${meta.sourceVersion} + iommufd.config (key ${meta.key}, built in ${formatDuration(meta.buildSeconds * 1000)})`,
  };
}

/** Every cached iommufd kernel (newest build first). */
export function cachedIommufdKernels(cache: string): GuestKernel[] {
  const dir = cacheDirs.kernels(cache);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => n.startsWith('iommufd-'))
    .map((n) => fromDir(join(dir, n)))
    .filter((k): k is GuestKernel => k !== undefined)
    .sort((a, b) => b.id.localeCompare(a.id, 'en', { numeric: true }));
}

/** What `ensureIommufdKernel` would use: the cache entry for the installed source + current fragment. */
export async function expectedIommufdKernel(cache: string): Promise<{ dir: string; sourceVersion?: string; key?: string }> {
  const sourceVersion = await installedVersion(KERNEL_SOURCE_PACKAGE);
  if (!sourceVersion) return { dir: '' };
  const key = buildKey(sourceVersion, readFileSync(fragmentPath(), 'utf8'), await compilerId());
  return { dir: join(cacheDirs.kernels(cache), dirName(sourceVersion, key)), sourceVersion, key };
}

/** Parse the fragment: which symbols must be `y` and which must be off. */
export function parseFragment(text: string): { on: string[]; off: string[] } {
  const on: string[] = [];
  const off: string[] = [];
  for (const line of text.split('\n')) {
    let m = /^(CONFIG_[A-Z0-9_]+)=y\s*$/.exec(line);
    if (m) on.push(m[1]!);
    m = /^# (CONFIG_[A-Z0-9_]+) is not set\s*$/.exec(line);
    if (m) off.push(m[1]!);
  }
  return { on, off };
}

function statsPath(cache: string): string {
  return join(cacheDirs.kernels(cache), 'build-stats.json');
}

/** Ensure the iommufd kernel is built and cached; builds it (with progress on stderr) if needed. */
export async function ensureIommufdKernel(cache: string, log: VmLogger): Promise<GuestKernel> {
  const sourceTar = `/usr/src/${KERNEL_SOURCE_PACKAGE}.tar.xz`;
  // Fast path: the exact entry already exists (no apt, no tools needed).
  const sourceVersion0 = await installedVersion(KERNEL_SOURCE_PACKAGE);
  if (sourceVersion0) {
    const exp = await expectedIommufdKernel(cache);
    const k = exp.dir ? fromDir(exp.dir) : undefined;
    if (k) return k;
  }
  await ensureRequirements(buildRequirements(KERNEL_SOURCE_PACKAGE), { log });
  const sourceVersion = (await installedVersion(KERNEL_SOURCE_PACKAGE))!;
  const fragment = readFileSync(fragmentPath(), 'utf8');
  const compiler = await compilerId();
  const key = buildKey(sourceVersion, fragment, compiler);
  const final = join(cacheDirs.kernels(cache), dirName(sourceVersion, key));
  const release = await acquireLock(join(cacheDirs.locks(cache), `iommufd-${key}.lock`), 'the iommufd kernel', log);
  try {
    const done = fromDir(final);
    if (done) return done;
    removeStaleWorkDirs(cacheDirs.build(cache), `iommufd-${key}.`);
    const started = Date.now();
    const work = join(cacheDirs.build(cache), `iommufd-${key}.${process.pid}`);
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    log.stage(`building the iommufd guest kernel from ${KERNEL_SOURCE_PACKAGE} ${sourceVersion} (once per machine; ~10 min on 2 cores)`);
    log.stage(`[1/4] extracting ${sourceTar}`);
    await mustRun('tar', ['-xf', sourceTar, '-C', work]);
    const src = join(work, KERNEL_SOURCE_PACKAGE);
    if (!existsSync(src)) throw new VmError(`${sourceTar} did not contain ${KERNEL_SOURCE_PACKAGE}/`);

    log.stage(`[2/4] configuring: make ${BASE_CONFIG_TARGETS.join(' ')} dma-iommu.config`);
    writeFileSync(join(src, 'kernel', 'configs', 'dma-iommu.config'), fragment);
    await mustRun('make', [...BASE_CONFIG_TARGETS, 'dma-iommu.config'], { cwd: src });
    const config = readFileSync(join(src, '.config'), 'utf8');
    const { on, off } = parseFragment(fragment);
    const missing = on.filter((s) => !new RegExp(`^${s}=y$`, 'm').test(config));
    if (missing.length > 0) {
      throw new VmError(`the kernel config dropped options the guest needs: ${missing.join(', ')} (check vm/kernel/iommufd.config)`);
    }
    const stillOn = off.filter((s) => new RegExp(`^${s}=y$`, 'm').test(config));
    if (stillOn.length > 0) log.note(`config: could not turn off ${stillOn.join(', ')} (selected by other options)`);

    const jobs = availableParallelism();
    let expected = DEFAULT_COMPILE_STEPS;
    try {
      expected = (JSON.parse(readFileSync(statsPath(cache), 'utf8')) as { compileSteps: number }).compileSteps || expected;
    } catch {
      // first build on this machine
    }
    log.stage(`[3/4] compiling: make -j${jobs} bzImage (progress every 20s)`);
    let steps = 0;
    let last = '';
    const compileStart = Date.now();
    const timer = setInterval(() => {
      const pct = Math.min(99, Math.floor((100 * steps) / expected));
      log.progress(`  kernel build: ${formatDuration(Date.now() - compileStart)} elapsed, ~${pct}% (${steps}/~${expected} compile steps)${last ? `, at ${last}` : ''}`);
    }, 20_000);
    const logLines: string[] = [];
    let result: { code: number; tail: string[] };
    try {
      result = await runLines(
        'make',
        [`-j${jobs}`, 'bzImage'],
        (line) => {
          logLines.push(line);
          const m = /^\s+(CC|AS|LD|AR)\s+(\S+)/.exec(line);
          if (m) {
            if (m[1] === 'CC' || m[1] === 'AS') steps++;
            last = m[2]!;
          }
        },
        { cwd: src },
      );
    } finally {
      clearInterval(timer);
    }
    writeFileSync(join(work, 'build.log'), logLines.join('\n') + '\n');
    if (result.code !== 0) {
      const logCopy = join(cacheDirs.build(cache), 'iommufd-last-failed-build.log');
      copyFileSync(join(work, 'build.log'), logCopy);
      rmSync(work, { recursive: true, force: true });
      const errors = logLines.filter((l) => /error|Error/.test(l)).slice(-10);
      throw new VmError(`kernel build failed (make exit ${result.code}); full log: ${logCopy}\n${(errors.length ? errors : result.tail.slice(-15)).join('\n')}`);
    }

    log.stage(`[4/4] caching bzImage`);
    const out = join(work, 'out');
    mkdirSync(out, { recursive: true });
    copyFileSync(join(src, 'arch', 'x86', 'boot', 'bzImage'), join(out, 'bzImage'));
    copyFileSync(join(src, '.config'), join(out, 'config'));
    copyFileSync(join(work, 'build.log'), join(out, 'build.log'));
    const buildSeconds = Math.round((Date.now() - started) / 1000);
    const meta: BuiltKernelMeta = {
      sourcePackage: KERNEL_SOURCE_PACKAGE,
      sourceVersion,
      fragmentSha256: createHash('sha256').update(fragment).digest('hex'),
      compiler,
      key,
      builtAt: new Date().toISOString(),
      buildSeconds,
      compileSteps: steps,
    };
    writeFileSync(join(out, 'kernel.json'), JSON.stringify(meta, null, 2) + '\n');
    mkdirSync(cacheDirs.kernels(cache), { recursive: true });
    rmSync(final, { recursive: true, force: true });
    renameSync(out, final);
    writeFileSync(statsPath(cache), JSON.stringify({ compileSteps: steps, buildSeconds }) + '\n');
    rmSync(work, { recursive: true, force: true });
    log.stage(`built the iommufd kernel in ${formatDuration(buildSeconds * 1000)} (${steps} compile steps): ${final}`);
    return fromDir(final)!;
  } finally {
    release();
  }
}
