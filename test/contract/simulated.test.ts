import { SimulatedBackend } from '../../lib/backend/simulated/index.js';
import { defineContractSuite } from './suite.js';

// The default simulated machine mirrors the QEMU VM: two edu devices, each in its own group.
defineContractSuite('simulated', () => new SimulatedBackend(), { devices: ['0000:00:03.0', '0000:00:04.0'] });
