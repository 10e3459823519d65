/** A simulated platform and its V3 table for the core's focused tests. */
import {
  DMA_IOMMU_INTERFACE_EX_VERSION_3,
  IoGetIommuInterfaceEx,
  SimulatedBackend,
  openPlatform,
  type DMA_IOMMU_INTERFACE_V3,
  type IommuPlatform,
  type OpenOptions,
  type SimulatedBackendOptions,
} from '../../../lib/index.js';

export { expectIommu } from '../../support/expect-error.js';

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
