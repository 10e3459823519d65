/** A simulated platform and its V3 table for the core's focused tests. */
import {
  DMA_IOMMU_INTERFACE_EX_VERSION_2,
  DMA_IOMMU_INTERFACE_EX_VERSION_3,
  IoGetIommuInterfaceEx,
  SimulatedBackend,
  openPlatform,
  type DMA_IOMMU_INTERFACE_V2,
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

/** `fn` over a fresh simulated platform's V2 table; the platform is closed afterwards (also when `fn` throws). */
export function withSimV2<T>(fn: (V2: DMA_IOMMU_INTERFACE_V2, platform: IommuPlatform) => T): T {
  const platform = openPlatform({ backend: 'sim' });
  try {
    const iface = IoGetIommuInterfaceEx(DMA_IOMMU_INTERFACE_EX_VERSION_2, 0n, { platform });
    if (iface.Version !== 2) throw new Error('V2 expected');
    return fn(iface.V2, platform);
  } finally {
    platform.close();
  }
}
