/**
 * Shared IOMMU groups on the real kernel: runs in a guest booted with `--topology bridge` (two edu
 * devices and a virtio-rng behind a conventional PCI bridge: one IOMMU group; `dma-iommu vm test`
 * runs this folder in such a guest on both kernels). First what the kernel itself answers (raw
 * ioctls through the addon), then the shared cases (test/support/group-cases.ts) through the
 * library on each native backend, the same cases the simulator's bridge topology runs in npm test.
 */
import { existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { NativeAddon } from '../../../../lib/backend/native/addon-types.js';
import { loadNative } from '../../../../lib/backend/native/loader.js';
import { openPlatform } from '../../../../lib/index.js';
import { groupCases } from '../../../support/group-cases.js';
import { inGuest } from '../guest-env.js';

const topology = process.env.DMA_IOMMU_VM_TOPOLOGY ?? '';
const dev = (bdf: string, f: string) => `/sys/bus/pci/devices/${bdf}/${f}`;
const read = (bdf: string, f: string) => readFileSync(dev(bdf, f), 'utf8').trim();
const driverOf = (bdf: string) => (existsSync(dev(bdf, 'driver')) ? basename(readlinkSync(dev(bdf, 'driver'))) : null);

/** The group holding two edu devices, found from sysfs (bus numbers depend on the other slots). */
function findRig(): { group: number; edus: [string, string]; virtio: string } | null {
  if (!existsSync('/sys/kernel/iommu_groups')) return null;
  for (const g of readdirSync('/sys/kernel/iommu_groups')) {
    const members = readdirSync(`/sys/kernel/iommu_groups/${g}/devices`).sort();
    const edus = members.filter((b) => read(b, 'vendor') === '0x1234' && read(b, 'device') === '0x11e8');
    const virtio = members.find((b) => read(b, 'vendor') === '0x1af4');
    if (edus.length === 2 && virtio) return { group: Number(g), edus: [edus[0]!, edus[1]!], virtio };
  }
  return null;
}

const rig = inGuest && topology === 'bridge' ? findRig() : null;

/** Bind the virtio function back to its host driver (the kernel refuses while user space owns the group). */
function block(): void {
  if (driverOf(rig!.virtio) === null) writeFileSync('/sys/bus/pci/drivers_probe', rig!.virtio);
  expect(driverOf(rig!.virtio)).toBe('virtio-pci');
}
function release(): void {
  if (driverOf(rig!.virtio) !== null) writeFileSync(dev(rig!.virtio, 'driver/unbind'), rig!.virtio);
  expect(driverOf(rig!.virtio)).toBeNull();
}

const backends: Array<'iommufd' | 'vfio-type1'> = [];
if (existsSync('/dev/iommu')) backends.push('iommufd');
if (existsSync('/dev/vfio/vfio')) backends.push('vfio-type1');

describe.runIf(inGuest && topology === 'bridge')('shared IOMMU group behind a PCI bridge (real kernel)', () => {
  afterAll(() => {
    if (rig) block(); // leave the guest as it booted
  });

  it('the guest has one group with the bridge, both edu devices on vfio-pci and the virtio function on virtio-pci', () => {
    expect(rig).not.toBeNull();
    const members = readdirSync(`/sys/kernel/iommu_groups/${rig!.group}/devices`).sort();
    expect(members).toHaveLength(4);
    const bridge = members.find((b) => read(b, 'class') === '0x060400');
    expect(bridge, members.join(' ')).toBeDefined();
    expect(driverOf(bridge!)).toBeNull();
    for (const e of rig!.edus) expect(driverOf(e)).toBe('vfio-pci');
    expect(driverOf(rig!.virtio)).toBe('virtio-pci');
  });

  describe('what the kernel answers (raw ioctls)', () => {
    const a = inGuest && rig ? (loadNative() as { addon: NativeAddon }).addon : (null as unknown as NativeAddon);

    it.runIf(existsSync('/dev/iommu'))('iommufd: VFIO_DEVICE_BIND_IOMMUFD is EPERM while a member has a host driver; two IOAS for one group: the second attach is EINVAL', () => {
      block();
      const cdev = (bdf: string) => `/dev/vfio/devices/${readdirSync(dev(bdf, 'vfio-dev'))[0]}`;
      const ictx = a.open('/dev/iommu', a.constants.O_RDWR, 'iommufd');
      const [fa, fb] = rig!.edus.map((b) => a.open(cdev(b), a.constants.O_RDWR, 'device'));
      try {
        expect(() => a.deviceBindIommufd(fa!, ictx)).toThrow(expect.objectContaining({ errno: -1, syscall: 'VFIO_DEVICE_BIND_IOMMUFD' }));
        release();
        a.deviceBindIommufd(fa!, ictx);
        a.deviceBindIommufd(fb!, ictx);
        const [ioas1, ioas2] = [a.ioasAlloc(ictx), a.ioasAlloc(ictx)];
        a.deviceAttachPt(fa!, ioas1);
        expect(() => a.deviceAttachPt(fb!, ioas2)).toThrow(expect.objectContaining({ errno: -22 }));
        a.deviceAttachPt(fb!, ioas1);
        // and no host driver can bind while user space owns the group
        expect(() => writeFileSync('/sys/bus/pci/drivers_probe', rig!.virtio)).toThrow();
        expect(driverOf(rig!.virtio)).toBeNull();
      } finally {
        fa!.close();
        fb!.close();
        ictx.close();
      }
    });

    it.runIf(existsSync('/dev/vfio/vfio'))('type1: the group is not VIABLE and VFIO_GROUP_SET_CONTAINER is EPERM while a member has a host driver; a group in a container cannot join a second one (EINVAL)', () => {
      block();
      const c = a.constants;
      const grp = a.open(`/dev/vfio/${rig!.group}`, c.O_RDWR, 'group');
      const [c1, c2] = [a.open('/dev/vfio/vfio', c.O_RDWR, 'container'), a.open('/dev/vfio/vfio', c.O_RDWR, 'container')];
      try {
        expect(a.groupGetStatus(grp) & c.VFIO_GROUP_FLAGS_VIABLE).toBe(0);
        expect(() => a.groupSetContainer(grp, c1!)).toThrow(expect.objectContaining({ errno: -1 }));
        release();
        expect(a.groupGetStatus(grp) & c.VFIO_GROUP_FLAGS_VIABLE).not.toBe(0);
        a.groupSetContainer(grp, c1!);
        expect(() => a.groupSetContainer(grp, c2!)).toThrow(expect.objectContaining({ errno: -22 }));
        a.groupUnsetContainer(grp);
      } finally {
        grp.close();
        c1!.close();
        c2!.close();
      }
    });
  });

  for (const backend of backends) {
    describe(`${backend} backend`, () => {
      groupCases(() => ({
        members: rig!.edus,
        blocker: rig!.virtio,
        blockerDriver: 'virtio-pci',
        refusalSyscall: backend === 'iommufd' ? 'VFIO_DEVICE_BIND_IOMMUFD' : 'VFIO_GROUP_SET_CONTAINER',
        blocked: () => {
          block();
          return openPlatform({ backend });
        },
        released: () => {
          release();
          return openPlatform({ backend });
        },
      }));
    });
  }
});
