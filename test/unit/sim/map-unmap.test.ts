import { describe, expect, it } from 'vitest';
import { SimulatedBackend } from '../../../lib/backend/simulated/index.js';
import { expectErrno, GiB, MiB, mappedRig, rig, run, RW } from './helpers.js';

const U64_MAX = (1n << 64n) - 1n;

// The backend contract (EEXIST, EINVAL, EFAULT, ENOENT, unmap-all, free while mapped, ...) is
// checked once for every backend in test/contract/suite.ts; these are the simulator's own cases
// (page tables, inspect, its RAM model, the unattached 64-bit space, argument types).
describe('map: iommufd IOMMU_IOAS_MAP semantics', () => {
  it('maps an area and reports it through inspect and translate', () => {
    const { sim, dom, mem } = mappedRig(64n * 1024n, [[0x100000n, 0n, 0x4000n, RW]]);
    expect(sim.translate(dom, 0x100000n)).toEqual({ pa: mem.pageAddress(0), perms: RW, level: 1 });
    expect(sim.translate(dom, 0x103abcn)).toEqual({ pa: mem.pageAddress(3) + 0xabcn, perms: RW, level: 1 });
    expect(sim.translate(dom, 0x104000n)).toBeNull();
    const d = sim.inspect().domains[0];
    expect(d.areaCount).toBe(1);
    expect(d.areas).toEqual([
      { iova: '0x100000', length: '0x4000', perms: RW, runs: [{ pa: `0x${mem.pageAddress(0).toString(16)}`, length: '0x4000' }] },
    ]);
  });

  it('EEXIST against a huge (2 MiB leaf) area, from inside it', () => {
    const { sim, dom, mem } = mappedRig(2n * MiB, [[0x400000n, 0n, 2n * MiB, RW]], { memory: { hugePages: true } });
    expectErrno(() => sim.map(dom, 0x4ff000n, mem.runs(0n, 0x1000n), RW), 'EEXIST');
  });

  it('EINVAL: zero length, no runs, a misaligned PA; EOPNOTSUPP for unknown perm bits', () => {
    const { sim, dom } = rig();
    const mem = sim.allocateMemory(1n * MiB);
    const pa = mem.pageAddress(0);
    expectErrno(() => sim.map(dom, 0x1000n, run(pa, 0n), RW), 'EINVAL');
    expectErrno(() => sim.map(dom, 0x1000n, [], RW), 'EINVAL');
    expectErrno(() => sim.map(dom, 0x1000n, run(pa + 0x10n, 0x1000n), RW), 'EINVAL');
    expectErrno(() => sim.map(dom, 0x1000n, run(pa, 0x1000n), 4), 'EOPNOTSUPP');
    expect(sim.inspect().domains[0].areaCount).toBe(0);
  });

  it('EOVERFLOW when iova+length wraps 2^64, or iova/length reach 2^64-1', () => {
    const sim = new SimulatedBackend();
    const dom = sim.allocDomain('translate'); // unattached: the whole 64-bit space, alignment 1
    const mem = sim.allocateMemory(1n * MiB);
    const pa = mem.pageAddress(0);
    expectErrno(() => sim.map(dom, U64_MAX - 0xfffn, run(pa, 0x2000n), RW), 'EOVERFLOW');
    expectErrno(() => sim.map(dom, U64_MAX, run(pa, 0x1000n), RW), 'EOVERFLOW');
    expectErrno(() => sim.unmap(dom, U64_MAX - 0xfffn, 0x2000n), 'EOVERFLOW');
    // the last page of the space is mappable before attach
    sim.map(dom, U64_MAX - 0xfffn, run(pa, 0x1000n), RW);
    expect(sim.unmap(dom, U64_MAX - 0xfffn, 0x1000n)).toBe(0x1000n);
    // attached: overflow is still checked before the range
    const dev = sim.openDevice('0000:00:03.0');
    sim.attach(dom, dev);
    expectErrno(() => sim.map(dom, U64_MAX - 0xfffn, run(pa, 0x2000n), RW), 'EOVERFLOW');
  });

  it('EFAULT when a PA is not RAM (PCI hole, above RAM)', () => {
    const { sim, dom } = rig();
    expectErrno(() => sim.map(dom, 0x1000n, run(0xc0000000n, 0x1000n), RW), 'EFAULT');
    expectErrno(() => sim.map(dom, 0x1000n, run(64n * GiB, 0x1000n), RW), 'EFAULT');
    expectErrno(() => sim.map(dom, 0x1000n, run(0xbffff000n, 0x2000n), RW), 'EFAULT', 'IOMMU_IOAS_MAP');
  });

  it('ENOENT for an unknown domain handle; TypeError for non-bigint arguments', () => {
    const { sim, dom } = rig();
    const pa = sim.allocateMemory(4096n).pageAddress(0);
    expectErrno(() => sim.map(9999, 0x1000n, run(pa, 0x1000n), RW), 'ENOENT');
    expectErrno(() => sim.map(0, 0x1000n, run(pa, 0x1000n), RW), 'ENOENT');
    expectErrno(() => sim.unmap(9999, 0x1000n, 0x1000n), 'ENOENT');
    expect(() => sim.map(dom, 0x1000 as unknown as bigint, run(pa, 0x1000n), RW)).toThrow(TypeError);
    expect(() => sim.map(dom, 0x1000n, [{ pa: Number(pa), length: 4096 }] as never, RW)).toThrow(TypeError);
    expect(() => sim.map(dom, 0x1000n, null as never, RW)).toThrow(TypeError);
    expect(() => sim.map('1' as never, 0x1000n, run(pa, 0x1000n), RW)).toThrow(TypeError);
    expect(() => sim.unmap(dom, 0x1000n, 4096 as never)).toThrow(TypeError);
    expectErrno(() => sim.map(dom, -0x1000n, run(pa, 0x1000n), RW), 'EINVAL');
    expectErrno(() => sim.map(dom, 0x1000n, run(-pa, 0x1000n), RW), 'EINVAL');
    expectErrno(() => sim.unmap(dom, -1n, 0x1000n), 'EINVAL');
    expect(sim.inspect().domains[0].areaCount).toBe(0);
  });

  it('one area can be several runs; translations follow the runs', () => {
    const { sim, dom } = rig();
    const a = sim.allocateMemory(0x2000n);
    const b = sim.allocateMemory(0x3000n);
    sim.map(dom, 0x10000n, [...a.runs(0n, 0x2000n), ...b.runs(0n, 0x3000n)], RW);
    expect(sim.translate(dom, 0x11000n)?.pa).toBe(a.pageAddress(1));
    expect(sim.translate(dom, 0x12000n)?.pa).toBe(b.pageAddress(0));
    expect(sim.translate(dom, 0x14fffn)?.pa).toBe(b.pageAddress(2) + 0xfffn);
  });
});

describe('unmap: iommufd IOMMU_IOAS_UNMAP semantics', () => {
  it('ENOENT for a byte-granular cut (iommufd byte semantics); the page tables keep both areas', () => {
    const { sim, dom } = mappedRig(0x10000n, [
      [0x100000n, 0n, 0x4000n, RW],
      [0x200000n, 0n, 0x4000n, RW],
    ]);
    expectErrno(() => sim.unmap(dom, 0x100000n, 0x1000n), 'ENOENT', 'IOMMU_IOAS_UNMAP');
    expectErrno(() => sim.unmap(dom, 0x100001n, 0x4000n), 'ENOENT');
    expectErrno(() => sim.unmap(dom, 0x100000n, 0x3fffn), 'ENOENT');
    expect(sim.inspect().domains[0].areaCount).toBe(2);
    expect(sim.translate(dom, 0x100000n)).not.toBeNull();
    expect(sim.translate(dom, 0x203000n)).not.toBeNull();
  });

  it('an unaligned range that still contains whole areas unmaps them (iommufd byte semantics)', () => {
    const { sim, dom } = mappedRig(0x10000n, [[0x300000n, 0n, 0x1000n, RW]]);
    expect(sim.unmap(dom, 0x2fffffn, 0x1002n)).toBe(0x1000n);
  });

  it('after unmap the pages are gone from the page tables', () => {
    const { sim, dom } = mappedRig(0x2000n, [[0x5000n, 0n, 0x2000n, RW]]);
    expect(sim.unmap(dom, 0x5000n, 0x2000n)).toBe(0x2000n);
    expect(sim.translate(dom, 0x5000n)).toBeNull();
    expect(sim.translate(dom, 0x6000n)).toBeNull();
  });
});

describe('mapping before any device is attached (iommufd: alignment 1, full 64-bit space)', () => {
  it('accepts unaligned and beyond-aperture areas, then attach fails with EADDRINUSE', () => {
    const sim = new SimulatedBackend();
    const dom = sim.allocDomain('translate');
    const dev = sim.openDevice('0000:00:03.0');
    const mem = sim.allocateMemory(0x4000n);
    const pa = mem.pageAddress(0);
    sim.map(dom, 0x1234n, run(pa + 0x234n, 0x100n), RW);
    sim.map(dom, 0x1334n, run(pa + 0x334n, 0x10n), RW); // same page, no overlap
    expectErrno(() => sim.map(dom, 0x1300n, run(pa, 0x40n), RW), 'EEXIST');
    expectErrno(() => sim.attach(dom, dev), 'EADDRINUSE');
    expect(sim.unmap(dom, 0x1234n, 0x110n)).toBe(0x110n);
    sim.map(dom, 1n << 50n, run(pa, 0x1000n), RW);
    expectErrno(() => sim.attach(dom, dev), 'EADDRINUSE');
    expect(sim.unmap(dom, 1n << 50n, 0x1000n)).toBe(0x1000n);
    sim.map(dom, 0xfee00000n, run(pa, 0x1000n), RW); // the MSI window is not reserved yet
    expectErrno(() => sim.attach(dom, dev), 'EADDRINUSE');
    sim.unmap(dom, 0xfee00000n, 0x1000n);
    sim.map(dom, 0x100000n, run(pa, 0x4000n), RW);
    sim.attach(dom, dev);
    expect(sim.translate(dom, 0x101000n)?.pa).toBe(pa + 0x1000n);
  });
});
