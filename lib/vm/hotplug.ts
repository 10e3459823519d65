/**
 * The host side of `--hotplug`: requests the guest writes on its `dma.hotplug` port, carried out
 * over QMP, and the answers written back on the same port. One line each way:
 *
 *   guest → host   `<id> unplug <bdf> [<timeout ms>]`   `<id> plug <bdf>`
 *   host → guest   `<id> ok <ms>`                       `<id> error <message>`
 *
 * `unplug` is QEMU's `device_del` of the slot's edu device, answered when QEMU reports
 * DEVICE_DELETED: the guest kernel ejected the device, so every user in the guest let go of it
 * (vfio-pci waits for that, re-sending its request every 10 s). `plug` is `device_add` of a fresh
 * edu device in the same slot, answered when QEMU accepted it (the guest kernel then enumerates
 * it; lib/vm/guest-control.ts waits for that and binds it to vfio-pci). <ms> is the time the host
 * took.
 */
import type { Socket } from 'node:net';
import { eduDeviceSpec, hotplugEduId, hotplugSlotOf } from './hotplug-args.js';
import type { QmpClient, QmpEvent } from './qmp.js';

/** How long an unplug may wait for the guest to let go of the device, unless the request says. */
export const DEFAULT_UNPLUG_TIMEOUT_MS = 60_000;
const MAX_UNPLUG_TIMEOUT_MS = 600_000;

/** One request line, parsed; a string is why it is not one. */
export function parseHotplugRequest(line: string): { id: string; verb: 'plug' | 'unplug'; bdf: string; timeoutMs: number } | string {
  const words = line.trim().split(/\s+/);
  const [id, verb, bdf, timeout] = words;
  if (!id || !/^[A-Za-z0-9_-]{1,32}$/.test(id)) return 'a request starts with an id (1-32 letters, digits, _ or -)';
  if (verb !== 'plug' && verb !== 'unplug') return `unknown request '${verb ?? ''}' (plug or unplug)`;
  if (!bdf || !/^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/.test(bdf)) return `${verb}: expected a BDF like 0000:01:00.0 (got '${bdf ?? ''}')`;
  let timeoutMs = DEFAULT_UNPLUG_TIMEOUT_MS;
  if (timeout !== undefined) {
    if (verb !== 'unplug' || !/^[0-9]+$/.test(timeout) || Number(timeout) < 1 || Number(timeout) > MAX_UNPLUG_TIMEOUT_MS) {
      return `${verb}: the optional last word is an unplug timeout in ms, 1..${MAX_UNPLUG_TIMEOUT_MS} (got '${timeout}')`;
    }
    timeoutMs = Number(timeout);
  }
  if (words.length > 4) return `${verb}: too many words`;
  return { id, verb, bdf: bdf.toLowerCase(), timeoutMs };
}

/** Serves one guest's hot-plug requests. */
export class HotplugHost {
  #qmp: QmpClient | undefined;
  #qmpWaiters: ((q: QmpClient) => void)[] = [];
  #port: Socket | undefined;
  #pending = '';
  /** Slots with an unplug in progress. */
  readonly #busy = new Set<number>();
  /** Requests carried out (for the harness's notes). */
  readonly log: string[] = [];

  constructor(private readonly devices: number) {}

  /** QEMU's monitor connected. */
  attachQmp(qmp: QmpClient): void {
    void qmp.ready.then(() => {
      this.#qmp = qmp;
      for (const w of this.#qmpWaiters.splice(0)) w(qmp);
    });
  }

  /** The guest's request port connected. */
  attachPort(socket: Socket): void {
    this.#port = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#pending += chunk.toString('utf8');
      let nl: number;
      while ((nl = this.#pending.indexOf('\n')) >= 0) {
        const line = this.#pending.slice(0, nl);
        this.#pending = this.#pending.slice(nl + 1);
        if (line.trim()) void this.#serve(line);
      }
    });
  }

  #answer(id: string, text: string): void {
    this.log.push(`${id} ${text}`);
    this.#port?.write(`${id} ${text.replace(/\n/g, ' ')}\n`);
  }

  #monitor(): Promise<QmpClient> {
    return this.#qmp ? Promise.resolve(this.#qmp) : new Promise((r) => this.#qmpWaiters.push(r));
  }

  async #serve(line: string): Promise<void> {
    const req = parseHotplugRequest(line);
    if (typeof req === 'string') {
      const id = /^[A-Za-z0-9_-]{1,32}$/.test(line.trim().split(/\s+/)[0] ?? '') ? line.trim().split(/\s+/)[0]! : '-';
      this.#answer(id, `error ${req}`);
      return;
    }
    const slot = hotplugSlotOf(req.bdf, this.devices);
    if (slot < 0) {
      this.#answer(req.id, `error ${req.verb}: ${req.bdf} is not a hot-plug slot of this guest (it has ${this.devices}: 0000:01:00.0 up to 0000:${this.devices.toString(16).padStart(2, '0')}:00.0)`);
      return;
    }
    const started = Date.now();
    const qmp = await this.#monitor();
    const id = hotplugEduId(slot);
    try {
      if (req.verb === 'plug') {
        if (this.#busy.has(slot)) throw new Error(`plug: the unplug of ${req.bdf} has not completed yet`);
        await qmp.execute('device_add', deviceAddArgs(slot));
      } else {
        if (this.#busy.has(slot)) throw new Error(`unplug: an unplug of ${req.bdf} is already in progress`);
        this.#busy.add(slot);
        try {
          await unplugAndWait(qmp, id, req.bdf, req.timeoutMs);
        } finally {
          this.#busy.delete(slot);
        }
      }
      this.#answer(req.id, `ok ${Date.now() - started}`);
    } catch (e) {
      this.#answer(req.id, `error ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

/** device_add's arguments for the edu device of a slot (the same spec as on the command line). */
export function deviceAddArgs(slot: number): Record<string, string> {
  const [driver, ...props] = eduDeviceSpec(slot).split(',');
  const args: Record<string, string> = { driver: driver! };
  for (const p of props) {
    const eq = p.indexOf('=');
    args[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return args;
}

/** device_del, then wait for QEMU's DEVICE_DELETED of that device (the guest ejected it). */
async function unplugAndWait(qmp: QmpClient, id: string, bdf: string, timeoutMs: number): Promise<void> {
  let off: () => void = () => {};
  let timer: NodeJS.Timeout | undefined;
  const deleted = new Promise<void>((resolve, reject) => {
    off = qmp.onEvent((e: QmpEvent) => {
      if (e.event === 'DEVICE_DELETED' && e.data?.device === id) resolve();
    });
    timer = setTimeout(
      () => reject(new Error(`unplug: the guest did not release ${bdf} within ${timeoutMs} ms (vfio-pci waits until every user closed the device; QEMU still has the request pending)`)),
      timeoutMs,
    );
  });
  deleted.catch(() => {}); // awaited below; a device_del refused first must not leave it unhandled
  try {
    await qmp.execute('device_del', { id });
    await deleted;
  } finally {
    off();
    clearTimeout(timer);
  }
}
