import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createNativeBackend } from '../../../lib/backend/native/index.js';
import { loadNative } from '../../../lib/backend/native/loader.js';
import { probe } from '../../../lib/backend/native/probe.js';
import { listPciDevices, toPciDeviceInfo } from '../../../lib/backend/native/sysfs.js';

describe('probe on this machine (no IOMMU here)', () => {
  it('gives no native backend and says why at every step', () => {
    const r = createNativeBackend('auto');
    expect(r.backend).toBeUndefined();
    const steps = Object.fromEntries(r.steps.map((s) => [s.check, s]));
    expect(steps['native addon'].ok).toBe(true);
    expect(steps['IOMMU groups']).toMatchObject({ ok: false });
    expect(steps['/dev/iommu']).toMatchObject({ ok: false, detail: expect.stringContaining('absent') });
    expect(steps['/dev/vfio/vfio']).toMatchObject({ ok: false });
    expect(steps['vfio-pci devices']).toMatchObject({ ok: false });
    for (const s of r.steps) expect(s.detail.length).toBeGreaterThan(0);
    expect(r.reason).toMatch(/iommufd: .*\/dev\/iommu is not usable.*vfio-type1: .*\/dev\/vfio\/vfio is not usable/);
    expect(createNativeBackend('iommufd').reason).toMatch(/^iommufd:/);
    expect(createNativeBackend('vfio-type1').reason).toMatch(/^vfio-type1:/);
  });

  it('without the addon it reports "not built" and no backend', () => {
    const r = createNativeBackend('auto', { addon: null });
    expect(r.backend).toBeUndefined();
    expect(r.steps[0]).toMatchObject({ check: 'native addon', ok: false });
    expect(r.reason).toBe('not built');
  });
});

describe('probe on a fake sysfs tree', () => {
  const root = mkdtempSync(join(tmpdir(), 'dma-iommu-sysfs-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const dev = (bdf: string, group: number | null, driver: string | null, vfioN: string | null) => {
    const d = join(root, 'sys/bus/pci/devices', bdf);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'vendor'), '0x1234\n');
    writeFileSync(join(d, 'device'), '0x11e8\n');
    writeFileSync(join(d, 'class'), '0x00ff00\n');
    if (group !== null) {
      const g = join(root, 'sys/kernel/iommu_groups', String(group), 'devices');
      mkdirSync(g, { recursive: true });
      symlinkSync(d, join(g, bdf));
      symlinkSync(join(root, 'sys/kernel/iommu_groups', String(group)), join(d, 'iommu_group'));
    }
    if (driver) {
      mkdirSync(join(root, 'sys/bus/pci/drivers', driver), { recursive: true });
      symlinkSync(join(root, 'sys/bus/pci/drivers', driver), join(d, 'driver'));
    }
    if (vfioN) mkdirSync(join(d, 'vfio-dev', vfioN), { recursive: true });
  };
  dev('0000:00:03.0', 1, 'vfio-pci', 'vfio0');
  dev('0000:00:04.0', 2, 'vfio-pci', 'vfio1');
  dev('0000:00:05.0', 3, 'e1000e', null);
  dev('0000:00:06.0', null, null, null);
  mkdirSync(join(root, 'dev/vfio/devices'), { recursive: true });
  writeFileSync(join(root, 'dev/iommu'), '');
  writeFileSync(join(root, 'dev/vfio/vfio'), '');
  writeFileSync(join(root, 'dev/vfio/devices/vfio0'), '');
  writeFileSync(join(root, 'dev/vfio/1'), '');
  mkdirSync(join(root, 'sys/module/vfio_iommu_type1/parameters'), { recursive: true });
  writeFileSync(join(root, 'sys/module/vfio_iommu_type1/parameters/dma_entry_limit'), '4096\n');
  const paths = { root };

  it('enumerates PCI functions with group, driver, requester ID and why they are not usable', () => {
    const list = listPciDevices(paths);
    expect(list.map((d) => d.bdf)).toEqual(['0000:00:03.0', '0000:00:04.0', '0000:00:05.0', '0000:00:06.0']);
    const info = list.map((d) => toPciDeviceInfo(paths, d, 'iommufd'));
    expect(info[0]).toMatchObject({ bdf: '0000:00:03.0', vendorId: 0x1234, deviceId: 0x11e8, classCode: 0xff00, iommuGroup: 1, requesterId: 0x18, driver: 'vfio-pci', usable: true, maxPasidLog2: 0 });
    expect(info[1]).toMatchObject({ usable: false, whyNotUsable: expect.stringContaining('/dev/vfio/devices/vfio1 does not exist') });
    expect(info[2]).toMatchObject({ usable: false, whyNotUsable: expect.stringMatching(/^bound to e1000e, not vfio-pci \(bind it: `echo vfio-pci > /) });
    expect(info[3]).toMatchObject({ iommuGroup: null, usable: false, whyNotUsable: expect.stringContaining('not behind an IOMMU') });
    const t1 = list.map((d) => toPciDeviceInfo(paths, d, 'vfio-type1'));
    expect(t1[0].usable).toBe(true);
    expect(t1[1].whyNotUsable).toMatch(/\/dev\/vfio\/2 does not exist/);
  });

  it('reports each step and which uAPI is usable', () => {
    const r = probe({ paths });
    const steps = Object.fromEntries(r.steps.map((s) => [s.check, s]));
    expect(steps['IOMMU groups']).toMatchObject({ ok: true, detail: '3 group(s) in /sys/kernel/iommu_groups' });
    expect(steps['vfio-pci devices'].detail).toBe('0000:00:03.0 (group 1), 0000:00:04.0 (group 2)');
    expect(steps['/dev/iommu'].ok).toBe(true);
    expect(steps['VFIO device cdevs'].detail).toMatch(/usable: 0000:00:03.0 \(vfio0\)/);
    expect(steps['VFIO group nodes'].detail).toMatch(/usable: 0000:00:03.0/);
    expect(steps.dma_entry_limit).toMatchObject({ ok: true, detail: expect.stringContaining('4096') });
    expect(r.iommufd).toMatchObject({ usable: true, devices: ['0000:00:03.0'] });
    expect(r.type1).toMatchObject({ usable: true, devices: ['0000:00:03.0'] });
  });

  it('a node without read/write permission is reported (non-root only)', () => {
    if (process.getuid?.() === 0) return; // root can open anything
    chmodSync(join(root, 'dev/iommu'), 0o400);
    expect(probe({ paths }).iommufd.usable).toBe(false);
  });

  it('auto tries iommufd, then type1, and reports the kernel errors when opening fails', () => {
    const r = createNativeBackend('auto', { paths, addon: (loadNative() as unknown as { addon: never }).addon });
    // the fake /dev/iommu is a regular file: opening works, but the kernel calls fail
    expect(r.backend).toBeUndefined();
    expect(r.reason).toMatch(/^iommufd: IOMMU_IOAS_ALLOC: ENOTTY; vfio-type1: VFIO_GET_API_VERSION: ENOTTY/);
    expect(r.steps.find((s) => s.check === 'iommufd backend')).toMatchObject({ ok: false });
  });
});
