/** The set-up every figure runs on: a platform, the V2 table, a domain with a device attached. */
import {
  DMA_IOMMU_INTERFACE_EX_VERSION_2,
  type DMA_IOMMU_INTERFACE_V2,
  DomainTypeTranslate,
  IoGetIommuInterfaceEx,
  type IommuDmaDevice,
  type IommuDmaDomain,
  type IommuPlatform,
  openPlatform,
} from '../lib/index.js';

export interface Lab {
  readonly platform: IommuPlatform;
  readonly V2: DMA_IOMMU_INTERFACE_V2;
  readonly domain: IommuDmaDomain;
  readonly device: IommuDmaDevice;
}

/** A DomainTypeTranslate domain with `bdf` attached, on `platform` (default: a new simulated one). */
export function openLab(bdf: string, platform: IommuPlatform = openPlatform({ backend: 'simulated' })): Lab {
  const iface = IoGetIommuInterfaceEx(DMA_IOMMU_INTERFACE_EX_VERSION_2, 0n, { platform });
  if (iface.Version !== 2) throw new Error('expected the V2 table');
  const V2 = iface.V2;
  const pdo = platform.findDevice(bdf);
  if (!pdo) throw new Error(`no device ${bdf}`);
  const dev = V2.CreateDevice(pdo);
  const domain = V2.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
  V2.AttachDeviceEx(domain, dev);
  return { platform, V2, domain, device: dev };
}
