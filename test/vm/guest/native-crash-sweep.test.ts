/**
 * The addon crash sweep (test/unit/native/crash-sweep.ts) inside a `dma-iommu vm` guest, where the
 * handles are real: an iommufd context with a bound, attached edu device and a live IOAS mapping,
 * a type1 container and group with a device fd and a live DMA mapping (whichever this kernel
 * offers). Hostile values, closed handles and freed or pinned memory against the real kernel
 * objects: no child dies by a signal, every case works or throws a documented kind.
 */
import { describe, expect, it } from 'vitest';
import { loadNative } from '../../../lib/backend/native/loader.js';
import { SWEEP_GROUPS, runSweepGroup, unexpected } from '../../unit/native/crash-sweep.js';
import { eduDevices, inGuest, kernel } from './guest-env.js';

describe.skipIf(!inGuest)(`addon crash sweep on the ${kernel} kernel (real handles, child processes)`, () => {
  for (const group of SWEEP_GROUPS) {
    it(`${group}: no signal, only documented outcomes`, () => {
      const loaded = loadNative();
      if (!loaded.ok) throw new Error(loaded.message);
      const r = runSweepGroup(loaded.path, group, 'guest', eduDevices);
      expect({ signal: r.signal, status: r.status, lastCase: r.signal || r.status ? r.lastCase : '' }, r.stderrTail).toEqual({ signal: null, status: 0, lastCase: '' });
      expect(unexpected(r)).toEqual([]);
      // the real handles were in the pool (their labels name the device nodes)
      if (group === 'wraps') expect(r.cases.some((c) => /on (iommufd:\/dev\/iommu|container:\/dev\/vfio\/vfio)/.test(c.name))).toBe(true);
    }, 600_000);
  }
});
