/**
 * What each IOMMU model's Linux driver tells and enforces, measured under `dma-iommu vm --iommu`
 * (QEMU 7.2, Linux 6.12): one table for the native backends (lib/backend/native/faults.ts) and the
 * simulator's profiles (lib/backend/simulated/machine.ts), so the two cannot drift apart.
 */
import type { FaultRecordDetails, IommuModelKind } from './contract.js';

/** What each IOMMU driver's fault line tells (BackendCapabilities.faultDetails); native/kmsg.ts has the formats. */
export const FAULT_DETAILS: Readonly<Record<IommuModelKind, FaultRecordDetails>> = {
  vtd: { direction: true, reasonCodes: true, address: 'page' },
  virtio: { direction: false, reasonCodes: true, address: 'exact' },
  amd: { direction: true, reasonCodes: false, address: 'exact' },
  smmuv3: { direction: true, reasonCodes: true, address: 'exact' },
  // an IOMMU we cannot name: promise nothing beyond what every format has
  unknown: { direction: false, reasonCodes: false, address: 'page' },
};

/**
 * BackendCapabilities.writeOnlyMappings: virtio-iommu maps with VIRTIO_IOMMU_MAP_F_WRITE alone and
 * AMD-Vi's page table sets IW without IR, and QEMU checks reads against both (measured: the device
 * read zeros through a write-only map); VT-d and SMMUv3 cannot express write-only (readable).
 */
export const WRITE_ONLY_MAPPINGS: Readonly<Record<IommuModelKind, 'readable' | 'enforced'>> = {
  vtd: 'readable',
  virtio: 'enforced',
  amd: 'enforced',
  smmuv3: 'readable',
  unknown: 'readable',
};
