/**
 * `dma-iommu selftest --backend native --device <edu> --json` inside the guest, as a user runs it:
 * the real DMA round trip and the real blocked DMA, reported through SetDeviceFaultReportingEx's
 * handler from the kernel's own fault record where the IOMMU logs one. What the blocked-DMA step
 * must show is read from the backend's capabilities (faultSource, faultDetails), never from the
 * model's name: on an IOMMU that reports no fault (QEMU's amd-iommu) the DMA must still be blocked
 * with memory untouched.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openPlatform } from '../../../lib/index.js';
import { eduDevices, inGuest, kernel, shortBdf } from './guest-env.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));

/** The first line of each driver's fault record (kmsg.ts), by the IOMMU the backend detected. */
const RAW: Record<string, (bdf: string) => RegExp> = {
  vtd: (bdf) => new RegExp(`DMAR: \\[DMA Write NO_PASID\\] Request device \\[${shortBdf(bdf).replace('.', '\\.')}\\] fault addr 0x200000`),
  virtio: (bdf) => {
    const [, bus, rest] = bdf.split(':');
    const [dev, fn] = rest!.split('.');
    const ep = (Number.parseInt(bus!, 16) << 8) | (Number.parseInt(dev!, 16) << 3) | Number(fn);
    return new RegExp(`virtio_iommu virtio\\d+: page fault from EP ${ep} at 0x200000 \\[\\]`);
  },
  // Linux 6.12's SMMUv3 dump (kmsg-smmu.ts): the header and the four event words, word 0 = StreamID (the RID) << 32 | 0x10
  smmuv3: (bdf) => {
    const [, bus, rest] = bdf.split(':');
    const [dev, fn] = rest!.split('.');
    const sid = (Number.parseInt(bus!, 16) << 8) | (Number.parseInt(dev!, 16) << 3) | Number(fn);
    return new RegExp(`arm-smmu-v3 \\S+: event 0x10 received: 0x${sid.toString(16).padStart(8, '0')}00000010 0x[0-9a-f]{16} 0x0000000000200000 0x[0-9a-f]{16}$`);
  },
};

describe.runIf(inGuest && eduDevices.length > 0)(`selftest on the native backend (${kernel} kernel)`, () => {
  const wanted = existsSync('/dev/iommu') ? 'iommufd' : 'vfio-type1';
  it(`reports ok with a real round trip and a real blocked DMA, its fault as the backend's capabilities promise (${wanted})`, () => {
    const platform = openPlatform({ backend: wanted });
    const caps = platform.backend.capabilities;
    platform.close();
    const bdf = eduDevices[0];
    const r = spawnSync(process.execPath, [`${root}bin/dma-iommu.js`, 'selftest', '--backend', 'native', '--device', bdf, '--json'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 90_000,
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.ok).toBe(true);
    expect(report.backend).toBe(wanted);
    expect(report.device).toBe(bdf);
    const rt = report.steps.find((s: { name: string }) => s.name === 'dma-roundtrip');
    expect(rt).toMatchObject({ ok: true, bytes: 2048 });
    const blocked = report.steps.find((s: { name: string }) => s.name === 'dma-blocked-fault');
    expect(blocked.ok).toBe(true);
    expect(blocked.memoryUnchanged).toBe(true);
    const reporting = report.steps.find((s: { name: string }) => s.name === 'fault-reporting');
    if (caps.faultSource === 'none') {
      expect(blocked.fault).toBeNull();
      expect(reporting.detail).toMatch(/STATUS_NOT_SUPPORTED/);
      return;
    }
    expect(blocked.fault).toMatchObject({ device: bdf, iova: '0x200000', source: 'kmsg' });
    if (caps.faultDetails?.direction) expect(blocked.fault.write).toBe(true);
    // the kernel's own record, as the kernel printed it
    const raw = RAW[caps.iommu ?? ''];
    expect(raw, `a record format for IOMMU ${caps.iommu}`).toBeDefined();
    expect(blocked.fault.raw).toMatch(raw!(bdf));
  });
});
