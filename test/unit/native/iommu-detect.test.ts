/**
 * Which IOMMU the native backends sit on, from a fake /sys/class/iommu shaped like the real
 * kernel's on each model (names and link targets as `dma-iommu vm --iommu MODEL` showed them), and
 * the fault capabilities each model gets.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { faultCapabilities } from '../../../lib/backend/native/faults.js';
import { FAULT_DETAILS } from '../../../lib/backend/iommu-facts.js';
import { KMSG_FAULT_RATE_LIMIT } from '../../../lib/backend/native/kmsg.js';
import { iommuDetail } from '../../../lib/backend/native/probe.js';
import { detectIommu, iommuUnitModel } from '../../../lib/backend/native/sysfs.js';

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function tree(units: Record<string, string>, vendor: string | null): string {
  const root = mkdtempSync(join(tmpdir(), 'dma-iommu-class-'));
  roots.push(root);
  mkdirSync(join(root, 'sys/class/iommu'), { recursive: true });
  for (const [name, target] of Object.entries(units)) symlinkSync(target, join(root, 'sys/class/iommu', name));
  if (vendor !== null) {
    mkdirSync(join(root, 'sys/class/dmi/id'), { recursive: true });
    writeFileSync(join(root, 'sys/class/dmi/id/sys_vendor'), `${vendor}\n`);
  }
  return root;
}

describe('IOMMU detection from sysfs', () => {
  it('names each model by its /sys/class/iommu entry', () => {
    expect(iommuUnitModel('dmar0', '../../devices/virtual/iommu/dmar0')).toBe('vtd');
    expect(iommuUnitModel('ivhd0', '../../devices/pci0000:00/0000:00:01.0/iommu/ivhd0')).toBe('amd');
    expect(iommuUnitModel('0000:00:02.0', '../../devices/pci0000:00/0000:00:02.0/virtio0/iommu/0000:00:02.0')).toBe('virtio');
    expect(iommuUnitModel('smmu3.0x0000000009050000', '../../devices/platform/9050000.smmuv3/iommu/smmu3.0x0000000009050000')).toBe('smmuv3');
    expect(iommuUnitModel('foo', '../../devices/foo')).toBe('unknown');
  });

  it('reads the tree: one model, QEMU or not; nothing or a mix is unknown', () => {
    expect(detectIommu({ root: tree({ dmar0: '../../devices/virtual/iommu/dmar0' }, 'QEMU') })).toEqual({ model: 'vtd', units: ['dmar0'], emulated: true });
    expect(detectIommu({ root: tree({ ivhd0: '../../devices/pci0000:00/0000:00:01.0/iommu/ivhd0' }, 'Dell Inc.') })).toEqual({ model: 'amd', units: ['ivhd0'], emulated: false });
    expect(detectIommu({ root: tree({}, null) })).toEqual({ model: 'unknown', units: [], emulated: false });
    expect(detectIommu({ root: '/nonexistent-root' }).model).toBe('unknown');
    expect(detectIommu({ root: tree({ dmar0: 'x/dmar0', ivhd0: 'y/ivhd0' }, 'QEMU') }).model).toBe('unknown');
  });

  it("gives QEMU's amd-iommu no fault source (it logs no fault), real AMD-Vi and the others the kernel log with their record's details", () => {
    expect(faultCapabilities({ model: 'amd', units: ['ivhd0'], emulated: true }, true)).toEqual({ iommu: 'amd', faultSource: 'none', faultRateLimit: null, faultDetails: null, writeOnlyMappings: 'enforced' });
    expect(faultCapabilities({ model: 'amd', units: ['ivhd0'], emulated: false }, true)).toMatchObject({ faultSource: 'kmsg', faultDetails: FAULT_DETAILS.amd });
    expect(faultCapabilities({ model: 'vtd', units: ['dmar0'], emulated: true }, true)).toEqual({ iommu: 'vtd', faultSource: 'kmsg', faultRateLimit: KMSG_FAULT_RATE_LIMIT, faultDetails: { direction: true, reasonCodes: true, address: 'page' }, writeOnlyMappings: 'readable' });
    expect(faultCapabilities({ model: 'virtio', units: ['0000:00:02.0'], emulated: true }, true)).toEqual({ iommu: 'virtio', faultSource: 'kmsg', faultRateLimit: { faults: 1, intervalMs: 8000 }, faultDetails: { direction: false, reasonCodes: true, address: 'exact' }, writeOnlyMappings: 'enforced' });
    expect(faultCapabilities({ model: 'virtio', units: [], emulated: true }, false)).toMatchObject({ faultSource: 'none', faultDetails: null });
  });
});

describe('what info says about the model', () => {
  it('virtio: the missing interrupt remapping and the unsafe-interrupt parameters as the kernel has them; QEMU amd: no fault reports', () => {
    const root = tree({ '0000:00:02.0': '../../devices/pci0000:00/0000:00:02.0/virtio0/iommu/0000:00:02.0' }, 'QEMU');
    mkdirSync(join(root, 'sys/module/vfio_iommu_type1/parameters'), { recursive: true });
    writeFileSync(join(root, 'sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts'), 'Y\n');
    const paths = { root };
    expect(iommuDetail(paths, detectIommu(paths))).toBe(
      'virtio (0000:00:02.0, emulated by QEMU): no interrupt remapping, so VFIO and iommufd attach a device only with allow_unsafe_interrupts=1 (vfio_iommu_type1: Y, iommufd: not loaded); device MSIs are not isolated',
    );
    expect(iommuDetail(paths, { model: 'amd', units: ['ivhd0'], emulated: true })).toMatch(/QEMU's amd-iommu logs no DMA fault/);
    expect(iommuDetail(paths, { model: 'vtd', units: ['dmar0'], emulated: false })).toBe('vtd (dmar0)');
    expect(iommuDetail(paths, { model: 'unknown', units: [], emulated: false })).toBe('none in /sys/class/iommu');
  });
});
