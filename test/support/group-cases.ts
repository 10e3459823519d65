/**
 * Shared IOMMU groups, the same cases on every backend: the simulator's 'bridge' topology in
 * `npm test` (test/unit/groups.test.ts) and the real kernel's (`dma-iommu vm --topology bridge`,
 * test/vm/guest/bridge/groups-native.test.ts). A rig is one group holding two edu devices (bound to
 * vfio-pci) and a third function that is on a host driver (blocked) or released (unbound).
 *
 *  - blocked: CreateDevice of either edu device is STATUS_ACCESS_DENIED (errno EPERM, the kernel's
 *    DMA-owner claim) with a message naming the member, its driver and the commands that fix it;
 *    the PDOs say so before any call (usable false, the same text);
 *  - released: both edu devices in one domain, and DMA from both moves the bytes;
 *  - moving one member to another domain while its mate is attached: STATUS_ACCESS_DENIED (EINVAL,
 *    the kernel's answer to a group split); once the mate left, the group moves as one.
 */
import { expect, it } from 'vitest';
import type { IommuPlatform } from '../../lib/core/platform.js';
import { EduDevice } from '../../lib/devices/edu.js';
import { IommuError } from '../../lib/errors.js';
import { DomainTypeTranslate, IOMMU_ACCESS_READ, IOMMU_ACCESS_WRITE } from '../../lib/wdk/constants.js';
import { catchIommuError } from './expect-error.js';

export interface GroupRig {
  /** The two edu devices of the group. */
  readonly members: readonly [string, string];
  /** The function that is on a host driver while blocked. */
  readonly blocker: string;
  /** Its host driver. */
  readonly blockerDriver: string;
  /** The syscall the backend names for the refusal. */
  readonly refusalSyscall: string;
  /** The host driver bound to the blocker, then a fresh platform. */
  blocked(): IommuPlatform;
  /** The blocker unbound, then a fresh platform. */
  released(): IommuPlatform;
}

async function roundTrip(edu: EduDevice, buf: ReturnType<IommuPlatform['allocateDmaMemory']>, iova: bigint, seed: number): Promise<void> {
  const src = buf.bytes.subarray(0, 1024);
  const dst = buf.bytes.subarray(0x2000, 0x2000 + 1024);
  for (let i = 0; i < src.length; i++) src[i] = (i * 7 + seed) & 0xff;
  dst.fill(0);
  await edu.dmaToDevice(iova, 1024);
  await edu.dmaFromDevice(iova + 0x2000n, 1024);
  expect(Buffer.from(dst).equals(Buffer.from(src))).toBe(true);
}

export function groupCases(rig: () => GroupRig): void {
  it('a device whose group has a member on a host driver: STATUS_ACCESS_DENIED naming the member, its driver and the fix', () => {
    const r = rig();
    const p = r.blocked();
    try {
      for (const bdf of r.members) {
        const pdo = p.findDevice(bdf)!;
        expect(pdo, bdf).toBeDefined();
        expect(pdo.usable).toBe(false);
        expect(pdo.whyNotUsable).toContain(`${r.blocker} is bound to the host driver ${r.blockerDriver}`);
        const e = catchIommuError(() => p.CreateDevice(pdo));
        expect(e.code).toBe('STATUS_ACCESS_DENIED');
        expect(e.errno).toBe(-1); // EPERM
        expect(e.syscall).toBe(r.refusalSyscall);
        expect(e.message).toContain(`IOMMU group ${pdo.iommuGroup} is not viable`);
        expect(e.message).toContain(`${r.blocker} is bound to the host driver ${r.blockerDriver}`);
        expect(e.message).toContain(`echo ${r.blocker} > /sys/bus/pci/devices/${r.blocker}/driver/unbind`);
        expect(e.message).toContain(`echo vfio-pci > /sys/bus/pci/devices/${r.blocker}/driver_override`);
      }
      // the blocker itself is not a VFIO device: not found, as any device off vfio-pci
      const own = catchIommuError(() => p.CreateDevice(p.findDevice(r.blocker)!));
      expect(own.code).toBe('STATUS_NOT_FOUND');
      // nothing was left half-open: the refusal is repeatable
      expect(catchIommuError(() => p.CreateDevice(p.findDevice(r.members[0])!)).code).toBe('STATUS_ACCESS_DENIED');
    } finally {
      p.close();
    }
  });

  it('two members of one group in one domain: both attach, DMA from both moves the bytes', async () => {
    const r = rig();
    const p = r.released();
    try {
      const pdos = r.members.map((b) => p.findDevice(b)!);
      for (const pdo of pdos) expect(pdo.usable, pdo.whyNotUsable).toBe(true);
      const [a, b] = pdos.map((pdo) => p.CreateDevice(pdo));
      const dom = p.CreateDomainEx(DomainTypeTranslate);
      p.AttachDeviceEx(dom, a!);
      p.AttachDeviceEx(dom, b!);
      const buf = p.allocateDmaMemory(64 * 1024);
      const rw = IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE;
      const iova = p.MapLogicalRangeEx(dom, rw, buf.asMdl(), 0x100000n);
      for (const [i, dev] of [a!, b!].entries()) {
        const edu = new EduDevice(p.deviceRegions(dev), { timeoutMs: 5000 });
        edu.enableBusMaster();
        await roundTrip(edu, buf, iova, 0x31 * (i + 1));
      }
      p.UnmapLogicalRange(dom, iova, 16n);
      p.DetachDeviceEx(a!);
      p.DetachDeviceEx(b!);
      p.DeleteDomain(dom);
      p.DeleteDevice(a!);
      p.DeleteDevice(b!);
      buf.free();
    } finally {
      p.close();
    }
  });

  it('one member to another domain while its mate is attached: STATUS_ACCESS_DENIED (EINVAL); the group moves as one once the mate left', () => {
    const r = rig();
    const p = r.released();
    try {
      const [a, b] = r.members.map((bdf) => p.CreateDevice(p.findDevice(bdf)!));
      const d1 = p.CreateDomainEx(DomainTypeTranslate);
      const d2 = p.CreateDomainEx(DomainTypeTranslate);
      p.AttachDeviceEx(d1, a!);
      const e = catchIommuError(() => p.AttachDeviceEx(d2, b!));
      expect(e.code).toBe('STATUS_ACCESS_DENIED');
      expect(e.errno).toBe(-22); // EINVAL
      expect(e.message).toContain(r.members[0]);
      // the refusal changed nothing: b is detached and may join its mate's domain
      expect(catchIommuError(() => p.DetachDeviceEx(b!)).code).toBe('STATUS_INVALID_PARAMETER_1');
      p.AttachDeviceEx(d1, b!);
      p.DetachDeviceEx(a!);
      // b still holds the group in d1
      expect(catchIommuError(() => p.AttachDeviceEx(d2, a!)).code).toBe('STATUS_ACCESS_DENIED');
      p.DetachDeviceEx(b!);
      // the group is free: it moves to d2 as one
      p.AttachDeviceEx(d2, a!);
      p.AttachDeviceEx(d2, b!);
      p.DetachDeviceEx(a!);
      p.DetachDeviceEx(b!);
      p.DeleteDomain(d1);
      p.DeleteDomain(d2);
      p.DeleteDevice(a!);
      p.DeleteDevice(b!);
    } finally {
      p.close();
    }
  });
}
