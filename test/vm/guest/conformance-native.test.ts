/**
 * The conformance suite (test/conformance/suite.ts), unchanged, against the native backends on
 * the real kernel inside a `dma-iommu vm` guest: on the type1 kernel the VFIO type1 backend; on the
 * iommufd kernel both the iommufd backend and (the legacy container is built in too) type1.
 * Outside a guest the whole file is reported as skipped, never as passed.
 */
import { existsSync } from 'node:fs';
import { describe } from 'vitest';
import { openPlatform } from '../../../lib/index.js';
import { describeConformance } from '../../conformance/suite.js';
import { eduDevices, inGuest } from './guest-env.js';

// DMA_IOMMU_VM_CONFORMANCE=iommufd (or vfio-type1) narrows the run to one backend: `vm test` sets it
// for the further IOMMU models on the iommufd kernel, whose type1 backend the type1 kernel covers.
const only = process.env.DMA_IOMMU_VM_CONFORMANCE;
const backends: Array<'iommufd' | 'vfio-type1'> = [];
if (inGuest && existsSync('/dev/iommu') && (!only || only === 'iommufd')) backends.push('iommufd');
if (inGuest && existsSync('/dev/vfio/vfio') && (!only || only === 'vfio-type1')) backends.push('vfio-type1');

describe.runIf(inGuest && backends.length > 0 && eduDevices.length >= 2)('native conformance', () => {
  for (const backend of backends) {
    describeConformance(`${backend} backend (real kernel)`, () => openPlatform({ backend }), {
      devices: [eduDevices[0], eduDevices[1]],
      faultTimeoutMs: 10_000,
    });
  }
});
