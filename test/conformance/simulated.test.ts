import { openPlatform } from '../../lib/index.js';
import { describeConformance } from './suite.js';

// The default simulated machine mirrors the QEMU VM: two edu devices, each in its own group.
describeConformance('simulated backend', () => openPlatform({ backend: 'sim' }), {
  devices: ['0000:00:03.0', '0000:00:04.0'],
});
