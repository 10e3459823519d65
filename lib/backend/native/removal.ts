/**
 * Hot-unplug on the native backends: each open device's VFIO request notifier
 * (VFIO_PCI_REQ_IRQ_INDEX) is routed to an eventfd the addon watches on the event loop
 * (native/binding/notify_exports.cc: a libuv poll handle, no thread, no polling). vfio-pci signals
 * it when the kernel wants the device back (hot-unplug, sysfs remove, driver unbind) and holds the
 * removal until every user closed the device, re-signalling every 10 s.
 *
 * On the first signal the device is treated as gone, as the simulator's removeDevice does: it is
 * detached from its domain in the kernel (the hardware's departure drops its attachments; its
 * domain can then be freed), every later call on it fails with ENODEV (the platform's
 * STATUS_DEVICE_REMOVED), its config space and BARs too, and the backend's device listeners hear
 * { present: false, availableDomainTypes: 0 } (the platform marks its PDO stale and calls the
 * interface-state-change callback with mask 0). closeDevice still works: it closes the fd, which
 * lets the kernel complete the unplug. A device that appears at that address later is a new
 * device (enumerate, open anew).
 *
 * type1 closes and re-opens device fds when a group changes container, and the kernel forgets the
 * notifier with the fd, so the backend re-arms after every attach/detach (`rearm`).
 */
import type { DeviceEvent, DeviceRegions } from '../contract.js';
import type { NativeAddon, NativeHandle } from './addon-types.js';
import type { DeviceRec } from './records.js';
import { ERR, fail } from './util.js';

/** The addon's event-notification exports (native/binding/notify_exports.cc). */
export interface NotifyAddon {
  notifierOpen(callback: (count: number) => void): number;
  notifierClose(id: number): void;
  deviceSetReqTrigger(device: NativeHandle, notifier: number): void;
  deviceReqIrqCount(device: NativeHandle): number;
}

type WatchedDevice = DeviceRec;

interface Watch {
  readonly notifier: number;
  /** The fd the request trigger is set on now (null: none armed). */
  armedOn: NativeHandle | null;
  /** First request seen (performance.now()), null while the device is present. */
  removedAt: number | null;
  /** Requests the kernel sent (it repeats them every 10 s until the device is released). */
  requests: number;
}

export interface RemovalHost {
  /** The kernel asked for `dev`: detach it and tell the device listeners. */
  removed(dev: WatchedDevice, event: DeviceEvent): void;
}

export class RemovalWatch {
  readonly #addon: (NativeAddon & Partial<NotifyAddon>) | null;
  readonly #host: RemovalHost;
  readonly #watches = new Map<WatchedDevice, Watch>();
  /** Why devices are not watched (an addon without notify exports), for inspect(). */
  readonly unavailable: string | null;

  constructor(addon: NativeAddon, host: RemovalHost) {
    const a = addon as NativeAddon & Partial<NotifyAddon>;
    this.#host = host;
    if (typeof a.notifierOpen === 'function' && typeof a.deviceSetReqTrigger === 'function') {
      this.#addon = a;
      this.unavailable = null;
    } else {
      this.#addon = null;
      this.unavailable = 'the native addon was built without event notification (rebuild it)';
    }
  }

  /** Start watching a device just opened. A device without a request notifier is not watched. */
  watch(dev: WatchedDevice): void {
    const a = this.#addon;
    if (!a || this.#watches.has(dev)) return;
    const notifier = a.notifierOpen!((count) => this.#signalled(dev, count));
    const w: Watch = { notifier, armedOn: null, removedAt: null, requests: 0 };
    this.#watches.set(dev, w);
    try {
      this.#arm(dev, w);
    } catch (e) {
      this.#watches.delete(dev);
      a.notifierClose!(notifier);
      throw e;
    }
  }

  /** Re-arm every device whose fd changed (type1 re-opens fds around container moves). */
  rearm(): void {
    for (const [dev, w] of this.#watches) if (w.removedAt === null && dev.handle !== w.armedOn) this.#arm(dev, w);
  }

  #arm(dev: WatchedDevice, w: Watch): void {
    const h = dev.handle;
    w.armedOn = null;
    if (!h || h.closed) return;
    this.#addon!.deviceSetReqTrigger!(h, w.notifier);
    w.armedOn = h;
  }

  /** Stop watching (closeDevice): the trigger is cleared with the fd, the eventfd closed here. */
  unwatch(dev: WatchedDevice): void {
    const w = this.#watches.get(dev);
    if (!w) return;
    this.#watches.delete(dev);
    const h = dev.handle;
    if (h && !h.closed && w.armedOn === h) {
      try {
        this.#addon!.deviceSetReqTrigger!(h, 0);
      } catch {
        /* the fd is closed next anyway */
      }
    }
    this.#addon!.notifierClose!(w.notifier);
  }

  /** The kernel asked for this device back: every call on it fails with ENODEV from now on. */
  isRemoved(dev: WatchedDevice): boolean {
    return this.#watches.get(dev)?.removedAt != null;
  }

  /** Fail with ENODEV when `dev` was removed. */
  check(dev: WatchedDevice, syscall: string): void {
    if (this.isRemoved(dev)) fail(ERR.ENODEV, syscall, `${dev.bdf} was removed (the kernel asked for it back through the VFIO request notifier); close it`);
  }

  /** The device's regions, failing with ENODEV once it was removed. */
  regions(dev: WatchedDevice): DeviceRegions {
    const inner = dev.regions;
    const check = (op: string) => this.check(dev, op);
    return {
      configRead: (o, s) => (check('pread'), inner.configRead(o, s)),
      configWrite: (o, s, v) => (check('pwrite'), inner.configWrite(o, s, v)),
      barRead32: (b, o) => (check('pread'), inner.barRead32(b, o)),
      barWrite32: (b, o, v) => (check('pwrite'), inner.barWrite32(b, o, v)),
      barRead64: (b, o) => (check('pread'), inner.barRead64(b, o)),
      barWrite64: (b, o, v) => (check('pwrite'), inner.barWrite64(b, o, v)),
    };
  }

  #signalled(dev: WatchedDevice, count: number): void {
    const w = this.#watches.get(dev);
    if (!w || count <= 0) return;
    w.requests += count;
    if (w.removedAt !== null) return; // the kernel repeats its request until the fd is closed
    w.removedAt = performance.now();
    this.#host.removed(dev, { bdf: dev.bdf, present: false, availableDomainTypes: 0 });
  }

  /** Close every notifier (backend close). */
  close(): void {
    for (const dev of [...this.#watches.keys()]) this.unwatch(dev);
  }

  inspect(): unknown {
    return {
      watching: this.unavailable ?? 'VFIO request notifier on each open device',
      devices: [...this.#watches].map(([d, w]) => ({ bdf: d.bdf, armed: w.armedOn !== null, removed: w.removedAt !== null, requests: w.requests })),
    };
  }
}
