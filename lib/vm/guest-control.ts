/**
 * Guest-side control of a `dma-iommu vm run --hotplug` guest (runInVm({ hotplug: true })): COMMAND
 * (or a test inside it) asks the host to unplug or plug an edu device while it runs, and hears the
 * outcome. Requests go over the virtio-serial port `dma.hotplug` to the host, which carries them out
 * with QEMU's device_del / device_add (lib/vm/hotplug.ts).
 *
 *   import { unplug, plug } from 'dma-iommu/vm/guest-control';   // or lib/vm/guest-control.js
 *   await unplug('0000:01:00.0');   // resolves once the guest kernel ejected the device
 *   await plug('0000:01:00.0');     // a fresh device in the slot, bound to vfio-pci
 *
 * `unplug` resolves only when the unplug completed: vfio-pci holds the removal until every user in
 * the guest closed the device (it asks them through the VFIO request notifier, which the native
 * backends turn into a state-change callback), so the script must release the device meanwhile;
 * await the promise without blocking the event loop. Requests are served one at a time.
 */
import { chmodSync, existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';

export class GuestControlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GuestControlError';
  }
}

export interface UnplugOptions {
  /** How long the host waits for the guest to let go of the device, ms (default 60000). */
  timeoutMs?: number;
}

export interface PlugOptions {
  /** How long to wait for the guest kernel to enumerate the new device, ms (default 30000). */
  timeoutMs?: number;
}

export interface HotplugOutcome {
  bdf: string;
  /** The host's time for the request (unplug: device_del to QEMU's DEVICE_DELETED), ms. */
  hostMs: number;
  /** The whole call as the guest saw it, ms. */
  ms: number;
}

export interface PlugOutcome extends HotplugOutcome {
  /** The new device's IOMMU group. */
  iommuGroup: number;
  /** Its VFIO character device (/dev/vfio/devices/vfioN), when the kernel has the cdev interface. */
  vfioDevice: string | null;
}

const SYS = '/sys';
const BDF_RE = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;

/** True inside a guest started with hotplug slots. */
export function hotplugAvailable(): boolean {
  return process.env.DMA_IOMMU_VM_HOTPLUG === '1' && portPath() !== null;
}

function portPath(): string | null {
  const dir = `${SYS}/class/virtio-ports`;
  if (!existsSync(dir)) return null;
  for (const v of readdirSync(dir)) {
    try {
      if (readFileSync(`${dir}/${v}/name`, 'utf8').trim() === 'dma.hotplug') return `/dev/${v}`;
    } catch {
      /* a port without a name */
    }
  }
  return null;
}

function checkBdf(op: string, bdf: unknown): string {
  if (typeof bdf !== 'string' || !BDF_RE.test(bdf.toLowerCase())) {
    throw new TypeError(`${op}: bdf must be a PCI address like '0000:01:00.0' (got ${typeof bdf === 'string' ? `'${bdf}'` : typeof bdf})`);
  }
  return bdf.toLowerCase();
}

function checkTimeout(op: string, v: unknown, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw new RangeError(`${op}: timeoutMs must be an integer 1..${max} (got ${String(v)})`);
  return v;
}

let queue: Promise<unknown> = Promise.resolve();
let nextId = 1;

/** One request to the host; resolves with the host's ms, rejects with its error. */
function request(verb: 'plug' | 'unplug', bdf: string, extra: string): Promise<number> {
  const run = async (): Promise<number> => {
    const path = portPath();
    if (process.env.DMA_IOMMU_VM_HOTPLUG !== '1' || path === null) {
      throw new GuestControlError(`${verb}: this guest has no hot-plug slots (start it with \`dma-iommu vm run --hotplug\` or runInVm({ hotplug: true }))`);
    }
    const id = `r${process.pid}-${nextId++}`;
    const fh = await open(path, 'r+');
    try {
      await fh.write(`${id} ${verb} ${bdf}${extra}\n`);
      const buf = Buffer.alloc(4096);
      let text = '';
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0) throw new GuestControlError(`${verb} ${bdf}: the host closed the hot-plug port`);
        text += buf.subarray(0, bytesRead).toString('utf8');
        let nl: number;
        while ((nl = text.indexOf('\n')) >= 0) {
          const line = text.slice(0, nl).trim();
          text = text.slice(nl + 1);
          const [rid, status, ...rest] = line.split(' ');
          if (rid !== id) continue; // an answer to an earlier, abandoned request
          if (status === 'ok') return Number(rest[0] ?? 0);
          throw new GuestControlError(`${verb} ${bdf}: ${rest.join(' ')}`);
        }
      }
    } finally {
      await fh.close();
    }
  };
  const p = queue.then(run, run);
  queue = p.catch(() => undefined);
  return p;
}

/**
 * Unplug the edu device at `bdf` (QEMU device_del). Resolves once the guest kernel completed the
 * removal; rejects with the host's reason otherwise (e.g. the device was not released in time).
 */
export async function unplug(bdf: string, options: UnplugOptions = {}): Promise<HotplugOutcome> {
  const b = checkBdf('unplug', bdf);
  const timeout = checkTimeout('unplug', options?.timeoutMs, 600_000);
  const t0 = Date.now();
  const hostMs = await request('unplug', b, timeout === undefined ? '' : ` ${timeout}`);
  return { bdf: b, hostMs, ms: Date.now() - t0 };
}

/**
 * Plug a fresh edu device into the slot of `bdf` (QEMU device_add), wait for the guest kernel to
 * enumerate it, and bind it to vfio-pci (driver_override + drivers_probe) with its VFIO nodes
 * opened up as the guest init does for the boot-time devices.
 */
export async function plug(bdf: string, options: PlugOptions = {}): Promise<PlugOutcome> {
  const b = checkBdf('plug', bdf);
  const timeout = checkTimeout('plug', options?.timeoutMs, 600_000) ?? 30_000;
  const t0 = Date.now();
  const hostMs = await request('plug', b, '');
  const adopted = await adoptDevice(b, timeout, 'plug');
  return { ...adopted, hostMs, ms: Date.now() - t0 };
}

/**
 * Wait (up to `timeoutMs`) for the guest kernel to enumerate a device at `bdf` (after a plug, or a
 * `/sys/bus/pci/rescan` after a sysfs remove), bind it to vfio-pci and open up its VFIO nodes.
 */
export async function adoptDevice(bdf: string, timeoutMs = 30_000, op = 'adoptDevice'): Promise<{ bdf: string; iommuGroup: number; vfioDevice: string | null }> {
  const b = checkBdf(op, bdf);
  const timeout = checkTimeout(op, timeoutMs, 600_000) ?? 30_000;
  const dev = `${SYS}/bus/pci/devices/${b}`;
  const until = Date.now() + timeout;
  // The kernel enumerates the slot on the hot-plug event it gets from QEMU, asynchronously.
  while (!existsSync(dev)) {
    if (Date.now() > until) throw new GuestControlError(`${op} ${b}: the guest kernel did not enumerate the device within ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  // The sysfs node appears before the kernel has finished adding the device (its IOMMU group, the
  // bus's own probe); a vfio-pci probe in that window fails, so the bind is retried until bound.
  for (;;) {
    const driver = bindVfio(b, dev);
    if (driver === 'vfio-pci') break;
    if (Date.now() > until) throw new GuestControlError(`plug ${b}: could not bind the new device to vfio-pci within ${timeout} ms (driver: ${driver ?? 'none'})`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const iommuGroup = Number(basename(readlinkSync(`${dev}/iommu_group`)));
  let vfioDevice: string | null = null;
  const vfioDir = `${dev}/vfio-dev`;
  if (existsSync(vfioDir)) {
    const name = readdirSync(vfioDir)[0];
    if (name) vfioDevice = `/dev/vfio/devices/${name}`;
  }
  for (const node of [`/dev/vfio/${iommuGroup}`, ...(vfioDevice ? [vfioDevice] : [])]) {
    if (existsSync(node)) chmodSync(node, 0o666);
  }
  return { bdf: b, iommuGroup, vfioDevice };
}

/** One attempt to bind `bdf` to vfio-pci; returns the driver it has afterwards (null: none). */
function bindVfio(bdf: string, dev: string): string | null {
  const driver = () => (existsSync(`${dev}/driver`) ? basename(readlinkSync(`${dev}/driver`)) : null);
  if (driver() === 'vfio-pci') return 'vfio-pci';
  try {
    writeFileSync(`${dev}/driver_override`, 'vfio-pci');
    const current = driver();
    if (current !== null) writeFileSync(`${dev}/driver/unbind`, bdf);
    writeFileSync(`${SYS}/bus/pci/drivers_probe`, bdf);
  } catch {
    // a probe that fails (device not fully added yet) is answered by the retry
  }
  return driver();
}
