/**
 * `dma-iommu vm run` end to end: exit codes, stdout/stderr separation from each other and from the guest
 * console, the device nodes each kernel provides, the writable cwd over a read-only host root.
 * Each test boots a guest (~5-15 s under TCG).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runInVm, liveQemuCount, vmInfo } from '../../../lib/vm/index.js';
import { lastConsoleLines, runCli } from './harness.js';

/** `fn` with a fresh directory under the host's tmpdir, removed afterwards (also when `fn` fails). */
async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dma-iommu-vm-test-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const nodeCheck = (paths: string[]) =>
  `const fs=require('fs');const p=${JSON.stringify(paths)};` +
  `const r=Object.fromEntries(p.map(x=>[x,fs.existsSync(x)&&fs.statSync(x).isCharacterDevice()]));` +
  `console.log(JSON.stringify(r));process.exit(Object.values(r).every(Boolean)?0:3)`;

describe('vm run', () => {
  it("exits with COMMAND's non-zero code; stdout and stderr stay separate and free of console text", async () => {
    const r = await runCli(['vm', 'run', '--kernel', 'type1', '--', 'sh', '-c', 'echo to-stdout; echo to-stderr >&2; exit 7']);
    expect(r.status, r.stderr).toBe(7);
    expect(r.stdout).toBe('to-stdout\n');
    expect(r.stderr).toBe('to-stderr\n');
  });

  it('type1 kernel: node sees /dev/vfio/vfio and one group node per edu device, exit 0', async () => {
    const groups = [1, 2].map((g) => `/dev/vfio/${g}`);
    const r = await runCli(['vm', 'run', '--kernel', 'type1', '--', 'node', '-e', nodeCheck(['/dev/vfio/vfio', ...groups])]);
    expect(r.stderr).toBe('');
    expect(r.status, r.stdout).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(Object.fromEntries(['/dev/vfio/vfio', ...groups].map((p) => [p, true])));
  });

  it('iommufd kernel: node sees /dev/iommu and /dev/vfio/devices/vfio0 and vfio1, exit 0', async () => {
    const paths = ['/dev/iommu', '/dev/vfio/devices/vfio0', '/dev/vfio/devices/vfio1', '/dev/vfio/vfio'];
    const r = await runCli(['vm', 'run', '--kernel', 'iommufd', '--', 'node', '-e', nodeCheck(paths)]);
    expect(r.stderr).toBe('');
    expect(r.status, r.stdout).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(Object.fromEntries(paths.map((p) => [p, true])));
  });

  it('runs in the caller\'s cwd (writable, even under /tmp) over a read-only host root, with --env and N devices', async () => {
    await inTempDir(async (dir) => {
      const r = await runInVm({
        kernel: 'type1',
        cwd: dir,
        devices: 3,
        env: { DMA_TEST_VALUE: "it's here" },
        command: ['sh', '-c', 'pwd; echo "$DMA_TEST_VALUE" > written.txt; touch /usr/.dma-iommu-ro-probe 2>/dev/null && echo root-writable || echo root-readonly; ls /dev/vfio | grep -c "^[0-9]"'],
      });
      expect(r.error).toBeUndefined();
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toBe(`${dir}\nroot-readonly\n3\n`);
      expect(readFileSync(join(dir, 'written.txt'), 'utf8')).toBe("it's here\n");
      expect(r.consoleTail).toMatch(/reboot: Power down/);
    });
    expect(liveQemuCount()).toBe(0);
  });

  it("npm in the guest: its state on the guest's tmpfs, none under a writable HOME, nothing fetched", async () => {
    await inTempDir(async (dir) => {
      // HOME is the writable cwd here, so a leak would show as $HOME/.npm on the host.
      const r = await runInVm({
        kernel: 'type1',
        cwd: dir,
        env: { HOME: dir },
        command: ['sh', '-c', 'npx dma-iommu-no-such-package; echo "npx exit $?"; stat -f -c %T "$(npm config get cache)"'],
      });
      expect(r.error, lastConsoleLines(r)).toBeUndefined();
      expect(r.exitCode).toBe(0);
      expect(r.stderr).toMatch(/npm error code ENOTCACHED/);
      expect(r.stdout).toBe('npx exit 1\ntmpfs\n');
      expect(existsSync(join(dir, '.npm'))).toBe(false);
    });
  });

  it('vm info reports both kernels cached', async () => {
    const info = await vmInfo();
    expect(info.type1.cached).toMatch(/^debian-6\.12\./);
    expect(info.iommufd.cached).toBe(true);
    const r = await runCli(['vm', 'info']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/kernel type1.*\n\s+cached, would use:/);
    expect(r.stdout).toMatch(/kernel iommufd.*\n\s+cached, would use: iommufd-/);
  });
});
