/**
 * Device ownership across processes on a named simulated machine (device-lock.ts): the kernel's
 * rule, a device open in one process is STATUS_DEVICE_BUSY in every other, through real child
 * processes of the built package (`npm run build`, as `npm test` does first).
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { IoGetIommuInterfaceEx, IommuError, openPlatform } from '../../../lib/index.js';
import { SimulatedBackend } from '../../../lib/backend/simulated/index.js';
import { DeviceLocks, lockRoot, MACHINE_ENV, machineName } from '../../../lib/backend/simulated/device-lock.js';
import { EDU0, EDU1, expectErrno } from './helpers.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
let seq = 0;
const made: string[] = [];
/** A machine name no other test (or test run) uses; its lock directory is removed after the test. */
function uniqueMachine(): string {
  const name = `t${process.pid}-${Date.now().toString(36)}-${++seq}`;
  made.push(name);
  return name;
}

/** Opens EDU0 through the public API on `machine` (undefined: the option is left out); prints the outcome. */
function childCode(machine: string | undefined, hold: boolean): string {
  const sim = machine === undefined ? '{}' : JSON.stringify({ machine });
  return `
    const m = await import('dma-iommu');
    const platform = m.openPlatform({ backend: 'sim', simulator: ${sim} });
    const { V3 } = m.IoGetIommuInterfaceEx(3, 0n, { platform });
    let dev;
    try { dev = V3.CreateDevice(platform.findDevice('${EDU0}')); console.log('opened'); }
    catch (e) { console.log('refused ' + e.code + ' ' + e.message); }
    if (${hold} && dev) {
      process.stdin.on('data', (d) => {
        if (String(d).includes('close')) { V3.DeleteDevice(dev); console.log('closed'); }
        if (String(d).includes('exit')) { platform.close(); process.exit(0); }
      });
    } else platform.close();
  `;
}

const live: ChildProcessWithoutNullStreams[] = [];
afterEach(() => {
  for (const c of live.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const m of made.splice(0)) rmSync(join(lockRoot(), m), { recursive: true, force: true });
});

/** A child holding EDU0 open until told; resolves once it has printed its outcome. */
async function holder(machine: string | undefined, env: NodeJS.ProcessEnv = {}): Promise<{ proc: ChildProcessWithoutNullStreams; first: string; next: () => Promise<string> }> {
  const proc = spawn(process.execPath, ['--input-type=module', '-e', childCode(machine, true)], { cwd: root, env: { ...process.env, ...env } });
  live.push(proc);
  const lines: string[] = [];
  let wake: (() => void) | null = null;
  let buf = '';
  proc.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    wake?.();
  });
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const next = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (lines.length) {
          wake = null;
          resolve(lines.shift()!);
        } else if (proc.exitCode !== null) reject(new Error(`child exited ${proc.exitCode}: ${stderr}`));
      };
      wake = check;
      proc.once('exit', check);
      check();
    });
  return { proc, first: await next(), next };
}

/** A one-shot child: opens EDU0 on `machine`, closes, exits; its outcome line. */
function probe(machine: string | undefined, env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', childCode(machine, false)], { cwd: root, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim();
}

function exited(proc: ChildProcessWithoutNullStreams): Promise<void> {
  return new Promise((resolve) => (proc.exitCode !== null || proc.signalCode !== null ? resolve() : proc.once('exit', () => resolve())));
}

describe('a named simulated machine: a device open in one process is busy in the others', { timeout: 90_000 }, () => {
  it('two processes: the second gets STATUS_DEVICE_BUSY while the first holds the device, and opens it once it is closed', async () => {
    const machine = uniqueMachine();
    const a = await holder(machine);
    expect(a.first).toBe('opened');
    expect(probe(machine)).toMatch(/^refused STATUS_DEVICE_BUSY .*0000:00:03\.0 of simulated machine .* is open in process \d+/);
    a.proc.stdin.write('close\n');
    expect(await a.next()).toBe('closed');
    expect(probe(machine)).toBe('opened');
    a.proc.stdin.write('exit\n');
    await exited(a.proc);
  });

  it('an owner killed with SIGKILL leaves the device usable by the next process (stale owner detected)', async () => {
    const machine = uniqueMachine();
    const a = await holder(machine);
    expect(a.first).toBe('opened');
    expect(probe(machine)).toMatch(/^refused STATUS_DEVICE_BUSY/);
    a.proc.kill('SIGKILL');
    await exited(a.proc);
    expect(a.proc.signalCode).toBe('SIGKILL');
    expect(existsSync(join(lockRoot(), machine, '0000_00_03.0.lock'))).toBe(true); // nobody removed it
    expect(probe(machine)).toBe('opened');
    expect(readdirSync(join(lockRoot(), machine))).toEqual([]); // taken over and given back
  });

  it('an owner that exits without closing gives the device back (exit hook)', async () => {
    const machine = uniqueMachine();
    const code = `const m = await import('dma-iommu'); const p = m.openPlatform({ backend: 'sim', simulator: { machine: '${machine}' } });
      m.IoGetIommuInterfaceEx(3, 0n, { platform: p }).V3.CreateDevice(p.findDevice('${EDU0}')); console.log('opened');`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout.trim(), r.stderr).toBe('opened');
    expect(readdirSync(join(lockRoot(), machine))).toEqual([]);
    expect(probe(machine)).toBe('opened');
  });

  it('the environment variable names the machine when the option is absent; private machines and other names never collide', async () => {
    const machine = uniqueMachine();
    const a = await holder(undefined, { [MACHINE_ENV]: machine });
    expect(a.first).toBe('opened');
    expect(probe(undefined, { [MACHINE_ENV]: machine })).toMatch(/^refused STATUS_DEVICE_BUSY/);
    expect(probe(machine)).toMatch(/^refused STATUS_DEVICE_BUSY/);
    expect(probe(uniqueMachine())).toBe('opened'); // another machine
    expect(probe(undefined, { [MACHINE_ENV]: '' })).toBe('opened'); // private (the default)
    a.proc.stdin.write('exit\n');
    await exited(a.proc);
  });
});

describe('named machines in one process', () => {
  it('two backends naming the same machine: EBUSY for the second until the first closes the device or itself', () => {
    const machine = uniqueMachine();
    const a = new SimulatedBackend({ machine });
    const b = new SimulatedBackend({ machine });
    const private1 = new SimulatedBackend();
    try {
      expect(a.machine).toBe(machine);
      const h = a.openDevice(EDU0);
      expectErrno(() => b.openDevice(EDU0), 'EBUSY');
      expect(() => b.openDevice(EDU0)).toThrow(/another backend of this process/);
      const h1 = b.openDevice(EDU1); // another device of the same machine is free
      expectErrno(() => a.openDevice(EDU1), 'EBUSY');
      private1.closeDevice(private1.openDevice(EDU0)); // a private machine sees none of it
      a.closeDevice(h);
      const h2 = b.openDevice(EDU0);
      expectErrno(() => a.openDevice(EDU0), 'EBUSY');
      b.close(); // every lock of b goes
      a.openDevice(EDU0);
      a.openDevice(EDU1);
      expect(h1).toBeGreaterThan(0);
      expect(h2).toBeGreaterThan(0);
    } finally {
      a.close();
      b.close();
      private1.close();
    }
    expect(readdirSync(join(lockRoot(), machine))).toEqual([]);
  });

  it('a removed device gives its lock back; the public API answers STATUS_DEVICE_BUSY', () => {
    const machine = uniqueMachine();
    const a = openPlatform({ backend: 'sim', simulator: { machine } });
    const b = openPlatform({ backend: 'sim', simulator: { machine } });
    try {
      const va = IoGetIommuInterfaceEx(3, 0n, { platform: a });
      const vb = IoGetIommuInterfaceEx(3, 0n, { platform: b });
      if (va.Version !== 3 || vb.Version !== 3) throw new Error('V3');
      va.V3.CreateDevice(a.findDevice(EDU0)!);
      let err: unknown;
      try {
        vb.V3.CreateDevice(b.findDevice(EDU0)!);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(IommuError);
      expect((err as IommuError).code).toBe('STATUS_DEVICE_BUSY');
      (a.backend as SimulatedBackend).removeDevice(EDU0);
      expect(vb.V3.CreateDevice(b.findDevice(EDU0)!)).toBeTruthy();
    } finally {
      a.close();
      b.close();
    }
  });

  it('a stale lock of a dead process, and an empty lock file left by an opener that died before writing it, are taken over', () => {
    const machine = uniqueMachine();
    const dir = join(lockRoot(), machine);
    mkdirSync(dir, { recursive: true });
    // a pid that cannot be alive: above the kernel's pid_max
    writeFileSync(join(dir, '0000_00_03.0.lock'), '4194305 1\n');
    const locks = new DeviceLocks(machine);
    expect(locks.acquire(EDU0)).toBeNull();
    locks.releaseAll();
    // our own pid with another start time: a reused pid, not us
    writeFileSync(join(dir, '0000_00_03.0.lock'), `${process.pid} 1\n`);
    expect(locks.acquire(EDU0)).toBeNull();
    locks.releaseAll();
    // an empty file is a creator between create and write: busy while fresh
    writeFileSync(join(dir, '0000_00_04.0.lock'), '');
    expect(locks.acquire(EDU1)).toBe(0);
    expect(readdirSync(dir)).toEqual(['0000_00_04.0.lock']);
  });

  it('bad machine names are refused naming the option or the variable', () => {
    for (const bad of ['', 'a/b', '../x', '.hidden', 'x'.repeat(65), 7 as never]) {
      expect(() => new SimulatedBackend({ machine: bad })).toThrow(/^machine must be null or a name/);
    }
    expect(() => machineName(undefined, { [MACHINE_ENV]: 'a b' })).toThrow(new RegExp(`^${MACHINE_ENV} must be`));
    expect(machineName(null, { [MACHINE_ENV]: 'rig' })).toBeNull(); // null: private, whatever the environment says
    expect(machineName(undefined, { [MACHINE_ENV]: 'rig' })).toBe('rig');
    expect(machineName(undefined, {})).toBeNull();
    let err: unknown;
    try {
      openPlatform({ backend: 'sim', simulator: { machine: 'no/slash' } });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'STATUS_INVALID_PARAMETER', argument: 'simulator' });
  });
});

