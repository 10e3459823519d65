/**
 * The host side of `vm run --hotplug` without a guest: request parsing, the QMP client, and
 * HotplugHost turning a guest request into device_del (answered at DEVICE_DELETED) / device_add,
 * against a fake QEMU monitor on a socket pair. The real path runs in the VM
 * (test/vm/guest/hotplug-native.test.ts).
 */
import { createServer, connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { deviceAddArgs, HotplugHost, parseHotplugRequest } from '../../../lib/vm/hotplug.js';
import { hotplugDeviceArgs, hotplugEduBdf } from '../../../lib/vm/hotplug-args.js';
import { QmpClient } from '../../../lib/vm/qmp.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Two connected sockets. */
async function pair(): Promise<[Socket, Socket]> {
  const dir = mkdtempSync(join(tmpdir(), 'hp-test-'));
  dirs.push(dir);
  const path = join(dir, 's');
  const server = createServer();
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  await new Promise<void>((r) => server.listen(path, r));
  const client = connect(path);
  const a = await accepted;
  server.close();
  return [a, client];
}

/** A fake QEMU monitor: greeting, commands logged, DEVICE_DELETED sent when `release` is called. */
function fakeQemu(sock: Socket) {
  const commands: Array<{ execute: string; arguments?: Record<string, unknown> }> = [];
  let buf = '';
  sock.write(JSON.stringify({ QMP: { version: {}, capabilities: [] } }) + '\n');
  sock.on('data', (c: Buffer) => {
    buf += c.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const msg = JSON.parse(buf.slice(0, nl)) as { execute: string; arguments?: Record<string, unknown>; id: number };
      buf = buf.slice(nl + 1);
      commands.push(msg);
      if (msg.execute === 'device_add' && msg.arguments?.id === 'edu9') sock.write(JSON.stringify({ error: { class: 'GenericError', desc: 'Duplicate ID' }, id: msg.id }) + '\n');
      else sock.write(JSON.stringify({ return: {}, id: msg.id }) + '\n');
    }
  });
  return {
    commands,
    release: (id: string) => sock.write(JSON.stringify({ event: 'DEVICE_DELETED', data: { device: id, path: `/machine/peripheral/${id}` } }) + '\n'),
  };
}

function lines(sock: Socket): () => Promise<string> {
  let buf = '';
  const queue: string[] = [];
  const waiters: ((l: string) => void)[] = [];
  sock.on('data', (c: Buffer) => {
    buf += c.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const w = waiters.shift();
      if (w) w(l);
      else queue.push(l);
    }
  });
  return () => (queue.length ? Promise.resolve(queue.shift()!) : new Promise((r) => waiters.push(r)));
}

describe('vm --hotplug, host side', () => {
  it('parses requests and names what is wrong', () => {
    expect(parseHotplugRequest('r1 unplug 0000:01:00.0')).toEqual({ id: 'r1', verb: 'unplug', bdf: '0000:01:00.0', timeoutMs: 60_000 });
    expect(parseHotplugRequest('r2 unplug 0000:02:00.0 1500')).toMatchObject({ timeoutMs: 1500 });
    expect(parseHotplugRequest('r3 plug 0000:02:00.0')).toMatchObject({ verb: 'plug' });
    expect(parseHotplugRequest('r4 eject 0000:02:00.0')).toMatch(/unknown request 'eject'/);
    expect(parseHotplugRequest('r5 unplug 02:00.0')).toMatch(/expected a BDF/);
    expect(parseHotplugRequest('r6 unplug 0000:02:00.0 0')).toMatch(/unplug timeout in ms/);
    expect(parseHotplugRequest('r7 plug 0000:02:00.0 100')).toMatch(/unplug timeout/);
    expect(parseHotplugRequest('b@d unplug 0000:01:00.0')).toMatch(/starts with an id/);
  });

  it('puts each edu device behind its own hot-pluggable root port, device_add uses the same spec', () => {
    expect(hotplugDeviceArgs(2)).toEqual([
      '-device', 'pcie-root-port,id=hp0,bus=pcie.0,addr=0x3,chassis=1,slot=1',
      '-device', 'edu,id=edu0,bus=hp0,addr=0x0',
      '-device', 'pcie-root-port,id=hp1,bus=pcie.0,addr=0x4,chassis=2,slot=2',
      '-device', 'edu,id=edu1,bus=hp1,addr=0x0',
    ]);
    expect(deviceAddArgs(1)).toEqual({ driver: 'edu', id: 'edu1', bus: 'hp1', addr: '0x0' });
    expect(hotplugEduBdf(0)).toBe('0000:01:00.0');
    expect(hotplugEduBdf(15)).toBe('0000:10:00.0');
  });

  it('unplug is device_del answered at DEVICE_DELETED, plug is device_add; refusals come back with the reason', async () => {
    const [qemuSide, hostSide] = await pair();
    const [guestSide, hostPort] = await pair();
    const qemu = fakeQemu(qemuSide);
    const host = new HotplugHost(2);
    host.attachQmp(new QmpClient(hostSide));
    host.attachPort(hostPort);
    const next = lines(guestSide);

    guestSide.write('a1 unplug 0000:02:00.0\n');
    await new Promise((r) => setTimeout(r, 50));
    expect(qemu.commands.map((c) => c.execute)).toEqual(['qmp_capabilities', 'device_del']);
    expect(qemu.commands[1]!.arguments).toEqual({ id: 'edu1' });
    qemu.release('edu0'); // another device's event does not answer this request
    qemu.release('edu1');
    expect(await next()).toMatch(/^a1 ok \d+$/);

    guestSide.write('a2 plug 0000:02:00.0\n');
    expect(await next()).toMatch(/^a2 ok \d+$/);
    expect(qemu.commands[2]).toMatchObject({ execute: 'device_add', arguments: { driver: 'edu', id: 'edu1', bus: 'hp1', addr: '0x0' } });

    guestSide.write('a3 unplug 0000:05:00.0\n');
    expect(await next()).toBe('a3 error unplug: 0000:05:00.0 is not a hot-plug slot of this guest (it has 2: 0000:01:00.0 up to 0000:02:00.0)');
    guestSide.write('a4 unplug 0000:01:00.0 50\n');
    expect(await next()).toMatch(/^a4 error unplug: the guest did not release 0000:01:00\.0 within 50 ms/);
    guestSide.write('nonsense\n');
    expect(await next()).toMatch(/^nonsense error unknown request ''/);
    for (const s of [qemuSide, hostSide, guestSide, hostPort]) s.destroy();
  });
});
