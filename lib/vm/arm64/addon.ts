/**
 * The native addon and the C DMA helper cross-built for the arm64 guest with Debian's aarch64 toolchain
 * (the host's x86 builds fail there with an ELF error).
 *  - addon: the sources, defines and C++ flags of binding.gyp's one target, compiled and linked as a
 *    shared object with aarch64-linux-gnu-g++ against the arm64 Node's own headers (Node-API is
 *    ABI-stable; the napi_* symbols resolve from the guest's node at load time). Cached under
 *    arm64/addon-<hash>.node (hash of the sources, headers and flags) and installed into the package
 *    as build/arm64/Release/dma_iommu.node, where lib/backend/native/loader.ts looks first on arm64.
 *  - helper: vm/helper/*.c with aarch64-linux-gnu-gcc, placed inside the arm64 root (the guest's
 *    "hostroot") so the guest tests find it at the path DMA_IOMMU_VM_HELPER names.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { packageRoot } from '../paths.js';
import { mustRun } from '../exec.js';
import { VmError } from '../errors.js';
import { helperSources } from '../helper.js';
import type { VmLogger } from '../log.js';
import { arm64Dir, type Arm64Root } from './rootfs.js';

interface GypTarget {
  target_name: string;
  sources: string[];
  defines?: string[];
  cflags_cc?: string[];
}

/** The addon target of binding.gyp (one source of truth for the source list and flags). */
export function addonTarget(root = packageRoot()): GypTarget {
  const gyp = JSON.parse(readFileSync(join(root, 'binding.gyp'), 'utf8')) as { targets: GypTarget[] };
  const t = gyp.targets.find((x) => x.target_name === 'dma_iommu');
  if (!t) throw new VmError('binding.gyp has no dma_iommu target');
  return t;
}

/** Where the loader finds an addon built for `arch` (Node's process.arch naming). */
export function archAddonPath(arch: string, root = packageRoot()): string {
  return join(root, 'build', arch, 'Release', 'dma_iommu.node');
}

function listHeaders(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listHeaders(p));
    else if (/\.(h|hh|hpp)$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

/** The compiler command line (without the output path). */
function addonCompileArgs(root: string, nodeInclude: string): { args: string[]; inputs: string[] } {
  const t = addonTarget(root);
  const napiInclude = dirname(createRequire(join(root, 'package.json')).resolve('node-addon-api/package.json'));
  const sources = t.sources.map((s) => join(root, s));
  const args = [
    '-shared', '-fPIC', '-O2', '-pthread', '-fvisibility=hidden',
    ...(t.cflags_cc ?? []),
    ...(t.defines ?? []).map((d) => `-D${d}`),
    '-DNODE_GYP_MODULE_NAME=dma_iommu', '-DBUILDING_NODE_EXTENSION', '-D_LARGEFILE_SOURCE', '-D_FILE_OFFSET_BITS=64',
    `-I${napiInclude}`, `-I${nodeInclude}`,
    ...sources,
  ];
  const inputs = [...sources, ...listHeaders(join(root, 'native')), join(napiInclude, 'napi.h'), join(napiInclude, 'napi-inl.h')];
  return { args, inputs };
}

/** Build (or reuse) the arm64 addon and install it at build/arm64/Release/dma_iommu.node. Returns that path. */
export async function ensureArm64Addon(cache: string, rootfs: Arm64Root, log: VmLogger): Promise<string> {
  const root = packageRoot();
  const nodeInclude = join(rootfs.dir, 'usr', 'include', 'node');
  const { args, inputs } = addonCompileArgs(root, nodeInclude);
  const h = createHash('sha256').update('arm64 addon v1\n').update(args.map((a) => a.replace(root, '<pkg>').replace(rootfs.dir, '<root>')).join(' '));
  for (const f of inputs) h.update(f.replace(root, '')).update(readFileSync(f));
  h.update(readFileSync(join(nodeInclude, 'node_version.h')));
  const cached = join(arm64Dir(cache), `addon-${h.digest('hex').slice(0, 12)}.node`);
  if (!existsSync(cached)) {
    const started = Date.now();
    log.stage(`cross-building the native addon for arm64 (aarch64-linux-gnu-g++, ${addonTarget(root).sources.length} sources)`);
    mkdirSync(arm64Dir(cache), { recursive: true });
    const tmp = `${cached}.${process.pid}.tmp`;
    await mustRun('aarch64-linux-gnu-g++', [...args, '-o', tmp]);
    renameSync(tmp, cached);
    log.stage(`built the arm64 addon in ${Math.round((Date.now() - started) / 1000)} s`);
  }
  const target = archAddonPath('arm64', root);
  if (!existsSync(target) || !readFileSync(target).equals(readFileSync(cached))) {
    mkdirSync(dirname(target), { recursive: true });
    const tmp = `${target}.${process.pid}.tmp`;
    copyFileSync(cached, tmp);
    renameSync(tmp, target);
  }
  return target;
}

/** Build (or reuse) the C helper for arm64 inside the root; returns its path as the guest sees it. */
export async function ensureArm64Helper(rootfs: Arm64Root): Promise<string> {
  const h = createHash('sha256').update('arm64 helper v1\n');
  for (const f of helperSources()) h.update(f.split('/').pop()!).update(readFileSync(f));
  const guestPath = `/opt/dma-iommu/dma-probe-${h.digest('hex').slice(0, 12)}`;
  const out = join(rootfs.dir, guestPath);
  if (existsSync(out) && statSync(out).size > 0) return guestPath;
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const sources = helperSources().filter((f) => f.endsWith('.c'));
  await mustRun('aarch64-linux-gnu-gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-std=gnu11', '-o', tmp, ...sources]);
  renameSync(tmp, out);
  return guestPath;
}
