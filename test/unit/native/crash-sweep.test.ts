/**
 * Crash sweep of the raw addon on the host (see crash-sweep.ts): every export with hostile values in
 * every argument position, every getter and method of both wraps on every receiver, memory sizes
 * across the 4 GiB and 2^47 limits, the hot calls with hostile slots and a transferred slot buffer.
 * No child may die by a signal or exit non-zero; every case works or throws TypeError / RangeError /
 * a kernel error (errno + syscall). Without /dev/iommu here, /dev/null stands in for every handle.
 */
import { describe, expect, it } from 'vitest';
import { loadNative } from '../../../lib/backend/native/loader.js';
import { SWEEP_GROUPS, runSweepGroup, unexpected } from './crash-sweep.js';

const loaded = loadNative();

describe.skipIf(!loaded.ok)('addon crash sweep (host, child processes)', () => {
  const path = loaded.ok ? loaded.path : '';
  for (const group of SWEEP_GROUPS) {
    it(`${group}: no signal, only documented outcomes`, () => {
      const r = runSweepGroup(path, group, 'host');
      expect({ signal: r.signal, status: r.status, lastCase: r.signal || r.status ? r.lastCase : '' }, r.stderrTail).toEqual({ signal: null, status: 0, lastCase: '' });
      expect(unexpected(r)).toEqual([]);
      expect(r.cases.length).toBeGreaterThan(20);
    }, 300_000);
  }

  it('the sweep covers every export and every wrap member, and the cases that used to crash behave', () => {
    const r = runSweepGroup(path, 'memory', 'host');
    const out = new Map(r.cases.map((c) => [c.name, c.outcome]));
    // 4 GiB + 4 KiB with a view aborted the process (double free): now a clean ENOMEM; lazily it works
    expect(out.get(`allocMemory(${2n ** 32n + 4096n}n, 0, true)`)).toBe('KernelError');
    expect(out.get(`allocMemory(${2n ** 32n + 4096n}n, 0, false)`)).toBe('ok');
    expect(out.get(`allocMemory(${2n ** 32n}n, 0, true)`)).toBe('ok');
    expect(out.get(`allocMemory(${2n ** 64n - 1n}n, 0, true)`)).toBe('RangeError');
    const w = runSweepGroup(path, 'wraps', 'host');
    const wo = new Map(w.cases.map((c) => [c.name, c.outcome]));
    // getters borrowed onto the other wrap or a plain object returned garbage or crashed
    expect(wo.get('get fd on memory')).toBe('TypeError');
    expect(wo.get('get address on file:/dev/null')).toBe('TypeError');
    expect(wo.get('get buffer on object')).toBe('TypeError');
    expect(wo.get('get size on Object.create(Memory.prototype)')).toBe('TypeError');
    expect(wo.get('get fd on file:/dev/null')).toBe('ok');
    const h = runSweepGroup(path, 'hot', 'host');
    const ho = new Map(h.cases.map((c) => [c.name, c.outcome]));
    expect(ho.get('slots are zero after a call')).toBe('ok');
    for (const call of ['dmaMapHot', 'dmaUnmapHot', 'ioasMapHot', 'ioasUnmapHot']) expect(ho.get(`${call} with unwritten slots must be a TypeError`)).toBe('TypeError');
  }, 300_000);
});
