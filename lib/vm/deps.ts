/**
 * Host tools the harness needs, the Debian packages that provide them, and installing them
 * (`apt-get install` when running as root, otherwise the exact command to run).
 */
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { capture, isRoot, runLines, which } from './exec.js';
import { VmError, VM_EXIT } from './errors.js';
import type { VmLogger } from './log.js';
import { formatDuration } from './log.js';

export interface Requirement {
  /** What must be present. */
  check: () => boolean;
  /** Debian package providing it. */
  pkg: string;
  /** Shown to the user. */
  what: string;
}

const cmd = (name: string): (() => boolean) => () => which(name) !== undefined;
const file = (path: string): (() => boolean) => () => existsSync(path);

/** True when `path` is an ELF executable without a PT_INTERP segment (statically linked). */
export function isStaticElf(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const head = Buffer.alloc(64);
    if (readSync(fd, head, 0, 64, 0) < 64 || head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2) return false;
    const phoff = Number(head.readBigUInt64LE(32));
    const phentsize = head.readUInt16LE(54);
    const phnum = head.readUInt16LE(56);
    const table = Buffer.alloc(phentsize * phnum);
    readSync(fd, table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) if (table.readUInt32LE(i * phentsize) === 3 /* PT_INTERP */) return false;
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The busybox binary put into the initramfs: must be static (package busybox-static). */
export const BUSYBOX = '/bin/busybox';

/** Needed for every `vm run`. */
export const RUN_REQUIREMENTS: Requirement[] = [
  { check: cmd('qemu-system-x86_64'), pkg: 'qemu-system-x86', what: 'qemu-system-x86_64' },
  { check: () => isStaticElf(BUSYBOX), pkg: 'busybox-static', what: 'a static /bin/busybox' },
  { check: cmd('xz'), pkg: 'xz-utils', what: 'xz' },
  { check: cmd('gcc'), pkg: 'gcc', what: 'gcc (for the C DMA helper)' },
  { check: cmd('dpkg-deb'), pkg: 'dpkg', what: 'dpkg-deb' },
];

/** Needed to build the iommufd kernel from linux-source. */
export function buildRequirements(sourcePackage: string): Requirement[] {
  return [
    { check: file(`/usr/src/${sourcePackage}.tar.xz`), pkg: sourcePackage, what: `/usr/src/${sourcePackage}.tar.xz` },
    { check: cmd('make'), pkg: 'make', what: 'make' },
    { check: cmd('gcc'), pkg: 'gcc', what: 'gcc' },
    { check: cmd('bc'), pkg: 'bc', what: 'bc' },
    { check: cmd('bison'), pkg: 'bison', what: 'bison' },
    { check: cmd('flex'), pkg: 'flex', what: 'flex' },
    { check: cmd('perl'), pkg: 'perl', what: 'perl' },
    { check: file('/usr/include/libelf.h'), pkg: 'libelf-dev', what: 'libelf headers' },
    { check: file('/usr/include/openssl/opensslv.h'), pkg: 'libssl-dev', what: 'OpenSSL headers' },
    { check: cmd('xz'), pkg: 'xz-utils', what: 'xz' },
  ];
}

export interface EnsureOptions {
  log: VmLogger;
  /** Allow `apt-get install` when root (default true). */
  install?: boolean;
}

let aptUpdated = false;

/** `apt-get update`, at most once per process (`force`: again, e.g. after adding an architecture). */
export async function aptUpdate(log: VmLogger, force = false): Promise<void> {
  if (aptUpdated && !force) return;
  log.stage('running apt-get update');
  const r = await capture('apt-get', ['update'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.code !== 0) throw new VmError(`apt-get update failed:\n${r.stderr.trim().split('\n').slice(-10).join('\n')}`);
  aptUpdated = true;
}

/** Install every missing requirement, or explain exactly how to. */
export async function ensureRequirements(reqs: Requirement[], options: EnsureOptions): Promise<void> {
  const missing = reqs.filter((r) => !r.check());
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((r) => r.pkg))];
  const command = `apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
  const list = missing.map((r) => r.what).join(', ');
  if (!isRoot() || options.install === false || which('apt-get') === undefined) {
    throw new VmError(
      `missing ${list}.\nInstall with:\n  sudo apt-get update && sudo ${command}\n` +
        `(dma-iommu installs these itself when it runs as root.)`,
      VM_EXIT.harness,
    );
  }
  const started = Date.now();
  await aptUpdate(options.log);
  options.log.stage(`installing ${pkgs.join(' ')} (for ${list})`);
  const r = await runLines('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], () => {}, {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.code !== 0) throw new VmError(`\`${command}\` failed (exit ${r.code}):\n${r.tail.slice(-15).join('\n')}`);
  const still = missing.filter((q) => !q.check());
  if (still.length > 0) throw new VmError(`installed ${pkgs.join(' ')} but still missing ${still.map((q) => q.what).join(', ')}`);
  options.log.stage(`installed ${pkgs.join(' ')} in ${formatDuration(Date.now() - started)}`);
}

/** `dpkg-query` version of an installed package, or undefined. */
export async function installedVersion(pkg: string): Promise<string | undefined> {
  const r = await capture('dpkg-query', ['-W', '-f=${Status}\t${Version}', pkg]);
  if (r.code !== 0) return undefined;
  const [status, version] = r.stdout.split('\t');
  return status?.endsWith(' installed') && version ? version : undefined;
}
