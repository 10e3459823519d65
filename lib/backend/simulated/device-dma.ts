/**
 * Device-initiated DMA through the IOMMU: the edu model's DMA engine host, and the test
 * controls' dmaRead/dmaWrite. Translation is page by page (dma-engine.ts): the pages that
 * translate move, the blocked ones do not (a read yields zeros for them). A request with a
 * blocked page is logged once (FaultLog, its first blocked access) and delivered to the fault
 * listeners while the device is open.
 */
import type { BackendFault } from '../contract.js';
import type { SimBus } from './bus.js';
import { checkDmaRequest, type DmaOptions, type DmaReadResult, type DmaWriteResult } from './controls.js';
import { type DmaEngine, MAX_DMA_BYTES } from './dma-engine.js';
import type { EduHost } from './edu-model.js';
import type { FaultInput, FaultLog, SimulatedFault } from './faults.js';
import type { Listeners } from './listeners.js';
import type { SimDevice } from './machine.js';
import { describe } from './util.js';

export interface DeviceDmaContext {
  readonly arch: 'x86_64' | 'arm64';
  readonly engine: DmaEngine;
  readonly faults: FaultLog;
  readonly listeners: Listeners<BackendFault>;
  readonly bus: () => SimBus;
  readonly closed: () => boolean;
  readonly eduDelayMs: number;
}

export class DeviceDma {
  readonly #c: DeviceDmaContext;

  constructor(ctx: DeviceDmaContext) {
    this.#c = ctx;
  }

  /** Log a blocked request; deliver it to the fault listeners while the device is open. */
  raise(input: FaultInput, dev: SimDevice): SimulatedFault {
    const rec = this.#c.faults.add(this.#c.arch, input);
    if (dev.handle !== 0 && this.#c.faults.reported) this.#c.listeners.emit(rec);
    return rec;
  }

  /** The edu model's view of the bus: DMA stops when the device is removed or the backend closed. */
  eduHost(dev: SimDevice): EduHost {
    const c = this.#c;
    return {
      delayMs: c.eduDelayMs,
      dmaRead: (iova, length) => {
        if (dev.removed || c.closed()) return null;
        const r = c.engine.read(dev, iova, length, undefined);
        if (r.fault !== null) this.raise(r.fault, dev);
        return { data: r.data, ok: r.fault === null };
      },
      dmaWrite: (iova, data) => {
        if (dev.removed || c.closed()) return false;
        const r = c.engine.write(dev, iova, data, undefined);
        if (r.fault === null) return true;
        this.raise(r.fault, dev);
        return false;
      },
    };
  }

  read(bdf: string, iova: bigint, length: number, options?: DmaOptions): DmaReadResult {
    if (typeof length !== 'number' || !Number.isInteger(length) || length < 0 || length > MAX_DMA_BYTES) {
      throw new TypeError(`length must be an integer in [0, 1 GiB], got ${describe(length)}`);
    }
    const { dev, pasid } = checkDmaRequest(this.#c.bus(), this.#c.closed(), bdf, iova, length, options);
    const r = this.#c.engine.read(dev, iova, length, pasid);
    if (r.fault === null) return { ok: true, data: r.data };
    return { ok: false, data: r.data, bytesRead: r.moved, fault: this.raise(r.fault, dev) };
  }

  write(bdf: string, iova: bigint, data: Uint8Array, options?: DmaOptions): DmaWriteResult {
    if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
    if (data.length > MAX_DMA_BYTES) throw new RangeError('DMA larger than 1 GiB');
    const { dev, pasid } = checkDmaRequest(this.#c.bus(), this.#c.closed(), bdf, iova, data.length, options);
    const r = this.#c.engine.write(dev, iova, data, pasid);
    if (r.fault === null) return { ok: true, bytesWritten: r.moved };
    return { ok: false, bytesWritten: r.moved, fault: this.raise(r.fault, dev) };
  }
}
