import { describe, expect, it } from 'vitest';
import { BackendError } from '../../../lib/errors.js';
import { loadNative } from '../../../lib/backend/native/loader.js';
import { NativeMemoryPool, SYNTHETIC_PA_BASE, probePhysical } from '../../../lib/backend/native/memory.js';
import type { NativeAddon } from '../../../lib/backend/native/addon-types.js';

const addon = (loadNative() as { addon: NativeAddon }).addon;

function errno(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof BackendError) return e.errno;
    throw e;
  }
  return undefined;
}

describe('native memory: synthetic physical addresses', () => {
  const pool = new NativeMemoryPool(addon, { physicalIsReal: false, why: 'test' });

  it('gives each allocation a contiguous range in a private namespace from 4 GiB', () => {
    const a = pool.allocate(0x3000n);
    const b = pool.allocate(0x1000n);
    expect(a.pageAddress(0)).toBe(SYNTHETIC_PA_BASE);
    expect(a.runs(0n, 0x3000n)).toEqual([{ pa: SYNTHETIC_PA_BASE, length: 0x3000n }]);
    expect(a.runs(0x1800n, 0x1000n)).toEqual([{ pa: SYNTHETIC_PA_BASE + 0x1800n, length: 0x1000n }]);
    expect(b.pageAddress(0)).toBe(SYNTHETIC_PA_BASE + (2n << 20n));
    const pieces = pool.resolve([...b.runs(0n, 0x1000n), ...a.runs(0x1000n, 0x2000n)], 'test');
    expect(pieces.map((p) => [p.alloc.id, p.offset, p.length])).toEqual([
      [b.id, 0n, 0x1000n],
      [a.id, 0x1000n, 0x2000n],
    ]);
    expect(errno(() => pool.resolve([{ pa: 0x1000n, length: 0x1000n }], 'map'))).toBe(-14); // EFAULT
    a.bytes?.set([1, 2, 3], 10);
    expect([...a.read(10n, 3)]).toEqual([1, 2, 3]);
    a.write(0x2ffen, Uint8Array.from([7, 8]));
    expect([...(a.bytes as Uint8Array).subarray(0x2ffe)]).toEqual([7, 8]);
    // EBUSY while mapped: the count is the backend's (mapping.ts mapCount, from the addon's pins)
    pool.hooks = { mapCount: (x) => (x === a ? 1 : 0) };
    expect(errno(() => a.free())).toBe(-16);
    pool.hooks = {};
    a.free();
    a.free();
    expect(a.freed).toBe(true);
    expect(errno(() => pool.resolve(a.runs.length ? [{ pa: SYNTHETIC_PA_BASE, length: 0x1000n }] : [], 'map'))).toBe(-14);
    b.free();
  });

  it('more than this Node can view (> 4 GiB on Node 20) is ENOMEM up front, not an abort; lazily it works', () => {
    const big = (1n << 32n) + 4096n; // 4 GiB + 4 KiB aborted the process with a double free
    const before = pool.allocations.size;
    expect(errno(() => pool.allocate(big))).toBe(-12);
    expect(pool.allocations.size).toBe(before);
    const l = pool.allocate(big, { lazy: true });
    expect(l.bytes).toBeNull();
    l.write(big - 1n, Uint8Array.from([5]));
    expect([...l.read(big - 1n, 1)]).toEqual([5]);
    l.free();
    // the addon itself refuses the view cleanly too (no pool in front of it)
    expect(errno(() => addon.allocMemory(big, 0, true))).toBe(-12);
  });

  it('lazy allocations have no view', () => {
    const l = pool.allocate(2n << 30n, { lazy: true });
    expect(l.bytes).toBeNull();
    l.write((2n << 30n) - 1n, Uint8Array.from([5]));
    expect([...l.read((2n << 30n) - 1n, 1)]).toEqual([5]);
    l.free();
  });
});

describe('native memory: real physical addresses (root here)', () => {
  const info = probePhysical(addon);
  it.runIf(info.physicalIsReal)('reads PFNs, coalesces contiguous pages into runs, and maps PAs back to VA', () => {
    const pool = new NativeMemoryPool(addon, info);
    const a = pool.allocate(64n * 4096n);
    const runs = a.runs(0n, a.size);
    expect(runs.reduce((s, r) => s + r.length, 0n)).toBe(a.size);
    for (let i = 1; i < runs.length; i++) expect(runs[i].pa).not.toBe(runs[i - 1].pa + runs[i - 1].length); // maximal runs
    expect(runs[0].pa).toBe(a.pageAddress(0));
    const back = pool.resolve(runs, 'test');
    expect(back).toEqual([{ alloc: a, offset: 0n, length: a.size }]); // one VA-contiguous piece
    // a lazy allocation learns its PAs on demand
    const l = pool.allocate(1n << 30n, { lazy: true });
    const r = l.runs(0x100000n, 0x2000n);
    expect(r.reduce((s, x) => s + x.length, 0n)).toBe(0x2000n);
    expect(pool.resolve(r, 'test').map((p) => [p.alloc, p.offset])).toEqual([[l, 0x100000n]]);
    a.free();
    l.free();
  });

  it('contiguous requests that cannot be honoured fail with ENOMEM', () => {
    const pool = new NativeMemoryPool(addon, info);
    try {
      const a = pool.allocate(1024n * 4096n, { contiguous: true });
      expect(a.runs(0n, a.size)).toHaveLength(1);
      a.free();
    } catch (e) {
      expect((e as BackendError).errno).toBe(-12);
    }
  });
});
