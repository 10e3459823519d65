/**
 * `dma-iommu vm info`: what is cached and what a run would use.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cachedDebianKernel } from './debian-kernel.js';
import { cachedIommufdKernels, expectedIommufdKernel, KERNEL_SOURCE_PACKAGE } from './kernel-build.js';
import { RUN_REQUIREMENTS, buildRequirements, installedVersion } from './deps.js';
import { kvmDeviceUsable, readProbe } from './accel.js';
import { cacheDirs, cacheRoot } from './paths.js';
import { which } from './exec.js';

function du(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((sum, n) => sum + du(join(path, n)), 0);
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

export interface VmInfo {
  cache: string;
  cacheBytes: number;
  tools: { what: string; pkg: string; present: boolean }[];
  type1: { cached?: string; description?: string };
  iommufd: { sourceVersion?: string; expected?: string; cached: boolean; others: string[]; buildTools: { what: string; present: boolean }[] };
  helpers: string[];
  initramfs: string[];
  accel: { kvmDevice: boolean; probe?: { kvmWorks: boolean; detail: string; at: string }; override?: string };
}

export async function vmInfo(cache = cacheRoot()): Promise<VmInfo> {
  const deb = cachedDebianKernel(cache);
  const exp = await expectedIommufdKernel(cache);
  const built = cachedIommufdKernels(cache);
  const expectedId = exp.dir ? exp.dir.split('/').pop() : undefined;
  const probe = readProbe(cache);
  const list = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((n) => !n.endsWith('.tmp')) : []);
  return {
    cache,
    cacheBytes: du(cache),
    tools: RUN_REQUIREMENTS.map((r) => ({ what: r.what, pkg: r.pkg, present: r.check() })),
    type1: deb ? { cached: deb.id, description: deb.description } : {},
    iommufd: {
      sourceVersion: exp.sourceVersion ?? (await installedVersion(KERNEL_SOURCE_PACKAGE)),
      expected: expectedId,
      cached: built.some((k) => k.id === expectedId),
      others: built.filter((k) => k.id !== expectedId).map((k) => k.id),
      buildTools: buildRequirements(KERNEL_SOURCE_PACKAGE).map((r) => ({ what: r.what, present: r.check() })),
    },
    helpers: list(cacheDirs.helper(cache)),
    initramfs: list(cacheDirs.initramfs(cache)),
    accel: {
      kvmDevice: kvmDeviceUsable(),
      probe: probe ? { kvmWorks: probe.kvmWorks, detail: probe.detail, at: probe.at } : undefined,
      override: process.env.DMA_IOMMU_VM_ACCEL,
    },
  };
}

export async function infoCommand(argv: string[]): Promise<number> {
  const info = await vmInfo();
  if (argv.includes('--json')) {
    process.stdout.write(JSON.stringify(info, null, 2) + '\n');
    return 0;
  }
  const out: string[] = [];
  out.push(`cache: ${info.cache} (${mib(info.cacheBytes)}; set DMA_IOMMU_CACHE to move it)`);
  out.push(`qemu: ${which('qemu-system-x86_64') ?? 'not installed (qemu-system-x86)'}`);
  const missing = info.tools.filter((t) => !t.present);
  out.push(`tools for vm run: ${missing.length ? `missing ${missing.map((t) => `${t.what} [${t.pkg}]`).join(', ')} (installed automatically when root)` : 'all present'}`);
  out.push('');
  out.push('kernel type1 (Debian packaged 6.12, legacy VFIO type1):');
  out.push(info.type1.cached ? `  cached, would use: ${info.type1.description} [${info.type1.cached}]` : '  not cached: the first run downloads it with apt-get download (~110 MB, ~10 s)');
  out.push('kernel iommufd (built from linux-source-6.12 + vm/kernel/iommufd.config):');
  if (!info.iommufd.sourceVersion) out.push(`  ${KERNEL_SOURCE_PACKAGE} not installed: the first run installs it and builds (~10 min on 2 cores)`);
  else if (info.iommufd.cached) out.push(`  cached, would use: ${info.iommufd.expected}`);
  else out.push(`  not built for ${KERNEL_SOURCE_PACKAGE} ${info.iommufd.sourceVersion} + the current fragment (would build ${info.iommufd.expected}, ~10 min on 2 cores)`);
  if (info.iommufd.others.length) out.push(`  stale builds (other source/fragment; safe to delete): ${info.iommufd.others.join(', ')}`);
  const bm = info.iommufd.buildTools.filter((t) => !t.present);
  if (bm.length) out.push(`  build tools missing: ${bm.map((t) => t.what).join(', ')}`);
  out.push('');
  out.push(`DMA helper builds: ${info.helpers.length ? info.helpers.join(', ') : 'none yet'}`);
  out.push(`initramfs images: ${info.initramfs.length ? info.initramfs.join(', ') : 'none yet'}`);
  const a = info.accel;
  const accelLine = a.override
    ? `DMA_IOMMU_VM_ACCEL=${a.override}`
    : !a.kvmDevice
      ? 'tcg (/dev/kvm not usable)'
      : a.probe
        ? a.probe.kvmWorks
          ? 'kvm (probe passed)'
          : `tcg (KVM probe failed: ${a.probe.detail})`
        : 'auto: the next run probes KVM with one short boot';
  out.push(`accelerator: ${accelLine}`);
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}
