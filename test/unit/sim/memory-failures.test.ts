import { describe, expect, it } from 'vitest';
import { SimulatedBackend } from '../../../lib/backend/simulated/index.js';
import { BackendError } from '../../../lib/errors.js';
import { E, EDU0, expectErrno, GiB, MiB, mappedRig, rig, run, RW } from './helpers.js';

describe('allocateMemory', () => {
  it('page-aligned, physically contiguous PA ranges; bytes IS the RAM', () => {
    const sim = new SimulatedBackend();
    const a = sim.allocateMemory(10000n);
    expect(a.size).toBe(12288n); // rounded to pages
    expect(a.bytes).toBeInstanceOf(Uint8Array);
    expect(a.bytes!.length).toBe(12288);
    const pa = a.pageAddress(0);
    expect(pa % 4096n).toBe(0n);
    expect(a.pageAddress(2)).toBe(pa + 0x2000n);
    expect(a.runs(0x10n, 0x2000n)).toEqual([{ pa: pa + 0x10n, length: 0x2000n }]);
    expect(a.runs(0n, 0n)).toEqual([]);
    expect(() => a.runs(0n, 0x4000n)).toThrow(RangeError);
    expect(() => a.pageAddress(3)).toThrow(RangeError);
    a.write(0x1000n, new Uint8Array([1, 2, 3]));
    expect(a.bytes!.subarray(0x1000, 0x1003)).toEqual(new Uint8Array([1, 2, 3]));
    expect(a.read(0x1001n, 2)).toEqual(new Uint8Array([2, 3]));
    const b = sim.allocateMemory(1n);
    expect(b.pageAddress(0) >= pa + 0x3000n || b.pageAddress(0) + 0x1000n <= pa).toBe(true);
  });

  it('hugePages aligns the PA to 2 MiB', () => {
    const sim = new SimulatedBackend();
    sim.allocateMemory(0x1000n);
    const h = sim.allocateMemory(0x1000n, { hugePages: true });
    expect(h.pageAddress(0) % (2n * MiB)).toBe(0n);
    expect(h.size).toBe(2n * MiB);
  });

  it('lazy allocations: no view, sparse pages, read/write work, untouched costs nothing', () => {
    const sim = new SimulatedBackend();
    const big = sim.allocateMemory(16n * GiB, { lazy: true });
    expect(big.bytes).toBeNull();
    expect(big.read(8n * GiB, 4)).toEqual(new Uint8Array(4));
    big.write(8n * GiB - 2n, new Uint8Array([1, 2, 3, 4]));
    expect(big.read(8n * GiB - 2n, 4)).toEqual(new Uint8Array([1, 2, 3, 4]));
    const info = sim.inspect().memory.allocations.find((m) => m.lazy)!;
    expect(info.touchedPages).toBe(2);
    expect(info.size).toBe('0x400000000');
    // non-lazy above 1 GiB is refused; beyond RAM is ENOMEM
    expectErrno(() => sim.allocateMemory(2n * GiB), 'EINVAL');
    expectErrno(() => sim.allocateMemory(100n * GiB, { lazy: true }), 'ENOMEM');
    expectErrno(() => sim.allocateMemory(0n), 'EINVAL');
    expect(() => sim.allocateMemory(4096 as never)).toThrow(TypeError);
  });

  it('free(): EBUSY while mapped, idempotent after, PA reused zeroed', () => {
    const { sim, dom } = rig();
    const a = sim.allocateMemory(0x2000n);
    a.bytes!.fill(0xff);
    sim.map(dom, 0x1000n, a.runs(0x1000n, 0x1000n), RW);
    const e = expectErrno(() => a.free(), 'EBUSY');
    expect(e.message).toContain('IOMMU-mapped');
    sim.unmap(dom, 0x1000n, 0x1000n);
    a.free();
    a.free();
    expect(a.freed).toBe(true);
    expectErrno(() => a.read(0n, 1), 'EINVAL');
    const b = sim.allocateMemory(0x2000n);
    expect(b.pageAddress(0)).toBe(0x100000n);
    expect(b.bytes!.every((x) => x === 0)).toBe(true);
  });

  it('an allocation mapped twice (two domains) stays busy until both are gone', () => {
    const sim = new SimulatedBackend();
    const d1 = sim.allocDomain('translate');
    const d2 = sim.allocDomain('passthrough');
    const a = sim.allocateMemory(0x1000n);
    sim.map(d1, 0x1000n, a.runs(0n, 0x1000n), RW);
    sim.map(d2, a.pageAddress(0), a.runs(0n, 0x1000n), RW);
    sim.freeDomain(d1);
    expectErrno(() => a.free(), 'EBUSY');
    sim.unmap(d2, 0n, (1n << 64n) - 1n);
    a.free();
  });

  it('DMA reaches lazy memory through a mapping, and the page materializes', () => {
    const { sim, dom } = rig();
    const lazy = sim.allocateMemory(2n * GiB, { lazy: true, hugePages: true });
    sim.map(dom, 1n * GiB, lazy.runs(0n, 2n * GiB), RW);
    expect(sim.inspect().domains[0].pageTable!.leaves2M + sim.inspect().domains[0].pageTable!.leaves1G * 512).toBe(1024);
    expect(sim.dmaWrite(EDU0, 1n * GiB + 0x12345n, new Uint8Array([42])).ok).toBe(true);
    expect(lazy.read(0x12345n, 1)).toEqual(new Uint8Array([42]));
    expect(sim.inspect().memory.allocations[0].touchedPages).toBe(1);
  });
});

describe('failNth fault injection', () => {
  it('fails the n-th next leaf operation once, before it changes anything', () => {
    const { sim, dom } = rig();
    const mem = sim.allocateMemory(0x3000n);
    sim.failNth(2, E.ENOMEM);
    sim.map(dom, 0x1000n, mem.runs(0n, 0x1000n), RW); // 1st: fine
    const err = expectErrno(() => sim.map(dom, 0x2000n, mem.runs(0x1000n, 0x1000n), RW), 'ENOMEM', 'IOMMU_IOAS_MAP');
    expect(err.message).toContain('injected');
    expect(sim.translate(dom, 0x2000n)).toBeNull();
    sim.map(dom, 0x2000n, mem.runs(0x1000n, 0x1000n), RW); // once only
    expect(sim.inspect().counters.errors.ENOMEM).toBe(1);
  });

  it('can target one operation by method or syscall name; negative errnos accepted', () => {
    const { sim, dom, dev } = rig();
    const mem = sim.allocateMemory(0x3000n);
    sim.failNth(1, -E.EIO, 'IOMMU_IOAS_UNMAP');
    sim.failNth(2, E.EBUSY, 'attach');
    sim.map(dom, 0x1000n, mem.runs(0n, 0x1000n), RW); // not counted
    sim.geometry(dom);
    expectErrno(() => sim.unmap(dom, 0x1000n, 0x1000n), 'EIO');
    expect(sim.unmap(dom, 0x1000n, 0x1000n)).toBe(0x1000n);
    sim.detach(dev);
    sim.attach(dom, dev); // 1st attach
    sim.detach(dev);
    expectErrno(() => sim.attach(dom, dev), 'EBUSY');
    expect(sim.geometry(dom).alignment).toBe(1n); // the failed attach did not attach
    expect(sim.inspect().injections).toEqual([]);
    expect(() => sim.failNth(0, E.EIO)).toThrow(TypeError);
    expect(() => sim.failNth(1, E.EIO, 'nope')).toThrow(RangeError);
    sim.failNth(5, E.EIO);
    expect(sim.inspect().injections).toEqual([{ remaining: 5, errno: 'EIO', op: null }]);
    sim.clearFailures();
    expect(sim.inspect().injections).toEqual([]);
  });

  it('a sweep over a whole sequence: every injected failure leaves the state as before the call', () => {
    type Ctx = { dev: number; dom: number; mem: ReturnType<SimulatedBackend['allocateMemory']> | null };
    const steps: Array<(sim: SimulatedBackend, c: Ctx) => void> = [
      (sim, c) => void (c.dev = sim.openDevice(EDU0)),
      (sim, c) => void (c.dom = sim.allocDomain('translate')),
      (sim, c) => void (c.mem = sim.allocateMemory(0x4000n)),
      (sim, c) => sim.attach(c.dom, c.dev),
      (sim, c) => sim.map(c.dom, 0x10000n, c.mem!.runs(0n, 0x2000n), RW),
      (sim, c) => sim.map(c.dom, 0x20000n, c.mem!.runs(0x2000n, 0x2000n), RW),
      (sim, c) => void sim.unmap(c.dom, 0x10000n, 0x2000n),
      (sim, c) => void sim.geometry(c.dom),
      (sim, c) => sim.detach(c.dev),
      (sim, c) => void sim.unmap(c.dom, 0n, (1n << 64n) - 1n),
      (sim, c) => sim.freeDomain(c.dom),
      (_sim, c) => c.mem!.free(),
    ];
    const state = (sim: SimulatedBackend): string => {
      const i = sim.inspect();
      return JSON.stringify({ d: i.domains, v: i.devices, m: i.memory });
    };
    let failures = 0;
    for (let n = 1; n <= steps.length; n++) {
      const sim = new SimulatedBackend();
      const c: Ctx = { dev: 0, dom: 0, mem: null };
      sim.failNth(n, E.ENOMEM);
      for (const step of steps) {
        const before = state(sim);
        try {
          step(sim, c);
        } catch (e) {
          expect(e).toBeInstanceOf(BackendError);
          expect((e as BackendError).errno).toBe(-E.ENOMEM);
          expect(state(sim), `injection ${n}`).toBe(before);
          expect(sim.verifyPageTables()).toBeNull();
          failures++;
          break;
        }
      }
    }
    expect(failures).toBe(steps.length - 1); // every step but the memory's own free() is a leaf op
  });
});

describe('atomicity and bad input', () => {
  it('failed maps and unmaps leave the domain exactly as before', () => {
    const { sim, dom, mem } = mappedRig(4n * MiB, [
      [0x200000n, 0n, 2n * MiB, RW],
      [0x1000n, 2n * MiB, 0x3000n, RW],
    ], { memory: { hugePages: true } });
    const before = JSON.stringify(sim.inspect());
    const attempts: Array<() => unknown> = [
      () => sim.map(dom, 0x0n, mem.runs(0n, 0x2000n), RW), // overlaps the 0x1000 area
      () => sim.map(dom, 0x3ff000n, mem.runs(0n, 0x2000n), RW), // overlaps the huge area's tail
      () => sim.map(dom, 0xfedff000n, mem.runs(0n, 0x2000n), RW), // into the MSI window
      () => sim.map(dom, 0x800000n, [...mem.runs(0n, 0x1000n), { pa: 0xc0000000n, length: 0x1000n }], RW), // EFAULT on run 2
      () => sim.map(dom, 0x800000n, [...mem.runs(0n, 0x1000n), { pa: 0n, length: 0n }], RW),
      () => sim.map(dom, 0x800000n, mem.runs(0n, 0x1000n), 0),
      () => sim.map(dom, 0x800000n, [{ pa: 1n, length: 'x' }] as never, RW),
      () => sim.unmap(dom, 0x200000n, 0x1000n),
      () => sim.unmap(dom, 0x1000n, 0x200000n),
      () => sim.unmap(dom, 0x600000n, 0x1000n),
      () => sim.unmap(dom, 0x1000n, 0n),
      () => sim.unmap(dom, 0x1000n, -5n),
      () => sim.attach(dom, 12345),
      () => sim.attachPasid(dom, 1, 1),
    ];
    for (const a of attempts) {
      expect(a).toThrow();
      expect(JSON.stringify({ ...sim.inspect(), counters: null })).toBe(JSON.stringify({ ...JSON.parse(before), counters: null }));
    }
    expect(mem.freed).toBe(false);
    expect(sim.inspect().memory.allocations[0].mappedPages).toBe(512 + 3);
  });

  it('non-numbers, negatives and garbage never crash or corrupt', () => {
    const { sim, dom } = rig();
    const bad: unknown[] = [undefined, null, '1', 1.5, NaN, {}, [], Symbol('x'), -1n, 1n << 70n];
    for (const v of bad) {
      expect(() => sim.map(v as never, 0x1000n, run(0x100000n, 0x1000n), RW)).toThrow();
      expect(() => sim.map(dom, v as never, run(0x100000n, 0x1000n), RW)).toThrow();
      expect(() => sim.map(dom, 0x1000n, v as never, RW)).toThrow();
      expect(() => sim.map(dom, 0x1000n, run(0x100000n, 0x1000n), v as never)).toThrow();
      expect(() => sim.unmap(dom, v as never, 0x1000n)).toThrow();
      expect(() => sim.attach(dom, v as never)).toThrow();
      expect(() => sim.openDevice(v as never)).toThrow();
      expect(() => sim.allocDomain(v as never)).toThrow();
      expect(() => sim.geometry(v as never)).toThrow();
    }
    expect(sim.inspect().domains[0].areaCount).toBe(0);
    expect(sim.verifyPageTables()).toBeNull();
    // every error is either a TypeError or a BackendError with an errno
    const errs: unknown[] = [];
    for (const v of bad) {
      try {
        sim.map(dom, v as never, run(0x100000n, 0x1000n), RW);
      } catch (e) {
        errs.push(e);
      }
    }
    for (const e of errs) expect(e instanceof TypeError || e instanceof BackendError).toBe(true);
  });

  it('counters count ops and errors by errno name', () => {
    const { sim, dom } = rig();
    expect(() => sim.unmap(dom, 0x1000n, 0x1000n)).toThrow();
    expect(() => sim.unmap(dom, 0x1000n, 0x1000n)).toThrow();
    const c = sim.inspect().counters;
    expect(c.ops.unmap).toBe(2);
    expect(c.ops.allocDomain).toBe(1);
    expect(c.errors.ENOENT).toBe(2);
    expect(JSON.parse(JSON.stringify(sim.inspect()))).toBeTruthy();
  });
});
