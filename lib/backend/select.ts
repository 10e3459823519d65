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

/** Every accepted spelling, as the option, the environment variable and the CLI's `--backend` take it. */
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'sim', 'simulated', 'native', 'iommufd', 'vfio-type1', 'type1'];

/**
 * The one parser of a backend name (option, DMA_IOMMU_BACKEND, `--backend`): trimmed, any case.
 * Anything else is STATUS_INVALID_PARAMETER naming `argument` and the accepted names.
 */
export function parseBackendChoice(choice: unknown, source: string, argument = 'backend'): BackendChoice {
  const c = typeof choice === 'string' ? choice.trim().toLowerCase() : undefined;
  if (c === undefined || !(BACKEND_CHOICES as readonly string[]).includes(c)) {
    const got = typeof choice === 'string' ? `'${choice}'` : describeValue(choice);
    throw new IommuError('STATUS_INVALID_PARAMETER', `${source} ${got} is not one of ${BACKEND_CHOICES.join(', ')} (or a backend instance)`, { operation: 'selectBackend', argument });
  }
  return c as BackendChoice;
}

/** A short, never-throwing description of any value for error messages. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  switch (typeof v) {
    case 'string':
      return `'${v.length > 40 ? `${v.slice(0, 40)}…` : v}'`;
    case 'bigint':
      return `${v}n`;
    case 'number':
    case 'boolean':
    case 'undefined':
      return String(v);
    case 'symbol':
      return 'a symbol';
    case 'function':
      return 'a function';
    default:
      return 'an object';
  }
}

function isBackendInstance(v: object): v is IommuBackend {
  const b = v as Partial<Record<keyof IommuBackend, unknown>>;
  return typeof b.kind === 'string' && typeof b.enumerateDevices === 'function' && typeof b.openDevice === 'function' && typeof b.onFault === 'function';
}

/** Build the simulator from the `simulator` option; a bad option is STATUS_INVALID_PARAMETER naming it. */
function simulator(options: SelectOptions, reason: string): SimulatedBackend {
  const sim = options.simulator;
  try {
    return new SimulatedBackend({ reason, ...sim });
  } catch (e) {
    if (e instanceof IommuError) throw e;
    throw new IommuError('STATUS_INVALID_PARAMETER', `the simulator option is invalid: ${(e as Error)?.message ?? String(e)}`, { operation: 'selectBackend', argument: 'simulator', cause: e });
  }
}

/**
 * Choose and open a backend: `options.backend` > `DMA_IOMMU_BACKEND` > auto. `NODE_DEBUG=dma-iommu`
 * logs the choice and every probe step.
 * @throws {@link IommuError} `STATUS_INVALID_PARAMETER` (argument `backend`) for an unknown name;
 * `STATUS_NOT_SUPPORTED` when `native`, `iommufd` or `vfio-type1` was asked for and is not usable
 * (the message gives every probe step's reason).
 */
export function selectBackend(options: SelectOptions = {}): Selection {
  if (options === null || typeof options !== 'object') {
    throw new IommuError('STATUS_INVALID_PARAMETER', `options must be an object (got ${describeValue(options)})`, { operation: 'selectBackend', argument: 'options' });
  }
  const sim = options.simulator;
  if (sim !== undefined && (sim === null || typeof sim !== 'object' || Array.isArray(sim))) {
    throw new IommuError('STATUS_INVALID_PARAMETER', `the simulator option must be an object of SimulatedBackendOptions (got ${describeValue(sim)})`, { operation: 'selectBackend', argument: 'simulator' });
  }
  const opt = options.backend;
  if (opt !== undefined && opt !== null && typeof opt === 'object') {
    if (!isBackendInstance(opt)) {
      throw new IommuError('STATUS_INVALID_PARAMETER', `the backend option must be one of ${BACKEND_CHOICES.join(', ')} or a backend instance (got an object that is not a backend)`, { operation: 'selectBackend', argument: 'backend' });
    }
    return { backend: opt, by: 'option', steps: [] };
  }
  const env = process.env.DMA_IOMMU_BACKEND;
  const by: Selection['by'] = opt !== undefined ? 'option' : env ? 'env' : 'auto';
  const choice = opt !== undefined ? parseBackendChoice(opt, 'backend option') : env ? parseBackendChoice(env, 'DMA_IOMMU_BACKEND') : 'auto';
  const via = by === 'option' ? 'requested by option' : by === 'env' ? 'requested by DMA_IOMMU_BACKEND' : 'chosen automatically';
  debug('backend choice %s (%s)', choice, via);

  if (choice === 'sim' || choice === 'simulated') {
    return { backend: simulator(options, `simulated backend ${via}`), by, steps: [] };
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
  return { backend: simulator(options, reason), by, steps: native.steps };
}
