/**
 * `--iommu smmuv3` on the host side: the arm64 guest's QEMU command line, the options it
 * refuses (with the reason), the addon cross-build's inputs, the loader's per-architecture path and the
 * platform-package twins. The guest itself (boot, selftest, suites) is exercised by `vm run --iommu
 * smmuv3` and `npm run test:vm`.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { vmMachine } from '../../support/vm-host.js';
import { VmError } from '../../../lib/vm/errors.js';
import { qemuArgs } from '../../../lib/vm/qemu-args.js';
import { arm64Refusal } from '../../../lib/vm/arm64/index.js';
import { arm64KernelCommandLine } from '../../../lib/vm/arm64/qemu-args.js';
import { addonTarget, archAddonPath } from '../../../lib/vm/arm64/addon.js';
import { platformPackages } from '../../../lib/vm/arm64/native-deps.js';
import { DEBIAN_ARM64 } from '../../../lib/vm/arm64/kernel.js';
import { DEBIAN_AMD64 } from '../../../lib/vm/debian-kernel.js';
import { archBuildPath } from '../../../lib/backend/native/loader.js';
import { runInVm } from '../../../lib/vm/run.js';
import { modelKernelGap } from '../../../lib/vm/test-command.js';

const machine = vmMachine('type1', { image: '/k/Image', memoryMiB: 2048, cpus: 2 });


describe('vm --iommu smmuv3 (host side)', () => {
  // --iommu's parsing, smmuv3 among the choices: test/unit/vm-models/iommu-models.test.ts.
  it('the arm64 machine: virt with SMMUv3 and GICv3, TCG, PL011 console, edu at the q35 slots, the same I/O with the arm64 root as hostroot', () => {
    const a = qemuArgs({ ...machine, iommu: 'smmuv3', hostRoot: '/cache/arm64/root-x' });
    const s = a.join(' ');
    expect(s).toContain('-accel tcg -cpu cortex-a72 -machine virt,iommu=smmuv3,gic-version=3');
    expect(s).not.toContain('intel-iommu');
    expect(s).toContain('-device edu,addr=0x3 -device edu,addr=0x4 -kernel /k/Image');
    expect(s).toContain('-fsdev local,id=fs-root,path=/cache/arm64/root-x,security_model=none,multidevs=remap,readonly=on');
    expect(s).toContain('-device virtio-9p-pci,fsdev=fs-cwd,mount_tag=dmacwd,addr=0x1a');
    expect(a[a.indexOf('-append') + 1]).toBe(arm64KernelCommandLine(machine));
    expect(arm64KernelCommandLine({ ...machine, append: 'loglevel=8' })).toBe('console=ttyAMA0 panic=-1 quiet dma_iommu_vm=1 loglevel=8');
    // the x86 machine is unchanged and shares the host's / as before
    const x = qemuArgs(machine).join(' ');
    expect(x).toContain('intel-iommu,intremap=on,caching-mode=on');
    expect(x).toContain('-fsdev local,id=fs-root,path=/,security_model=none');
  });

  it('refuses what the arm64 guest cannot do, saying why', () => {
    const base = { flavor: 'type1' as const, cwd: '/w' };
    expect(arm64Refusal(base)).toBeUndefined();
    expect(arm64Refusal({ ...base, flavor: 'iommufd' })).toMatch(/no IOMMUFD.*--kernel type1/);
    expect(arm64Refusal({ ...base, hotplug: true })).toMatch(/--hotplug/);
    expect(arm64Refusal({ ...base, topology: 'bridge' })).toMatch(/flat/);
    expect(arm64Refusal({ ...base, kernelImage: '/x' })).toMatch(/--kernel-image/);
  });

  it('runInVm rejects these before fetching anything', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'dma-iommu-arm64-'));
    for (const extra of [{ kernel: 'iommufd' as const }, { hotplug: true }, { iommu: 'smmu' as never }]) {
      const e = await runInVm({ command: ['true'], iommu: 'smmuv3', cacheDir, install: false, ...extra }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(VmError);
      expect((e as VmError).exitCode).toBe(2);
    }
  });

  it('vm test runs smmuv3 on the type1 kernel only, and says why not on iommufd', () => {
    expect(modelKernelGap('smmuv3', 'type1')).toBeUndefined();
    expect(modelKernelGap('smmuv3', 'iommufd')).toMatch(/CONFIG_IOMMUFD is not set/);
    for (const m of ['vtd', 'virtio', 'amd'] as const) expect(modelKernelGap(m, 'iommufd')).toBeUndefined();
  });

  it('the two Debian kernels are cached under distinct names (an arm64 kernel never stands in for the x86 one)', () => {
    expect(DEBIAN_ARM64).toMatchObject({ meta: 'linux-image-6.12-arm64', arch: 'arm64' });
    expect(DEBIAN_AMD64).toMatchObject({ meta: 'linux-image-6.12-amd64', arch: 'amd64', prefix: 'debian-' });
    expect(DEBIAN_ARM64.prefix.startsWith(DEBIAN_AMD64.prefix)).toBe(false);
    expect(DEBIAN_ARM64.lock).not.toBe(DEBIAN_AMD64.lock);
  });

  it('the addon cross-build compiles binding.gyp\'s own sources, and the loader looks where it installs', () => {
    const t = addonTarget();
    expect(t.sources.length).toBeGreaterThan(5);
    expect(t.sources).toContain('native/addon.cc');
    expect(archAddonPath('arm64', '/pkg')).toBe('/pkg/build/arm64/Release/dma_iommu.node');
    expect(archBuildPath('/pkg', 'arm64')).toBe(archAddonPath('arm64', '/pkg'));
  });

  it('finds the host-platform packages (scoped or not) and names their arm64 twins at the same version', () => {
    const nm = join(mkdtempSync(join(tmpdir(), 'dma-iommu-nm-')), 'node_modules');
    const pkg = (name: string, version: string) => {
      mkdirSync(join(nm, name), { recursive: true });
      writeFileSync(join(nm, name, 'package.json'), JSON.stringify({ name, version }));
    };
    pkg('@rolldown/binding-linux-x64-gnu', '1.2.19');
    pkg('lightningcss-linux-x64-gnu', '1.33.0');
    pkg('lightningcss', '1.33.0');
    pkg('@rolldown/pluginutils', '1.0.0');
    expect(platformPackages(nm)).toEqual([
      { host: '@rolldown/binding-linux-x64-gnu', guest: '@rolldown/binding-linux-arm64-gnu', version: '1.2.19' },
      { host: 'lightningcss-linux-x64-gnu', guest: 'lightningcss-linux-arm64-gnu', version: '1.33.0' },
    ]);
    expect(platformPackages(join(nm, 'nope'))).toEqual([]);
  });
});
