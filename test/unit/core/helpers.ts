/** A simulated platform and its V3 table for the core's focused tests. */
import {
  DMA_IOMMU_INTERFACE_EX_VERSION_3,
  IoGetIommuInterfaceEx,
  IommuError,
  SimulatedBackend,
  openPlatform,
  type DMA_IOMMU_INTERFACE_V3,
  type IommuPlatform,
  type OpenOptions,
  type SimulatedBackendOptions,
} from '../../../lib/index.js';
import { expect } from 'vitest';

export interface Rig {
  platform: IommuPlatform;
  V3: DMA_IOMMU_INTERFACE_V3;
  sim: SimulatedBackend;
}

export function simRig(simulator: SimulatedBackendOptions = {}, options: Omit<OpenOptions, 'backend' | 'simulator'> = {}): Rig {
  const platform = openPlatform({ ...options, backend: 'sim', simulator });
  const iface = IoGetIommuInterfaceEx(DMA_IOMMU_INTERFACE_EX_VERSION_3, 0n, { platform });
  if (iface.Version !== 3) throw new Error('V3 expected');
  return { platform, V3: iface.V3, sim: platform.backend as SimulatedBackend };
}

/** `fn` throws an IommuError with `code` (and `.argument` when given); returns it. */
export function expectIommu(fn: () => unknown, code: string, argument?: string): IommuError {
  let err: unknown = null;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code}`).toBeInstanceOf(IommuError);
  expect((err as IommuError).code).toBe(code);
  if (argument !== undefined) expect((err as IommuError).argument).toBe(argument);
  return err as IommuError;
}
