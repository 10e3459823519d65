/**
 * Backend selection: explicit option > DMA_IOMMU_BACKEND environment variable > auto.
 * auto = the native backend (iommufd, else VFIO type1) when the addon loaded and the platform has
 * a usable IOMMU and device; else the simulator, with every step's reason kept in `reason`.
 * 'native' (or 'iommufd' / 'vfio-type1') never falls back: it throws with the reasons.
 */
import { debuglog } from 'node:util';
import { IommuError } from '../errors.js';
import type { IommuBackend, ProbeStep } from './contract.js';
import { createNativeBackend } from './native/index.js';
import { SimulatedBackend, type SimulatedBackendOptions } from './simulated/index.js';

const debug = debuglog('dma-iommu');

/**
 * A backend by name: `auto` (iommufd, else VFIO type1, else the simulator), `sim`/`simulated`,
 * `native` (iommufd, else type1; never the simulator), `iommufd`, `vfio-type1`/`type1`.
 */
export type BackendChoice = 'auto' | 'sim' | 'simulated' | 'native' | 'iommufd' | 'vfio-type1' | 'type1';

/** How to choose the backend: this option > the `DMA_IOMMU_BACKEND` environment variable > `auto`. */
export interface SelectOptions {
  /** A choice, or a backend instance to use as is. */
  readonly backend?: BackendChoice | IommuBackend;
  /** Options for the simulator when it is chosen. */
  readonly simulator?: SimulatedBackendOptions;
}

/** The chosen backend and how it was chosen. */
export interface Selection {
  /** The backend, ready to use. */
  readonly backend: IommuBackend;
  /** How the choice was made: 'option', 'env' or 'auto'. */
  readonly by: 'option' | 'env' | 'auto';
  /** The native probe's steps (empty when the simulator was asked for, or a backend instance given). */
  readonly steps: readonly ProbeStep[];
}

const CHOICES: readonly string[] = ['auto', 'sim', 'simulated', 'native', 'iommufd', 'vfio-type1', 'type1'];

function normalise(choice: string, source: string): BackendChoice {
  const c = choice.trim().toLowerCase();
  if (!CHOICES.includes(c)) {
    throw new IommuError('STATUS_INVALID_PARAMETER', `${source} '${choice}' is not one of ${CHOICES.join(', ')}`, { operation: 'selectBackend', argument: 'backend' });
  }
  return c as BackendChoice;
}

/**
 * Choose and open a backend: `options.backend` > `DMA_IOMMU_BACKEND` > auto. `NODE_DEBUG=dma-iommu`
 * logs the choice and every probe step.
 * @throws {@link IommuError} `STATUS_INVALID_PARAMETER` (argument `backend`) for an unknown name;
 * `STATUS_NOT_SUPPORTED` when `native`, `iommufd` or `vfio-type1` was asked for and is not usable
 * (the message gives every probe step's reason).
 */
export function selectBackend(options: SelectOptions = {}): Selection {
  const opt = options.backend;
  if (opt !== undefined && typeof opt === 'object') return { backend: opt, by: 'option', steps: [] };
  const env = process.env.DMA_IOMMU_BACKEND;
  const by: Selection['by'] = opt !== undefined ? 'option' : env ? 'env' : 'auto';
  const choice = opt !== undefined ? normalise(opt, 'backend option') : env ? normalise(env, 'DMA_IOMMU_BACKEND') : 'auto';
  const via = by === 'option' ? 'requested by option' : by === 'env' ? 'requested by DMA_IOMMU_BACKEND' : 'chosen automatically';
  debug('backend choice %s (%s)', choice, via);

  if (choice === 'sim' || choice === 'simulated') {
    const backend = new SimulatedBackend({ reason: `simulated backend ${via}`, ...options.simulator });
    return { backend, by, steps: [] };
  }
  const kind = choice === 'iommufd' ? 'iommufd' : choice === 'vfio-type1' || choice === 'type1' ? 'vfio-type1' : 'auto';
  const native = createNativeBackend(kind);
  for (const s of native.steps) debug('probe %s: %s (%s)', s.check, s.ok ? 'ok' : 'no', s.detail);
  if (native.backend) return { backend: native.backend, by, steps: native.steps };
  if (choice !== 'auto') {
    throw new IommuError('STATUS_NOT_SUPPORTED', `the native backend is not usable here: ${native.reason}`, { operation: 'selectBackend', argument: 'backend' });
  }
  const reason = `no usable IOMMU, so the simulator: ${native.reason}`;
  debug(reason);
  return { backend: new SimulatedBackend({ reason, ...options.simulator }), by, steps: native.steps };
}
