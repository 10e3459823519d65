import { openPlatform } from '../../lib/index.js';
import { SIM_IOMMU_MODELS } from '../../lib/backend/simulated/machine.js';
import { describeConformance } from './suite.js';

// The default simulated machine mirrors the QEMU VM: two edu devices, each in its own group.
describeConformance('simulated backend', () => openPlatform({ backend: 'sim' }), {
  devices: ['0000:00:03.0', '0000:00:04.0'],
});

// The same suite on each IOMMU profile (`simulator: { iommu }`): its branches read capabilities
// (fault source, fault address and direction), never the model's name.
for (const iommu of SIM_IOMMU_MODELS.filter((m) => m !== 'vtd')) {
  describeConformance(`simulated backend, ${iommu} profile`, () => openPlatform({ backend: 'sim', simulator: { iommu } }), {
    devices: ['0000:00:03.0', '0000:00:04.0'],
  });
}
