/**
 * The `type1` guest kernel: Debian's packaged linux-image 6.12 (unsigned), fetched with `apt-get download`,
 * unpacked with `dpkg-deb -x`, reduced to the image plus the few modules the guest loads (decompressed,
 * because busybox insmod does not read .ko.xz). Cached under kernels/debian-<release>/.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { cacheDirs } from './paths.js';
import { capture, isRoot, mustRun } from './exec.js';
import { aptUpdate, ensureRequirements, RUN_REQUIREMENTS } from './deps.js';
import { VmError } from './errors.js';
import { acquireLock, removeStaleWorkDirs } from './lock.js';
import { pruneOlderVersions } from './cache-prune.js';
import { formatDuration, type VmLogger } from './log.js';
import { loadOrder, moduleDepends, moduleName } from './kmod.js';
import type { GuestKernel } from './kernel-types.js';
import { allModelModules } from './iommu-models.js';

/** The meta-package whose dependency names the newest 6.12 image. */
export const DEBIAN_KERNEL_META = 'linux-image-6.12-amd64';

/**
 * Modules the guest loads (their dependencies are added): 9p root, the IOMMU drivers the models need
 * that Debian builds as modules (virtio_iommu; loaded before vfio, a no-op without its device), and
 * vfio-pci with the type1 backend.
 */
export const DEBIAN_GUEST_MODULES = ['9pnet_virtio', '9p', ...allModelModules(), 'vfio_iommu_type1', 'vfio_pci'];

interface DebianKernelMeta {
  release: string;
  package: string;
  version: string;
  modules: string[];
  /** DEBIAN_GUEST_MODULES when the entry was cached (absent in entries older than the field). */
  wanted?: string[];
}

/** Which Debian kernel package, for which architecture, cached under which name prefix. */
export interface DebianKernelSpec {
  /** The meta-package whose dependency names the newest 6.12 image. */
  meta: string;
  /** Debian architecture (amd64 for the x86 guests, arm64 for lib/vm/arm64). */
  arch: string;
  /** Cache folder prefix under kernels/ (distinct per architecture). */
  prefix: string;
  /** Lock file name under locks/. */
  lock: string;
  /**
   * Remove the older cached entries of this prefix once a new one is cached (the arm64 guest's; the x86
   * entries are left as they were).
   */
  pruneOlder?: boolean;
}

/** The x86 guests' kernel. */
export const DEBIAN_AMD64: DebianKernelSpec = { meta: DEBIAN_KERNEL_META, arch: 'amd64', prefix: 'debian-', lock: 'debian-kernel.lock' };

/** `pkg` as apt names it for `spec` (foreign architectures carry `:arch`). */
function aptName(pkg: string, spec: DebianKernelSpec): string {
  return spec.arch === 'amd64' ? pkg : `${pkg}:${spec.arch}`;
}

/** Cache entry name: the release, plus a key of the module list (so an entry with other modules never replaces one in use). */
function entryName(rel: string, spec: DebianKernelSpec): string {
  return `${spec.prefix}${rel}-${createHash('sha256').update(DEBIAN_GUEST_MODULES.join(',')).digest('hex').slice(0, 8)}`;
}

function describe(meta: DebianKernelMeta): string {
  return `Debian ${meta.package} ${meta.version} (legacy VFIO type1)`;
}

function fromDir(dir: string): GuestKernel | undefined {
  const metaPath = join(dir, 'kernel.json');
  if (!existsSync(metaPath)) return undefined;
  const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as DebianKernelMeta;
  // an entry cached before a module was added to the list lacks it: fetch again (into a new entry)
  const wanted = meta.wanted ?? ['9pnet_virtio', '9p', 'vfio_iommu_type1', 'vfio_pci'];
  if (DEBIAN_GUEST_MODULES.some((m) => !wanted.includes(m))) return undefined;
  return {
    flavor: 'type1',
    id: dir.split('/').pop()!,
    image: join(dir, 'vmlinuz'),
    modules: meta.modules.map((m) => join(dir, 'modules', `${m}.ko`)),
    description: describe(meta),
  };
}

function compareRelease(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/** Remove `spec`'s cached kernels other than `keep` (a cache entry's folder); returns the names removed. */
export function pruneOlderDebianKernels(cache: string, spec: DebianKernelSpec, keep: string): string[] {
  return pruneOlderVersions(cacheDirs.kernels(cache), spec.prefix, basename(keep));
}

/** The newest cached Debian kernel, if any. */
export function cachedDebianKernel(cache: string, spec: DebianKernelSpec = DEBIAN_AMD64): GuestKernel | undefined {
  const dir = cacheDirs.kernels(cache);
  if (!existsSync(dir)) return undefined;
  const names = readdirSync(dir)
    .filter((n) => n.startsWith(spec.prefix))
    .sort(compareRelease)
    .reverse();
  for (const n of names) {
    const k = fromDir(join(dir, n));
    if (k) return k;
  }
  return undefined;
}

/** Which linux-image package the meta-package points at now (asks apt's local lists). */
export async function resolveDebianKernelPackage(
  log: VmLogger,
  spec: DebianKernelSpec = DEBIAN_AMD64,
): Promise<{ release: string; pkg: string; version: string }> {
  const ask = () => capture('apt-cache', ['show', '--no-all-versions', aptName(spec.meta, spec)]);
  let r = await ask();
  if ((r.code !== 0 || !r.stdout.trim()) && isRoot()) {
    await aptUpdate(log);
    r = await ask();
  }
  const m = new RegExp(`^Depends:.*?\\blinux-image-(6\\.12\\.[^\\s,]+?-${spec.arch})\\b`, 'm').exec(r.stdout);
  const v = /^Version:\s*(\S+)/m.exec(r.stdout);
  if (r.code !== 0 || !m || !v) {
    throw new VmError(
      `cannot find ${aptName(spec.meta, spec)} in apt's package lists (is bookworm-security / a 6.12 source configured?).\n` +
        `Try: sudo apt-get update && apt-cache show ${aptName(spec.meta, spec)}`,
    );
  }
  return { release: m[1]!, pkg: `linux-image-${m[1]}-unsigned`, version: v[1]! };
}

/** Ensure the packaged kernel is in the cache (download once per machine). */
export async function ensureDebianKernel(cache: string, log: VmLogger, spec: DebianKernelSpec = DEBIAN_AMD64): Promise<GuestKernel> {
  const cached = cachedDebianKernel(cache, spec);
  if (cached) return cached;
  await ensureRequirements(RUN_REQUIREMENTS, { log });
  const release = await acquireLock(join(cacheDirs.locks(cache), spec.lock), `the Debian ${spec.arch} kernel`, log);
  try {
    const again = cachedDebianKernel(cache, spec);
    if (again) return again;
    removeStaleWorkDirs(cacheDirs.build(cache), spec.prefix);
    const started = Date.now();
    const { release: rel, pkg, version } = await resolveDebianKernelPackage(log, spec);
    const work = join(cacheDirs.build(cache), `${spec.prefix}${rel}.${process.pid}`);
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    log.stage(`downloading ${pkg} ${version} (apt-get download)`);
    const aptArgs = [...(isRoot() ? ['-o', 'APT::Sandbox::User=root'] : []), 'download', aptName(pkg, spec)];
    await mustRun('apt-get', aptArgs, { cwd: work });
    const deb = readdirSync(work).find((n) => n.endsWith('.deb'));
    if (!deb) throw new VmError(`apt-get download ${pkg} produced no .deb`);
    log.stage(`unpacking ${deb}`);
    const root = join(work, 'root');
    await mustRun('dpkg-deb', ['-x', join(work, deb), root]);
    const modRoot = join(root, 'lib', 'modules', rel);
    const files = new Map<string, string>();
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.ko(\.xz)?$/.test(e.name)) files.set(moduleName(e.name), p);
      }
    };
    walk(join(modRoot, 'kernel'));
    const builtin = new Set(
      readFileSync(join(modRoot, 'modules.builtin'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map(moduleName),
    );
    const images = new Map<string, Buffer>();
    const image = (name: string): Buffer | undefined => {
      if (images.has(name)) return images.get(name);
      const f = files.get(name);
      if (!f) return undefined;
      const buf = f.endsWith('.xz') ? execFileSync('xz', ['-dc', f], { maxBuffer: 256 << 20 }) : readFileSync(f);
      images.set(name, buf);
      return buf;
    };
    let order: string[];
    try {
      order = loadOrder(DEBIAN_GUEST_MODULES, (name) => {
        if (builtin.has(name)) return [];
        const buf = image(name);
        return buf ? moduleDepends(buf) : undefined;
      }).filter((n) => !builtin.has(n));
    } catch (e) {
      throw new VmError(`${pkg}: ${(e as Error).message}`);
    }
    const out = join(work, 'out');
    mkdirSync(join(out, 'modules'), { recursive: true });
    copyFileSync(join(root, 'boot', `vmlinuz-${rel}`), join(out, 'vmlinuz'));
    copyFileSync(join(root, 'boot', `config-${rel}`), join(out, 'config'));
    for (const n of order) writeFileSync(join(out, 'modules', `${n}.ko`), image(n)!);
    const meta: DebianKernelMeta = { release: rel, package: pkg, version, modules: order, wanted: DEBIAN_GUEST_MODULES };
    writeFileSync(join(out, 'kernel.json'), JSON.stringify(meta, null, 2) + '\n');
    const final = join(cacheDirs.kernels(cache), entryName(rel, spec));
    mkdirSync(cacheDirs.kernels(cache), { recursive: true });
    rmSync(final, { recursive: true, force: true });
    renameSync(out, final);
    rmSync(work, { recursive: true, force: true });
    log.stage(`cached ${describe(meta)} in ${formatDuration(Date.now() - started)} (modules: ${order.join(' ')})`);
    if (spec.pruneOlder) {
      const pruned = pruneOlderDebianKernels(cache, spec, final);
      if (pruned.length) log.note(`removed older cached ${spec.arch} kernels: ${pruned.join(' ')}`);
    }
    return fromDir(final)!;
  } finally {
    release();
  }
}
