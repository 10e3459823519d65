/**
 * The command line and the package entry point, as a user runs them (needs `npm run build`,
 * which `npm test` does first).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = `${root}bin/dma-iommu.js`;

function run(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('dma-iommu CLI', () => {
  it('selftest --backend sim --json: ok, the round trip moved the bytes, the blocked DMA faulted', () => {
    const r = run(['selftest', '--backend', 'sim', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.ok).toBe(true);
    expect(report.backend).toBe('simulated');
    const names = report.steps.map((s: { name: string }) => s.name);
    expect(names).toContain('dma-roundtrip');
    expect(names).toContain('dma-blocked-fault');
    const rt = report.steps.find((s: { name: string }) => s.name === 'dma-roundtrip');
    expect(rt.ok).toBe(true);
    expect(rt.bytes).toBe(2048);
    const blocked = report.steps.find((s: { name: string }) => s.name === 'dma-blocked-fault');
    expect(blocked.ok).toBe(true);
    expect(blocked.memoryUnchanged).toBe(true);
    expect(blocked.fault.device).toBe('0000:00:03.0');
    expect(blocked.fault.iova).toBe('0x200000');
    expect(blocked.fault.write).toBe(true);
    expect(report.steps.every((s: { ok: boolean }) => s.ok)).toBe(true);
  });

  it('selftest prints a readable table and honours --device', () => {
    const r = run(['selftest', '--backend', 'sim', '--device', '0000:00:04.0']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/device 0000:00:04\.0/);
    expect(r.stdout).toMatch(/dma-blocked-fault\s+ok/);
    expect(r.stdout).toMatch(/PASS: 19\/19/);
  });

  it('selftest fails with a non-zero exit when the device does not exist', () => {
    const r = run(['selftest', '--backend', 'sim', '--device', '0000:00:1f.0', '--json']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.ok).toBe(false);
    expect(report.steps[0]).toMatchObject({ name: 'find-device', ok: false });
  });

  it('info --json: backend, why, devices with groups, domain types and IOVA ranges', () => {
    const r = run(['info', '--json'], { DMA_IOMMU_BACKEND: 'sim' });
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.backend).toBe('simulated');
    expect(info.selectedBy).toBe('env');
    expect(info.why).toMatch(/DMA_IOMMU_BACKEND/);
    const edu = info.devices.find((d: { bdf: string }) => d.bdf === '0000:00:03.0');
    expect(edu.iommuGroup).toBe(3);
    expect(edu.availableDomainTypes).toEqual(['Translate', 'PassThrough']);
    expect(edu.iovaRanges).toEqual([
      { start: '0x0', last: '0xfedfffff' },
      { start: '0xfef00000', last: '0x7fffffffff' },
    ]);
    expect(info.groups.find((g: { group: number }) => g.group === 5).devices).toEqual(['0000:00:05.0', '0000:00:05.1']);
  });

  it('info without options explains why it fell back to the simulator on a machine without an IOMMU', () => {
    const r = run(['info'], { DMA_IOMMU_BACKEND: '' });
    expect(r.code).toBe(0);
    if (r.stdout.startsWith('backend: simulated')) expect(r.stdout).toMatch(/why: +no usable IOMMU/);
  });

  it('bad input gives a clear error naming the argument, exit code 2', () => {
    let r = run(['selftest', '--backend', 'gpu']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--backend must be one of auto, sim, native/);
    r = run(['selftest', '--device', 'nonsense']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--device 'nonsense' is not a PCI address/);
    r = run(['info', '--colour']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--colour'/);
    r = run(['frobnicate']);
    expect(r.code).toBe(2);
    r = run(['info'], { DMA_IOMMU_BACKEND: 'quantum' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/DMA_IOMMU_BACKEND 'quantum' is not one of/);
  });
});

describe('the package', () => {
  it("import('dma-iommu') works from the checkout and exposes the WDK surface", () => {
    const code = `import('dma-iommu').then(m => { const i = m.IoGetIommuInterfaceEx(2, 0n, { backend: 'sim' }); console.log(JSON.stringify({ v: i.Version, size: i.Size, n: Object.keys(i.V2).length, t: m.DomainTypeTranslate, r: m.IOMMU_ACCESS_READ, e: typeof m.IommuError })); i.Platform.close(); })`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ v: 2, size: 0xe8, n: 22, t: 0, r: 1, e: 'function' });
  });
});
