/**
 * The kernel-log fault source of the native backend: one KmsgReader while anyone listens, each
 * parsed fault matched to the opened devices and classified against the domain's area shadow
 * (VT-d reasons 5/6: a hit is a permission fault, a miss a translation fault).
 */
import type { BackendFault } from '../contract.js';
import type { NativeAddon } from './addon-types.js';
import { KmsgReader, type ParsedFault, faultMatchesBdf } from './kmsg.js';
import type { DeviceRec, DomainRec } from './records.js';

export class KmsgFaults {
  readonly #addon: NativeAddon;
  readonly #enabled: boolean;
  readonly #devices: ReadonlyMap<number, DeviceRec>;
  readonly #domains: ReadonlyMap<number, DomainRec>;
  #kmsg: KmsgReader | null = null;
  #unsub: (() => void) | null = null;
  readonly #listeners = new Set<(f: BackendFault) => void>();

  constructor(addon: NativeAddon, enabled: boolean, devices: ReadonlyMap<number, DeviceRec>, domains: ReadonlyMap<number, DomainRec>) {
    this.#addon = addon;
    this.#enabled = enabled;
    this.#devices = devices;
    this.#domains = domains;
  }

  /** Add a listener (starting the reader on the first); returns its unsubscribe. */
  subscribe(listener: (fault: BackendFault) => void): () => void {
    this.#listeners.add(listener);
    if (this.#enabled && !this.#kmsg) {
      this.#kmsg = new KmsgReader(this.#addon);
      try {
        this.#unsub = this.#kmsg.subscribe((f) => this.#dispatch(f));
      } catch {
        this.#kmsg = null; // unreadable after all: no faults
      }
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.stop();
    };
  }

  /** Read the kernel log now. */
  poll(): void {
    this.#kmsg?.poll();
  }

  /** Stop reading and drop every listener. */
  close(): void {
    this.stop();
    this.#listeners.clear();
  }

  stop(): void {
    this.#unsub?.();
    this.#unsub = null;
    this.#kmsg?.close();
    this.#kmsg = null;
  }

  #dispatch(f: ParsedFault): void {
    for (const dev of this.#devices.values()) {
      if (!faultMatchesBdf(f, dev.bdf)) continue;
      let kind: BackendFault['kind'] = f.kindHint ?? 'other';
      const dom = dev.domain !== null ? this.#domains.get(dev.domain) : undefined;
      if (f.vendor === 'intel' && (f.reasonCode === 5 || f.reasonCode === 6)) {
        if (!dom || dom.type !== 'translate') kind = 'translation';
        else {
          const a = dom.areas.firstEndingAfter(f.iova);
          if (!a || a.iova > f.iova) kind = 'translation';
          else kind = 'permission';
        }
      }
      const fault: BackendFault = {
        bdf: dev.bdf,
        iova: f.iova,
        write: f.write ?? false,
        ...(f.pasid !== undefined ? { pasid: f.pasid } : {}),
        kind,
        ...(f.reasonCode !== undefined ? { reasonCode: f.reasonCode } : {}),
        reason: f.reason,
        source: 'kmsg',
        raw: f.raw,
        timestamp: Date.now(),
      };
      for (const l of [...this.#listeners]) {
        try {
          l(fault);
        } catch {
          /* a listener's error is its own */
        }
      }
    }
  }
}
