/**
 * `dma-iommu selftest --backend native --device <edu> --json` inside the guest, as a user runs it:
 * the real DMA round trip and the real blocked DMA reported through SetDeviceFaultReportingEx's
 * handler, from the kernel's own fault record.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { eduDevices, inGuest, kernel, shortBdf } from './guest-env.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));

describe.runIf(inGuest && eduDevices.length > 0)(`selftest on the native backend (${kernel} kernel)`, () => {
  const wanted = existsSync('/dev/iommu') ? 'iommufd' : 'vfio-type1';
  it(`reports ok with a real round trip and a real blocked-DMA fault (${wanted})`, () => {
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
    expect(blocked.fault).toMatchObject({ device: bdf, iova: '0x200000', write: true, source: 'kmsg' });
    // the kernel's own record, as the kernel printed it
    expect(blocked.fault.raw).toMatch(new RegExp(`DMAR: \\[DMA Write NO_PASID\\] Request device \\[${shortBdf(bdf).replace('.', '\\.')}\\] fault addr 0x200000`));
  });
});
