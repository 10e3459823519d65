/**
 * The guest runs the checkout's node_modules, but npm installed the host's platform binaries there
 * (e.g. vitest's bundler rolldown as @rolldown/binding-linux-x64-gnu, lightningcss as
 * lightningcss-linux-x64-gnu). For each such `…linux-x64-gnu` package this fetches its
 * `…linux-arm64-gnu` twin at the same version (npm pack) into the arm64 root's /node_modules: Node's
 * module resolution walks up from the checkout to the filesystem root, so the guest finds the arm64
 * binary there and the checkout stays untouched.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { mustRun } from '../exec.js';
import { VmError } from '../errors.js';
import type { VmLogger } from '../log.js';
import type { Arm64Root } from './rootfs.js';

const HOST_SUFFIX = 'linux-x64-gnu';
const GUEST_SUFFIX = 'linux-arm64-gnu';

/** `name@version` of every host-platform package in `nodeModules` (scoped ones included), with its arm64 twin's name. */
export function platformPackages(nodeModules: string): { host: string; guest: string; version: string }[] {
  const out: { host: string; guest: string; version: string }[] = [];
  if (!existsSync(nodeModules)) return out;
  const names: string[] = [];
  for (const n of readdirSync(nodeModules)) {
    if (n.startsWith('@')) for (const s of readdirSync(join(nodeModules, n))) names.push(`${n}/${s}`);
    else names.push(n);
  }
  for (const name of names.sort()) {
    if (!name.endsWith(HOST_SUFFIX)) continue;
    const manifest = join(nodeModules, name, 'package.json');
    if (!existsSync(manifest)) continue;
    const version = (JSON.parse(readFileSync(manifest, 'utf8')) as { version?: string }).version;
    if (!version) continue;
    out.push({ host: name, guest: name.slice(0, -HOST_SUFFIX.length) + GUEST_SUFFIX, version });
  }
  return out;
}

/** Make sure the arm64 twin of every host-platform package of `pkgRoot`/node_modules is in the root. */
export async function ensureArm64PlatformPackages(root: Arm64Root, pkgRoot: string, log: VmLogger): Promise<string[]> {
  const installed: string[] = [];
  for (const p of platformPackages(join(pkgRoot, 'node_modules'))) {
    const dest = join(root.dir, 'node_modules', p.guest);
    const spec = `${p.guest}@${p.version}`;
    installed.push(spec);
    if (existsSync(join(dest, 'package.json')) && (JSON.parse(readFileSync(join(dest, 'package.json'), 'utf8')) as { version?: string }).version === p.version) continue;
    log.stage(`fetching ${spec} for the arm64 guest (npm pack; the checkout has ${p.host})`);
    const work = join(root.dir, '..', `work-npm-${process.pid}`);
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    try {
      await mustRun('npm', ['pack', spec, '--pack-destination', work, '--silent'], { cwd: work });
      const tgz = readdirSync(work).find((n) => n.endsWith('.tgz'));
      if (!tgz) throw new VmError(`npm pack ${spec} produced no tarball`);
      await mustRun('tar', ['xzf', join(work, tgz), '-C', work]);
      rmSync(dest, { recursive: true, force: true });
      mkdirSync(join(dest, '..'), { recursive: true });
      renameSync(join(work, 'package'), dest);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  return installed;
}
