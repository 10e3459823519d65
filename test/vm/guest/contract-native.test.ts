/**
 * The contract-level suite (test/contract/suite.ts), unchanged, against the native backends on the
 * real kernel inside a `dma-iommu vm` guest: on the type1 kernel the VFIO type1 backend; on the
 * iommufd kernel both the iommufd backend and (the legacy container is built in too) type1.
 * Outside a guest the whole file is reported as skipped, never as passed.
 */
import { existsSync } from 'node:fs';
import { describe } from 'vitest';
import { createNativeBackend } from '../../../lib/backend/native/index.js';
import { defineContractSuite } from '../../contract/suite.js';
import { eduDevices, inGuest } from './guest-env.js';

const kinds: Array<'iommufd' | 'vfio-type1'> = [];
if (inGuest && existsSync('/dev/iommu')) kinds.push('iommufd');
if (inGuest && existsSync('/dev/vfio/vfio')) kinds.push('vfio-type1');

describe.runIf(inGuest && kinds.length > 0 && eduDevices.length >= 2)('native backend contract', () => {
  for (const kind of kinds) {
    defineContractSuite(`${kind} (real kernel)`, () => {
      const r = createNativeBackend(kind);
      if (!r.backend) throw new Error(r.reason);
      return r.backend;
    }, { devices: [eduDevices[0]!, eduDevices[1]!] });
  }
});
