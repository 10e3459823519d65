import { describe, expect, it, vi } from 'vitest';
import { SimulatedBackend } from '../../../lib/backend/simulated/index.js';
import type { BackendFault } from '../../../lib/backend/contract.js';
import { EDU0, EDU1, expectErrno, GEN0, GEN1, MiB, pattern, R, mappedRig, rig, run, RW, W } from './helpers.js';

describe('DMA engine', () => {
  it('moves real bytes through a mapping into the bytes of an allocation', () => {
    const { sim, mem } = mappedRig(0x3000n, [[0x100000n, 0n, 0x3000n, RW]]);
    const data = pattern(0x1800, 7);
    expect(sim.dmaWrite(EDU0, 0x100f00n, data)).toEqual({ ok: true, bytesWritten: 0x1800 });
    expect(mem.bytes!.subarray(0xf00, 0xf00 + 0x1800)).toEqual(data);
    expect(mem.read(0xf00n, 0x1800)).toEqual(data);
    mem.bytes!.fill(0x5a, 0, 16);
    const r = sim.dmaRead(EDU0, 0x100000n, 16);
    expect(r).toEqual({ ok: true, data: new Uint8Array(16).fill(0x5a) });
    expect(sim.faultLog()).toEqual([]);
  });

  it('crosses non-contiguous runs and huge leaves correctly', () => {
    const { sim, dom } = rig();
    const a = sim.allocateMemory(2n * MiB, { hugePages: true });
    const b = sim.allocateMemory(0x1000n);
    sim.map(dom, 0x200000n, [...a.runs(0n, 2n * MiB), ...b.runs(0n, 0x1000n)], RW);
    const data = pattern(0x2000, 3);
    expect(sim.dmaWrite(EDU0, 0x3ff000n, data).ok).toBe(true);
    expect(a.bytes!.subarray(2 * 1024 * 1024 - 0x1000)).toEqual(data.subarray(0, 0x1000));
    expect(b.bytes!).toEqual(data.subarray(0x1000));
  });

  it('a DMA straddling a mapped and an unmapped page: the mapped part moves, one fault at the page address, listener called synchronously', () => {
    const { sim, dom, mem } = mappedRig(0x2000n, [
      [0x100000n, 0n, 0x1000n, RW], // only the first page
    ]);
    const seen: BackendFault[] = [];
    sim.onFault((f) => seen.push(f));
    // spans a mapped and an unmapped page: the mapped half is written, the rest dropped
    const r = sim.dmaWrite(EDU0, 0x100800n, new Uint8Array(0x1000).fill(0xee));
    expect(r.ok).toBe(false);
    expect(r.bytesWritten).toBe(0x800);
    expect(mem.bytes!.subarray(0, 0x800).every((b) => b === 0)).toBe(true);
    expect(mem.bytes!.subarray(0x800, 0x1000).every((b) => b === 0xee)).toBe(true);
    expect(mem.bytes!.subarray(0x1000).every((b) => b === 0)).toBe(true); // the unmapped page's memory is not reached
    expect(seen).toHaveLength(1); // one record per request (VT-d collapses a pending requester's faults)
    expect(seen[0]).toMatchObject({
      bdf: EDU0,
      iova: 0x101000n,
      write: true,
      kind: 'translation',
      reasonCode: 0x05,
      reason: 'PTE Write access is not set',
      source: 'simulator',
    });
    expect(seen[0].raw).toBe('DMAR: [DMA Write NO_PASID] Request device [00:03.0] fault addr 0x101000 [fault reason 0x05] PTE Write access is not set');
    expect(sim.faultLog()).toHaveLength(1);
    expect(sim.faultLog()[0]).toMatchObject({ domain: dom, requesterId: 0x18 });
    // the other way round: unmapped first, then mapped: the page AFTER the blocked one still moves
    mem.bytes!.fill(0);
    const back = sim.dmaWrite(EDU0, 0xfff00n, new Uint8Array(0x200).fill(0x77));
    expect(back).toMatchObject({ ok: false, bytesWritten: 0x100, fault: { iova: 0xff000n, write: true } });
    expect(mem.bytes!.subarray(0, 0x100).every((b) => b === 0x77)).toBe(true);
    expect(mem.bytes![0x100]).toBe(0);
    // a read of a blocked range yields zeros for the blocked part, the mapped part's bytes for the rest
    mem.bytes!.fill(0x42, 0, 0x1000);
    const rd = sim.dmaRead(EDU0, 0x100ff0n, 0x20);
    expect(rd.ok).toBe(false);
    if (rd.ok) return;
    expect(rd.bytesRead).toBe(0x10);
    expect([...rd.data]).toEqual([...new Array(0x10).fill(0x42), ...new Array(0x10).fill(0)]);
    // VT-d records the page: an unaligned first blocked byte is reported at its page address
    expect(rd.fault).toMatchObject({ iova: 0x101000n, write: false, reasonCode: 0x06, kind: 'translation' });
    const un = sim.dmaRead(EDU0, 0x200123n, 8);
    expect(!un.ok && un.fault).toMatchObject({ iova: 0x200000n, write: false, reasonCode: 0x06 });
    expect(!un.ok && [...un.data]).toEqual(new Array(8).fill(0));
    expect(seen).toHaveLength(4);
    sim.clearFaults();
    expect(sim.faultLog()).toEqual([]);
  });

  it('a DMA over several blocked pages records one fault (the first); pages between and after them move', () => {
    const { sim, dom } = rig();
    const mem = sim.allocateMemory(0x4000n);
    // pages 0 and 2 mapped read-write, page 1 read-only, page 3 unmapped, page 4 mapped
    sim.map(dom, 0x10000n, mem.runs(0n, 0x1000n), RW);
    sim.map(dom, 0x11000n, mem.runs(0x1000n, 0x1000n), R);
    sim.map(dom, 0x12000n, mem.runs(0x2000n, 0x1000n), RW);
    sim.map(dom, 0x14000n, mem.runs(0x3000n, 0x1000n), RW);
    const w = sim.dmaWrite(EDU0, 0x10800n, new Uint8Array(0x4000).fill(0x99));
    expect(w).toMatchObject({ ok: false, bytesWritten: 0x800 + 0x1000 + 0x800 });
    expect(w.fault).toMatchObject({ iova: 0x11000n, kind: 'permission', reasonCode: 0x05 });
    expect(sim.faultLog()).toHaveLength(1);
    expect(mem.bytes!.subarray(0x800, 0x1000).every((b) => b === 0x99)).toBe(true);
    expect(mem.bytes!.subarray(0x1000, 0x2000).every((b) => b === 0)).toBe(true);
    expect(mem.bytes!.subarray(0x2000, 0x3000).every((b) => b === 0x99)).toBe(true);
    expect(mem.bytes!.subarray(0x3000, 0x3800).every((b) => b === 0x99)).toBe(true);
    expect(mem.bytes!.subarray(0x3800).every((b) => b === 0)).toBe(true);
  });

  it('permission faults: a read-only mapping written; a write-only mapping is readable (Linux sets the read/present bit)', () => {
    const { sim, dom } = rig();
    const mem = sim.allocateMemory(0x2000n);
    mem.bytes!.fill(0x11);
    mem.bytes!.fill(0x22, 0x1000);
    sim.map(dom, 0x10000n, mem.runs(0n, 0x1000n), R);
    sim.map(dom, 0x11000n, mem.runs(0x1000n, 0x1000n), W);
    const w = sim.dmaWrite(EDU0, 0x10010n, new Uint8Array(4).fill(0xff));
    expect(w).toMatchObject({ ok: false, bytesWritten: 0 });
    expect(w.fault).toMatchObject({ kind: 'permission', reasonCode: 0x05, iova: 0x10000n });
    expect(mem.bytes![0x10]).toBe(0x11);
    // VT-d: __domain_mapping sets DMA_FL_PTE_PRESENT (== DMA_PTE_READ) in every PTE
    const r = sim.dmaRead(EDU0, 0x11004n, 4);
    expect(r.ok && [...r.data]).toEqual([0x22, 0x22, 0x22, 0x22]);
    // a read spanning both moves every byte
    const r2 = sim.dmaRead(EDU0, 0x10ffcn, 8);
    expect(r2.ok && [...r2.data]).toEqual([0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x22, 0x22]);
    expect(sim.faultLog()).toHaveLength(1);
    expect(sim.dmaWrite(EDU0, 0x11000n, new Uint8Array(4)).ok).toBe(true);
  });

  it('arm64 (SMMUv3): the event carries the exact input address of the first blocked access', () => {
    const { sim, mem } = mappedRig(0x1000n, [[0x100000n, 0n, 0x1000n, RW]], { sim: { arch: 'arm64' } });
    const w = sim.dmaWrite(EDU0, 0x100ff0n, new Uint8Array(0x20).fill(3));
    expect(w).toMatchObject({ ok: false, bytesWritten: 0x10, fault: { iova: 0x101000n, kind: 'translation', reasonCode: 0x10 } });
    const r = sim.dmaRead(EDU0, 0x200123n, 4);
    expect(!r.ok && r.fault).toMatchObject({ iova: 0x200123n, reasonCode: 0x10 });
    expect(!r.ok && r.fault.raw).toContain('iova: 0x200123');
    expect(mem.bytes!.subarray(0xff0).every((b) => b === 3)).toBe(true);
  });

  it('an unattached device is blocked (context entry not present); DMA above the width is beyond MGAW', () => {
    const { sim } = rig({}, false);
    const r = sim.dmaRead(EDU0, 0x1000n, 4);
    expect(!r.ok && r.fault).toMatchObject({ kind: 'translation', reasonCode: 0x02, reason: 'Present bit in context entry is clear', domain: null });
    const { sim: sim2 } = rig();
    const r2 = sim2.dmaRead(EDU0, 1n << 40n, 4);
    expect(!r2.ok && r2.fault).toMatchObject({ reasonCode: 0x04, iova: 1n << 40n });
  });

  it('faults of devices that were never opened are logged but not reported to listeners', () => {
    const sim = new SimulatedBackend();
    const listener = vi.fn();
    sim.onFault(listener);
    expect(sim.dmaRead(EDU1, 0n, 1).ok).toBe(false);
    expect(listener).not.toHaveBeenCalled();
    expect(sim.faultLog()).toHaveLength(1);
  });

  it('an unsubscribed listener is not called; a throwing listener does not break the engine', () => {
    const { sim } = rig({}, false);
    const l = vi.fn();
    const off = sim.onFault(l);
    off();
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    sim.onFault(() => {
      throw new Error('boom');
    });
    expect(sim.dmaRead(EDU0, 0n, 1).ok).toBe(false);
    expect(l).not.toHaveBeenCalled();
    expect(sim.listenerErrors).toBe(1);
    warn.mockRestore();
  });

  it('group mates share the group domain: an unattached mate translates through it', () => {
    const { sim, mem } = mappedRig(0x1000n, [[0x5000n, 0n, 0x1000n, RW]], { bdf: GEN0 });
    expect(sim.dmaWrite(GEN1, 0x5000n, new Uint8Array([1, 2, 3])).ok).toBe(true);
    expect(mem.bytes!.subarray(0, 3)).toEqual(new Uint8Array([1, 2, 3]));
  });

  it('pass-through domains: DMA address = PA, any RAM; map/unmap only record areas', () => {
    const { sim, dom } = rig({}, true, EDU0, 'passthrough');
    const mem = sim.allocateMemory(0x1000n);
    const pa = mem.pageAddress(0);
    expect(sim.dmaWrite(EDU0, pa + 4n, new Uint8Array([9, 8, 7])).ok).toBe(true);
    expect(mem.bytes!.subarray(4, 7)).toEqual(new Uint8Array([9, 8, 7]));
    // RAM that belongs to no allocation also works (sparse, zero until written)
    expect(sim.dmaRead(EDU0, 0x7000000n, 4)).toEqual({ ok: true, data: new Uint8Array(4) });
    expect(sim.dmaWrite(EDU0, 0x7000000n, new Uint8Array([1])).ok).toBe(true);
    expect(sim.dmaRead(EDU0, 0x7000000n, 1)).toEqual({ ok: true, data: new Uint8Array([1]) });
    // the PCI hole is not RAM: a bus error
    const hole = sim.dmaRead(EDU0, 0xc0000000n, 4);
    expect(!hole.ok && hole.fault).toMatchObject({ kind: 'other' });
    expect(!hole.ok && hole.fault.reasonCode).toBeUndefined();
    sim.map(dom, pa, mem.runs(0n, 0x1000n), RW);
    expectErrno(() => sim.map(dom, pa, mem.runs(0n, 0x1000n), RW), 'EEXIST');
    expect(sim.inspect().domains[0].areaCount).toBe(1);
    expect(sim.unmap(dom, pa, 0x1000n)).toBe(0x1000n);
    expect(sim.dmaRead(EDU0, pa + 4n, 3)).toEqual({ ok: true, data: new Uint8Array([9, 8, 7]) });
  });

  it('validates its arguments', () => {
    const { sim } = rig();
    expect(() => sim.dmaRead(EDU0, 1 as never, 4)).toThrow(TypeError);
    expect(() => sim.dmaRead(EDU0, 0n, -1)).toThrow(TypeError);
    expect(() => sim.dmaWrite(EDU0, 0n, [1, 2] as never)).toThrow(TypeError);
    expect(() => sim.dmaRead(EDU0, (1n << 64n) - 2n, 4)).toThrow(RangeError);
    expectErrno(() => sim.dmaRead('0000:00:09.0', 0n, 4), 'ENODEV');
    expect(sim.dmaRead(EDU0, 0n, 0)).toEqual({ ok: true, data: new Uint8Array(0) });
  });
});

describe('arm64 Unmanaged domains: caller-owned stage-1 tables and the IOTLB', () => {
  /** Build 4 KiB-granule tables for a 39-bit input (levels 1..3) in sim RAM. */
  function setup() {
    const sim = new SimulatedBackend({ arch: 'arm64' });
    const dev = sim.openDevice(EDU0);
    const dom = sim.allocDomain('unmanaged');
    sim.attach(dom, dev);
    const tables = sim.allocateMemory(0x3000n); // L1, L2, L3
    const data = sim.allocateMemory(0x2000n);
    const l1 = tables.pageAddress(0);
    const l2 = tables.pageAddress(1);
    const l3 = tables.pageAddress(2);
    const view = new DataView(tables.bytes!.buffer);
    const put = (tablePa: bigint, index: number, desc: bigint): void => {
      view.setBigUint64(Number(tablePa - l1) + index * 8, desc, true);
    };
    const TABLE = 0b11n;
    const PAGE = 0b11n | (1n << 10n); // valid page, AF
    put(l1, 0, l2 | TABLE);
    put(l2, 0, l3 | TABLE);
    put(l3, 0x10, data.pageAddress(0) | PAGE); // VA 0x10000 → data page 0
    put(l3, 0x11, data.pageAddress(1) | PAGE | (1n << 7n)); // VA 0x11000 → page 1, read-only (AP[2])
    const config = {
      ttbr0: l1,
      ttbr1: 0n,
      mair0: 0xff,
      mair1: 0,
      inputSize0: 39,
      inputSize1: 0,
      coherentTableWalks: true,
      translationEnabled: true,
    };
    return { sim, dev, dom, data, put, l3, config };
  }

  it('blocks DMA until configured, then walks the tables', () => {
    const { sim, dom, data, config } = setup();
    const before = sim.dmaRead(EDU0, 0x10000n, 4);
    expect(!before.ok && before.fault).toMatchObject({ reasonCode: 0x0a, kind: 'translation' });
    sim.configureDomain(dom, config);
    data.bytes!.set([1, 2, 3, 4]);
    expect(sim.dmaRead(EDU0, 0x10000n, 4)).toEqual({ ok: true, data: new Uint8Array([1, 2, 3, 4]) });
    const w = sim.dmaWrite(EDU0, 0x11000n, new Uint8Array([5]));
    expect(w.fault).toMatchObject({ kind: 'permission', reasonCode: 0x13 });
    expect(w.fault?.raw).toContain('event: F_PERMISSION client: 0000:00:03.0 sid: 0x18');
    const miss = sim.dmaRead(EDU0, 0x12000n, 4);
    expect(!miss.ok && miss.fault).toMatchObject({ kind: 'translation', reasonCode: 0x10, iova: 0x12000n });
    const beyond = sim.dmaRead(EDU0, 1n << 39n, 4);
    expect(!beyond.ok && beyond.fault.reasonCode).toBe(0x10);
  });

  it('serves stale translations from the IOTLB until flushDomain', () => {
    const { sim, dom, data, put, l3, config } = setup();
    sim.configureDomain(dom, config);
    data.bytes!.fill(0xaa, 0, 0x1000);
    data.bytes!.fill(0xbb, 0x1000);
    expect(sim.dmaRead(EDU0, 0x10000n, 1)).toEqual({ ok: true, data: new Uint8Array([0xaa]) });
    // retarget VA 0x10000 to data page 1 without flushing
    put(l3, 0x10, data.pageAddress(1) | 0b11n | (1n << 10n));
    expect(sim.dmaRead(EDU0, 0x10000n, 1)).toEqual({ ok: true, data: new Uint8Array([0xaa]) });
    sim.flushDomain(dom, [0x10abcn]);
    expect(sim.dmaRead(EDU0, 0x10000n, 1)).toEqual({ ok: true, data: new Uint8Array([0xbb]) });
    // invalidate the descriptor: still cached until a full flush
    put(l3, 0x10, 0n);
    expect(sim.dmaRead(EDU0, 0x10000n, 1).ok).toBe(true);
    sim.flushDomain(dom);
    expect(sim.dmaRead(EDU0, 0x10000n, 1).ok).toBe(false);
    expect(sim.inspect().domains[0].unmanaged).toMatchObject({ configured: true, tlbEntries: 0 });
  });

  it('rejects map/unmap and bad configurations; configure/flush only on Unmanaged domains', () => {
    const { sim, dom, config } = setup();
    expectErrno(() => sim.map(dom, 0x1000n, run(0x40000000n, 0x1000n), RW), 'EINVAL');
    expectErrno(() => sim.unmap(dom, 0x1000n, 0x1000n), 'EINVAL');
    expectErrno(() => sim.configureDomain(dom, { ...config, inputSize0: 60 }), 'EINVAL');
    expectErrno(() => sim.configureDomain(dom, { ...config, ttbr0: 0x10n }), 'EINVAL');
    expect(() => sim.configureDomain(dom, { ...config, ttbr0: 5 as never })).toThrow(TypeError);
    const t = sim.allocDomain('translate');
    expectErrno(() => sim.configureDomain(t, config), 'EINVAL');
    expectErrno(() => sim.flushDomain(t), 'EINVAL');
    // translation disabled: bypass
    sim.configureDomain(dom, { ...config, translationEnabled: false });
    expect(sim.dmaRead(EDU0, 0x40000000n, 1).ok).toBe(true);
  });
});
