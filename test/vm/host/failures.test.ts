/**
 * How `dma-iommu vm run` ends when the guest does not: panic, hang (timeout), unbootable kernel, a guest
 * that powers off without reporting, and a COMMAND that does not exist. Each ends with a clear error, a
 * distinct exit code and the console tail, within its timeout, leaving no QEMU behind.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runInVm, liveQemuCount, VM_EXIT } from '../../../lib/vm/index.js';
import { lastConsoleLines, runCli } from './harness.js';

afterEach(() => {
  expect(liveQemuCount()).toBe(0);
});

describe('vm run failure modes', () => {
  it('a guest kernel panic ends the run with 125, a clear message and the console tail (CLI)', async () => {
    const r = await runCli(['vm', 'run', '--kernel', 'type1', '--timeout', '120', '--', 'sh', '-c', 'echo c > /proc/sysrq-trigger; sleep 100']);
    expect(r.status).toBe(VM_EXIT.harness);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^dma-iommu vm: guest kernel panicked: Kernel panic - not syncing: sysrq triggered crash/m);
    expect(r.stderr).toMatch(/last lines of the guest console:\n(\s+\|.*\n)+/);
    expect(r.ms).toBeLessThan(90_000);
  });

  it('a hanging COMMAND is killed at the timeout with 124', async () => {
    const started = Date.now();
    const r = await runInVm({ kernel: 'type1', timeoutSeconds: 25, command: ['sleep', '1000'] });
    expect(r.outcome, lastConsoleLines(r)).toBe('timeout');
    expect(r.exitCode).toBe(VM_EXIT.timeout);
    expect(r.error).toMatch(/^timed out after 25s \(last guest stage: run\)/);
    expect(Date.now() - started).toBeLessThan(40_000);
  });

  it('an unbootable kernel image ends with 125 and QEMU\'s reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dma-iommu-vm-test-'));
    try {
      const bogus = join(dir, 'bzImage');
      writeFileSync(bogus, Buffer.alloc(64 * 1024, 0x5a));
      const r = await runInVm({ kernel: 'iommufd', kernelImage: bogus, timeoutSeconds: 60, command: ['true'] });
      expect(r.outcome, lastConsoleLines(r)).toBe('qemu-error');
      expect(r.exitCode).toBe(VM_EXIT.harness);
      expect(r.error).toMatch(/^QEMU exited with code 1 before the guest booted:\n.*/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a kernel that boots but cannot start init ends with 125 (panic), not a hang', async () => {
    const r = await runInVm({ kernel: 'iommufd', kernelArgs: 'rdinit=/does-not-exist', timeoutSeconds: 120, command: ['true'] });
    expect(r.outcome, lastConsoleLines(r)).toBe('panic');
    expect(r.exitCode).toBe(VM_EXIT.harness);
    expect(r.error).toMatch(/^guest kernel panicked: Kernel panic - not syncing: .+ \(the guest init never started\)$/);
    expect(r.consoleTail).toMatch(/Kernel panic/);
  });

  it('a guest that powers off without reporting an exit code ends with 125 and says so', async () => {
    const r = await runInVm({ kernel: 'iommufd', timeoutSeconds: 120, command: ['sh', '-c', 'echo o > /proc/sysrq-trigger; sleep 100'] });
    expect(r.outcome, lastConsoleLines(r)).toBe('no-exit-code');
    expect(r.exitCode).toBe(VM_EXIT.harness);
    expect(r.error).toBe('guest ended without reporting an exit code (last guest stage: run)');
  });

  it('a COMMAND that does not exist exits 127 like a shell', async () => {
    const r = await runInVm({ kernel: 'iommufd', command: ['/nonexistent/command'] });
    expect(r.outcome, lastConsoleLines(r)).toBe('exited');
    expect(r.exitCode).toBe(127);
    expect(r.stderr).toMatch(/nonexistent/);
  });
});
