/**
 * The backend's event listeners (DMA faults, device events): subscription, and delivery that
 * survives a listener that throws (counted in `errors`, reported as a process warning).
 */
import type { BackendFault, DeviceEvent } from '../contract.js';

export class Listeners<E> {
  readonly #set = new Set<(event: E) => void>();
  readonly #what: string;
  readonly #onError: () => void;

  constructor(what: string, onError: () => void) {
    this.#what = what;
    this.#onError = onError;
  }

  get size(): number {
    return this.#set.size;
  }

  /** Subscribe; returns the unsubscribe function (its record goes with it). */
  add(listener: (event: E) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    const l = (e: E): void => listener(e);
    this.#set.add(l);
    return () => {
      this.#set.delete(l);
    };
  }

  emit(event: E): void {
    for (const l of [...this.#set]) {
      try {
        l(event);
      } catch (e) {
        this.#onError();
        process.emitWarning(`dma-iommu simulator: a ${this.#what} listener threw: ${String(e)}`);
      }
    }
  }
}

export type FaultListeners = Listeners<BackendFault>;
export type DeviceListeners = Listeners<DeviceEvent>;
