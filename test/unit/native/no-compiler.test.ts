/**
 * An install on a machine without a working compiler: the install script prints one line, exits 0,
 * records why, and the package runs on the simulator saying so. Runs in a scratch copy of the
 * package so the real build is untouched.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'dma-iommu-nocc-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('install without a compiler', () => {
  it('falls back to the simulator with a one-line reason', () => {
    for (const p of ['package.json', 'binding.gyp', 'native', 'scripts', 'dist', 'bin']) cpSync(join(root, p), join(scratch, p), { recursive: true });
    symlinkSync(join(root, 'node_modules'), join(scratch, 'node_modules'));
    const env = { ...process.env, CC: '/bin/false', CXX: '/bin/false', DMA_IOMMU_BACKEND: '' };
    const install = spawnSync(process.execPath, ['scripts/build-addon.mjs'], { cwd: scratch, env, encoding: 'utf8', timeout: 120_000 });
    expect(install.status).toBe(0);
    const lines = install.stderr.trim().split('\n').filter((l) => l.startsWith('dma-iommu:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/native addon not built .*the simulator will be used/);
    const status = JSON.parse(readFileSync(join(scratch, 'build', 'addon-status.json'), 'utf8'));
    expect(status.built).toBe(false);
    const info = spawnSync(process.execPath, ['bin/dma-iommu.js', 'info', '--json'], { cwd: scratch, env, encoding: 'utf8', timeout: 60_000 });
    expect(info.status, info.stderr).toBe(0);
    const report = JSON.parse(info.stdout);
    expect(report.backend).toBe('simulated');
    expect(report.why).toMatch(/addon/i);
  }, 180_000);
});
