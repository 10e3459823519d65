/**
 * `dma-iommu vm run|test --iommu`: each model is one record (lib/vm/iommu-models.ts) and the QEMU
 * command line, the kernel command line, the Debian module list and `vm test`'s runs follow it.
 * Host only; what the guest kernel makes of each model is checked in test/vm/guest/iommu-model-native.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { expectChoiceOption, usageError, vmMachine } from '../../support/vm-host.js';
import { DEBIAN_GUEST_MODULES } from '../../../lib/vm/debian-kernel.js';
import { IOMMU_MODEL_RECORDS, IOMMU_MODELS, allModelModules, iommuModel } from '../../../lib/vm/iommu-models.js';
import { kernelCommandLine, qemuArgs } from '../../../lib/vm/qemu-args.js';
import { EXTRA_TEST_MODELS, MODEL_TESTS, parseTestModels } from '../../../lib/vm/test-command.js';

const machine = vmMachine();


describe('vm --iommu', () => {
  it('parses vtd, virtio, amd and smmuv3 (the arm64 guest, test/unit/vm/arm64.test.ts); anything else names the option and the choices', () => {
    expect(IOMMU_MODELS).toEqual(['vtd', 'virtio', 'amd', 'smmuv3']);
    expectChoiceOption('--iommu', (a) => a.iommu, IOMMU_MODELS, 'intel');
    expect(usageError(() => iommuModel('nope')).message).toBe('--iommu must be vtd, virtio, amd, smmuv3 (got nope)');
  });

  it('vtd (the default) is the former command line exactly: intel-iommu with interrupt remapping, intel_iommu=on', () => {
    const args = qemuArgs(machine).join(' ');
    expect(args).toBe(qemuArgs({ ...machine, iommu: 'vtd' }).join(' '));
    expect(args).toContain('-device intel-iommu,intremap=on,caching-mode=on -device edu,addr=0x3 -device edu,addr=0x4 ');
    expect(kernelCommandLine(machine)).toMatch(/^console=ttyS0 intel_iommu=on panic=-1 /);
  });

  it('virtio: virtio-iommu-pci before the edu devices, and the unsafe-interrupt parameters VFIO and iommufd need without interrupt remapping', () => {
    const args = qemuArgs({ ...machine, iommu: 'virtio' }).join(' ');
    expect(args).toContain('-device virtio-iommu-pci,addr=0x2 -device edu,addr=0x3 ');
    expect(args).not.toContain('intel-iommu');
    const cmdline = kernelCommandLine({ ...machine, iommu: 'virtio' });
    expect(cmdline).toContain('vfio_iommu_type1.allow_unsafe_interrupts=1 iommufd.allow_unsafe_interrupts=1');
    expect(cmdline).not.toContain('intel_iommu');
    expect(IOMMU_MODEL_RECORDS.virtio.caveat).toMatch(/unsafe interrupts/);
  });

  it('amd: amd-iommu with interrupt remapping, no VT-d and no unsafe interrupts', () => {
    const args = qemuArgs({ ...machine, iommu: 'amd' }).join(' ');
    expect(args).toContain('-device amd-iommu,intremap=on -device edu,addr=0x3 ');
    expect(args).not.toContain('intel-iommu');
    expect(kernelCommandLine({ ...machine, iommu: 'amd' })).not.toMatch(/intel_iommu|unsafe/);
  });

  it("the modules a model needs from Debian's modular kernel are cached with it and load before vfio", () => {
    expect(allModelModules()).toEqual(['virtio_iommu']);
    expect(DEBIAN_GUEST_MODULES.indexOf('virtio_iommu')).toBeGreaterThan(-1);
    expect(DEBIAN_GUEST_MODULES.indexOf('virtio_iommu')).toBeLessThan(DEBIAN_GUEST_MODULES.indexOf('vfio_iommu_type1'));
  });

  it('vm test runs the model files on virtio, amd and smmuv3 by default; --iommu narrows it; a bad model is a usage error', () => {
    expect(parseTestModels([])).toEqual(EXTRA_TEST_MODELS);
    expect(parseTestModels(['--iommu', 'all'])).toEqual(['virtio', 'amd', 'smmuv3']);
    expect(parseTestModels(['--iommu', 'amd'])).toEqual(['amd']);
    expect(parseTestModels(['--iommu=vtd'])).toEqual([]);
    usageError(() => parseTestModels(['--iommu', 'x']));
    expect(parseTestModels(['--iommu', 'smmuv3'])).toEqual(['smmuv3']);
    expect(MODEL_TESTS).toEqual(['test/vm/guest/iommu-model-native.test.ts', 'test/vm/guest/conformance-native.test.ts', 'test/vm/guest/selftest-native.test.ts']);
  });
});
