/**
 * Kernel facts about device nodes and IOMMU groups that the native backends rely on.
 * Runs inside a `dma-iommu vm` guest (npm run test:vm); skipped anywhere else.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eduDevices, inGuest, iommuGroup, kernel, Kmsg } from './guest-env.js';

const isChar = (p: string) => existsSync(p) && statSync(p).isCharacterDevice();

describe.skipIf(!inGuest)(`device nodes and IOMMU groups (${kernel} kernel)`, () => {
  it('runs with the VT-d IOMMU and interrupt remapping on', () => {
    expect(readFileSync('/proc/cmdline', 'utf8')).toContain('intel_iommu=on');
    expect(existsSync('/sys/class/iommu/dmar0')).toBe(true);
    const log = new Kmsg();
    const messages = log.drain().map((r) => r.message);
    log.close();
    expect(messages.some((m) => /DMAR-IR: Enabled IRQ remapping/.test(m))).toBe(true);
  });

  it('has the edu devices bound to vfio-pci, each alone in its own IOMMU group', () => {
    expect(eduDevices.length).toBeGreaterThanOrEqual(2);
    const groups = new Set<number>();
    for (const bdf of eduDevices) {
      const dev = `/sys/bus/pci/devices/${bdf}`;
      expect(readFileSync(`${dev}/vendor`, 'utf8').trim()).toBe('0x1234');
      expect(readFileSync(`${dev}/device`, 'utf8').trim()).toBe('0x11e8');
      expect(basename(readlinkSync(`${dev}/driver`))).toBe('vfio-pci');
      const g = iommuGroup(bdf);
      expect(readdirSync(`/sys/kernel/iommu_groups/${g}/devices`)).toEqual([bdf]);
      groups.add(g);
    }
    expect(groups.size).toBe(eduDevices.length);
  });

  it('has the legacy container node and one group node per edu device', () => {
    expect(isChar('/dev/vfio/vfio')).toBe(true);
    for (const bdf of eduDevices) expect(isChar(`/dev/vfio/${iommuGroup(bdf)}`)).toBe(true);
    const groupNodes = readdirSync('/dev/vfio').filter((n) => /^\d+$/.test(n));
    expect(groupNodes.sort()).toEqual(eduDevices.map((b) => String(iommuGroup(b))).sort());
  });

  it.runIf(kernel === 'iommufd')('iommufd kernel: /dev/iommu and one VFIO device cdev per edu device', () => {
    expect(isChar('/dev/iommu')).toBe(true);
    const cdevs = eduDevices.map((bdf) => {
      const names = readdirSync(`/sys/bus/pci/devices/${bdf}/vfio-dev`);
      expect(names).toHaveLength(1);
      return names[0]!;
    });
    expect(cdevs.sort()).toEqual(eduDevices.map((_, i) => `vfio${i}`));
    for (const c of cdevs) expect(isChar(`/dev/vfio/devices/${c}`)).toBe(true);
    expect(readdirSync('/dev/vfio/devices').sort()).toEqual(cdevs);
  });

  it.runIf(kernel === 'type1')('type1 kernel: no iommufd, no VFIO device cdev node', () => {
    expect(existsSync('/dev/iommu')).toBe(false);
    expect(existsSync('/dev/vfio/devices')).toBe(false);
    // The vfio-dev class device exists in sysfs anyway (VFIO core registers it since 6.2); only the
    // /dev/vfio/devices/vfioN character device needs CONFIG_VFIO_DEVICE_CDEV.
    for (const bdf of eduDevices) {
      const [name] = readdirSync(`/sys/bus/pci/devices/${bdf}/vfio-dev`);
      expect(name).toMatch(/^vfio\d+$/);
      expect(existsSync(`/sys/bus/pci/devices/${bdf}/vfio-dev/${name}/dev`)).toBe(false);
    }
  });
});
