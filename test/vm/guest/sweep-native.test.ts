/**
 * The issue-9 sweeps against the native backends on the real kernel inside a `dma-iommu vm` guest:
 * the same member × bad-value matrix as the host (test/sweep/matrix.ts) and the removal sequence
 * (test/sweep/removal.ts), where removal is simulated by deleting handles out of order (a real
 * hot-unplug during a script is test/vm/guest/hotplug-native.test.ts, in a --hotplug guest). The matrix runs once per kernel on its own backend (type1
 * kernel: VFIO type1; iommufd kernel: iommufd; ~5 min each under TCG, and both on the iommufd
 * kernel overran `vm test`'s 15-minute guest limit); the removal sequence on every backend there.
 * Outside a guest the file is reported as skipped, never as passed.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openPlatform } from '../../../lib/index.js';
import { rows } from '../../sweep/matrix.js';
import { outOfOrderDeletes, type RemovalDriver } from '../../sweep/removal.js';
import { sweepMatrix, sweepRemoval } from '../../sweep/run.js';
import type { WorldFactory } from '../../sweep/world.js';
import { eduDevices, inGuest } from './guest-env.js';

const backends: Array<'iommufd' | 'vfio-type1'> = [];
if (inGuest && existsSync('/dev/iommu')) backends.push('iommufd');
if (inGuest && existsSync('/dev/vfio/vfio')) backends.push('vfio-type1');

describe.runIf(inGuest && backends.length > 0 && eduDevices.length >= 2)('issue-9 sweeps on the native backends', () => {
  for (const backend of backends) {
    const factory: WorldFactory = {
      name: backend,
      backend: 'native',
      kind: backend,
      open: () => openPlatform({ backend, onHandlerError: () => undefined }),
      openForeign: () => openPlatform({ backend, onHandlerError: () => undefined }),
      bdf: eduDevices[0],
      foreignBdf: eduDevices[1],
    };
    if (backend === backends[0]) it(`${backend}: ${rows().length} bad-value rows, each an IommuError with a documented code, state intact, follow-up OK (KNOWN_DEFECTS rows still failing)`, async () => {
      const r = await sweepMatrix(factory);
      expect(r.unexpected, 'rows that misbehave').toEqual([]);
      expect(r.fixed, 'KNOWN_DEFECTS rows that now pass: remove them from the list').toEqual([]);
      expect(r.stale, 'KNOWN_DEFECTS entries matching no row').toEqual([]);
    }, 1_800_000);

    const driver: RemovalDriver = {
      name: backend,
      backend: 'native',
      kind: backend,
      open: () => openPlatform({ backend, onHandlerError: () => undefined }),
      bdf: eduDevices[0],
      remove: (p, life) => outOfOrderDeletes(p, life),
      readd: () => undefined,
      goneCodes: [],
    };
    it(`${backend}: removal sequence (out-of-order deletes refused, full clean-up, close, the device usable again)`, async () => {
      const r = await sweepRemoval(driver);
      expect(r.unexpected, 'scenarios that misbehave').toEqual([]);
      expect(r.fixed, 'KNOWN_DEFECTS scenarios that now pass: remove them from the list').toEqual([]);
      expect(r.stale, 'KNOWN_DEFECTS entries matching no scenario').toEqual([]);
    }, 600_000);
  }
});
