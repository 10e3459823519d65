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
    expect(r.stderr).toMatch(/--backend must be one of auto, sim, simulated, native, iommufd, vfio-type1, type1/);
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

  it('info --json prints one JSON object saying why when the backend named by DMA_IOMMU_BACKEND is unknown (exit 1)', () => {
    const r = run(['info', '--json'], { DMA_IOMMU_BACKEND: 'nonsense' });
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ ok: false, requested: 'nonsense', requestedBy: 'env', error: { code: 'STATUS_INVALID_PARAMETER', argument: 'backend' } });
    expect(out.error.message).toMatch(/DMA_IOMMU_BACKEND 'nonsense' is not one of auto, sim, simulated, native, iommufd, vfio-type1, type1/);
  });

  it('info --json --backend native: one JSON object, ok true with the native report or ok false with STATUS_NOT_SUPPORTED and the probe reasons', () => {
    const r = run(['info', '--json', '--backend', 'native'], { DMA_IOMMU_BACKEND: '' });
    const out = JSON.parse(r.stdout);
    if (out.ok) {
      expect(r.code).toBe(0);
      expect(['iommufd', 'vfio-type1']).toContain(out.backend);
    } else {
      expect(r.code).toBe(1);
      expect(out).toMatchObject({ ok: false, requested: 'native', requestedBy: 'option', error: { code: 'STATUS_NOT_SUPPORTED', argument: 'backend' } });
      expect(out.error.message).toMatch(/native backend is not usable here: .*iommufd.*vfio-type1/);
    }
  });

  it('info --json on a working backend says ok: true', () => {
    const r = run(['info', '--json', '--backend', 'simulated']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, backend: 'simulated', selectedBy: 'option' });
  });

  it('--backend takes every name DMA_IOMMU_BACKEND takes (one parser): simulated, SIM, type1', () => {
    let r = run(['selftest', '--backend', 'simulated', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, backend: 'simulated' });
    r = run(['info', '--json', '--backend', 'SIM']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).backend).toBe('simulated');
    // type1 is a known name: it selects VFIO type1 (never the simulator), so here it is either
    // the real type1 backend or STATUS_NOT_SUPPORTED: never a usage error
    r = run(['info', '--json', '--backend', 'type1'], { DMA_IOMMU_BACKEND: '' });
    expect(r.code).not.toBe(2);
    const out = JSON.parse(r.stdout);
    if (out.ok) expect(out.backend).toBe('vfio-type1');
    else expect(out.error).toMatchObject({ code: 'STATUS_NOT_SUPPORTED' });
    r = run(['selftest', '--backend', 'type1', '--json'], { DMA_IOMMU_BACKEND: '' });
    expect(r.code).not.toBe(2);
    // and a name neither takes is a usage error listing the same names
    r = run(['info', '--backend', 'gpu']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--backend must be one of auto, sim, simulated, native, iommufd, vfio-type1, type1 \(got 'gpu'\)/);
  });

  it('--fault-timeout is range-checked against what a Node timer can wait (2^31-1 ms), never overflowing to 1 ms', () => {
    for (const bad of ['2147483648', '99999999999999999999', '0', '-5', '1.5', '1e3', 'soon']) {
      const r = run(['selftest', '--backend', 'sim', `--fault-timeout=${bad}`]);
      expect(r.code, bad).toBe(2);
      expect(r.stderr, bad).toMatch(/--fault-timeout takes whole milliseconds in 1\.\.2147483647/);
      expect(r.stdout, bad).toBe('');
    }
    const r = run(['selftest', '--backend', 'sim', '--fault-timeout', '2147483647', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).ok).toBe(true);
  });

  it('vm info rejects unknown options and arguments with exit 2, as every other command does', () => {
    let r = run(['vm', 'info', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/info: unknown option --bogus \(options: --json\)/);
    r = run(['vm', 'info', 'extra']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unexpected argument 'extra'/);
    r = run(['vm', 'info', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveProperty('cache');
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
