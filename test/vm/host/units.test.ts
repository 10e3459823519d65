/**
 * The harness's pure parts (no guest boot): cpio writer, module order, CLI parsing, lock, install advice.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeCpio } from '../../../lib/vm/cpio.js';
import { loadOrder, moduleDepends, moduleName } from '../../../lib/vm/kmod.js';
import { parseRunArgs } from '../../../lib/vm/cli.js';
import { acquireLock } from '../../../lib/vm/lock.js';
import { ensureRequirements } from '../../../lib/vm/deps.js';
import { parseFragment } from '../../../lib/vm/kernel-build.js';
import { kernelCommandLine, qemuArgs } from '../../../lib/vm/qemu-args.js';
import { GUEST_NPM_ENV, guestEnvironment } from '../../../lib/vm/run.js';
import { silentLogger, VmError } from '../../../lib/vm/index.js';
import { formatFailures, readVitestFailures } from '../../../lib/vm/vitest-report.js';

describe('vm harness internals', () => {
  it('writes newc cpio records with 4-byte alignment and a trailer', () => {
    const cpio = writeCpio([
      { type: 'dir', path: 'bin' },
      { type: 'file', path: 'init', data: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
      { type: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    ]);
    expect(cpio.length % 512).toBe(0);
    const text = cpio.toString('latin1');
    expect(text.startsWith('070701')).toBe(true);
    expect(text).toContain('init\0');
    expect(text).toContain('TRAILER!!!\0');
    const at = text.indexOf('dev/console') - 110; // header is 110 bytes
    expect(text.slice(at, at + 6)).toBe('070701');
    expect(Number.parseInt(text.slice(at + 14, at + 22), 16)).toBe(0o020600); // mode
    expect(Number.parseInt(text.slice(at + 78, at + 86), 16)).toBe(5); // rdevmajor
  });

  it('orders modules dependencies-first from modinfo depends=', () => {
    const ko = (deps: string) => Buffer.from(`\0license=GPL\0depends=${deps}\0vermagic=6.12\0`);
    const table: Record<string, Buffer> = {
      vfio_pci: ko('vfio-pci-core,vfio'),
      vfio_pci_core: ko('vfio,irqbypass'),
      vfio: ko(''),
      irqbypass: ko(''),
    };
    expect(moduleName('/x/vfio-pci.ko.xz')).toBe('vfio_pci');
    expect(moduleDepends(table.vfio_pci!)).toEqual(['vfio_pci_core', 'vfio']);
    const order = loadOrder(['vfio-pci'], (n) => (table[n] ? moduleDepends(table[n]!) : undefined));
    expect(order).toEqual(['vfio', 'irqbypass', 'vfio_pci_core', 'vfio_pci']);
    expect(() => loadOrder(['nope'], () => undefined)).toThrow(/kernel module nope not found/);
  });

  it('parses vm run options and keeps COMMAND verbatim after --', () => {
    const a = parseRunArgs(['--kernel', 'iommufd', '--devices=3', '--env', 'A=1', '--env', 'HOME', '--timeout', '30', '--', 'node', '-e', '--x']);
    expect(a).toMatchObject({ kernel: 'iommufd', devices: 3, timeoutSeconds: 30, env: { A: '1' }, passEnv: ['HOME'], command: ['node', '-e', '--x'] });
    expect(() => parseRunArgs(['--kernel', 'nope', '--', 'true'])).toThrow(VmError);
    expect(() => parseRunArgs(['--devices', '0', '--', 'true'])).toThrow(/--devices/);
    expect(() => parseRunArgs(['--verbose'])).toThrow(/no COMMAND/);
  });

  it('builds the QEMU command line: VT-d with intremap before the edu devices, one slot each', () => {
    const m = {
      kernel: { flavor: 'iommufd' as const, id: 'k', image: '/k', modules: [], description: '' },
      initrd: '/i', accel: 'tcg' as const, memoryMiB: 1024, cpus: 1, devices: 2,
      cwd: '/a,b', runShare: '/r', socketDir: '/s',
    };
    const args = qemuArgs(m).join(' ');
    expect(args).toMatch(/-device intel-iommu,intremap=on,caching-mode=on -device edu,addr=0x3 -device edu,addr=0x4 /);
    expect(args).toContain('-accel tcg,thread=single -cpu max');
    expect(args).toContain('path=/a,,b,'); // commas escaped for QEMU
    expect(args).toContain('-no-reboot');
    expect(kernelCommandLine(m)).toMatch(/intel_iommu=on panic=-1/);
  });

  it("gives COMMAND npm's writable state on the guest tmpfs, offline, without scripts; passed-through and --env values win", () => {
    const saved = { cache: process.env.npm_config_cache, home: process.env.HOME };
    process.env.npm_config_cache = '/host/.npm'; // a host npm_config_* is not passed through by default
    process.env.HOME = '/home/someone';
    try {
      const env = guestEnvironment({ command: ['true'] }, { DMA_IOMMU_VM: '1' });
      expect(env).toMatchObject({ ...GUEST_NPM_ENV, HOME: '/home/someone', DMA_IOMMU_VM: '1' });
      expect(env.npm_config_cache).toBe('/tmp/.npm');
      expect(env.npm_config_cache.startsWith('/tmp/')).toBe(true); // the guest's tmpfs, never the host
      expect(guestEnvironment({ command: ['true'], passEnv: ['npm_config_cache'] }, {}).npm_config_cache).toBe('/host/.npm');
      const overridden = guestEnvironment({ command: ['true'], env: { npm_config_ignore_scripts: 'false' } }, {});
      expect(overridden).toMatchObject({ npm_config_ignore_scripts: 'false', npm_config_offline: 'true' });
    } finally {
      for (const [k, v] of [['npm_config_cache', saved.cache], ['HOME', saved.home]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('checks every =y line of the kernel fragment', () => {
    expect(parseFragment('CONFIG_A=y\n# CONFIG_B is not set\n#comment\nCONFIG_C=m\n')).toEqual({ on: ['CONFIG_A'], off: ['CONFIG_B'] });
  });

  it('serializes builders with a lock file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dma-iommu-lock-'));
    try {
      const lock = join(dir, 'x.lock');
      const release1 = await acquireLock(lock, 'x', silentLogger);
      let second = false;
      const p = acquireLock(lock, 'x', silentLogger).then((r) => ((second = true), r));
      await new Promise((r) => setTimeout(r, 1500));
      expect(second).toBe(false);
      release1();
      const release2 = await p;
      expect(second).toBe(true);
      release2();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('condenses a vitest JSON report to the failed tests and their first message lines', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dma-iommu-report-'));
    try {
      const path = join(dir, 'r.json');
      expect(readVitestFailures(path, '/r')).toBeUndefined(); // not written
      writeFileSync(path, '{"testResults": [');
      expect(readVitestFailures(path, '/r')).toBeUndefined(); // truncated
      writeFileSync(
        path,
        JSON.stringify({
          testResults: [
            { name: '/r/test/a.test.ts', status: 'failed', assertionResults: [
              { fullName: 'suite ok', status: 'passed', failureMessages: [] },
              { fullName: 'suite breaks', status: 'failed', failureMessages: ['\u001b[31mAssertionError: expected 1 to be 2\u001b[39m\n\n    at x.ts:1\n    at y.ts:2\n l3\n l4\n l5\n l6'] },
            ] },
            { name: '/r/test/b.test.ts', status: 'failed', message: 'Cannot find module x', assertionResults: [] },
            { name: '/r/test/c.test.ts', status: 'passed', assertionResults: [{ fullName: 'fine', status: 'passed' }] },
          ],
        }),
      );
      const failures = readVitestFailures(path, '/r', 3)!;
      expect(failures).toEqual([
        { name: 'test/a.test.ts > suite breaks', message: 'AssertionError: expected 1 to be 2\n    at x.ts:1\n    at y.ts:2' },
        { name: 'test/b.test.ts', message: 'Cannot find module x' },
      ]);
      expect(formatFailures(failures)).toContain('✗ test/a.test.ts > suite breaks\n            AssertionError: expected 1 to be 2');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says exactly what to install when it may not install itself', async () => {
    const req = { check: () => false, pkg: 'qemu-system-x86', what: 'qemu-system-x86_64' };
    await expect(ensureRequirements([req], { log: silentLogger, install: false })).rejects.toThrow(
      /missing qemu-system-x86_64\.\nInstall with:\n {2}sudo apt-get update && sudo apt-get install -y --no-install-recommends qemu-system-x86\n/,
    );
  });
});
