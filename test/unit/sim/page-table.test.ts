import { describe, expect, it } from 'vitest';
import { PageTable } from '../../../lib/backend/simulated/page-table.js';
import { SimulatedBackend } from '../../../lib/backend/simulated/index.js';
import { GiB, MiB, mappedRig, rig, run, RW } from './helpers.js';

describe('multi-level page tables, seen through inspect()', () => {
  it('a fresh domain has only its root (3 levels for 39 bits)', () => {
    const { sim } = rig();
    const pt = sim.inspect().domains[0].pageTable!;
    expect(pt.levels).toBe(3);
    expect(pt.perLevel).toEqual({ '1': { tables: 0, leaves: 0 }, '2': { tables: 0, leaves: 0 }, '3': { tables: 1, leaves: 0 } });
  });

  it('a 4 KiB map uses a level-1 leaf and allocates one table per level', () => {
    const { sim, dom } = mappedRig(0x1000n, [[0x7000n, 0n, 0x1000n, RW]]);
    expect(sim.inspect().domains[0].pageTable).toMatchObject({
      perLevel: { '1': { tables: 1, leaves: 1 }, '2': { tables: 1, leaves: 0 }, '3': { tables: 1, leaves: 0 } },
      leaves4K: 1,
    });
    expect(sim.translate(dom, 0x7000n)?.level).toBe(1);
  });

  it('a 2 MiB-aligned map (IOVA, PA, length) uses a level-2 leaf', () => {
    const { sim, dom } = rig();
    const mem = sim.allocateMemory(2n * MiB, { hugePages: true });
    expect(mem.pageAddress(0) % (2n * MiB)).toBe(0n);
    sim.map(dom, 0x40000000n, mem.runs(0n, 2n * MiB), RW);
    const pt = sim.inspect().domains[0].pageTable!;
    expect(pt.perLevel['2']).toEqual({ tables: 1, leaves: 1 });
    expect(pt.perLevel['1']).toEqual({ tables: 0, leaves: 0 });
    expect(pt.leaves2M).toBe(1);
    expect(sim.translate(dom, 0x40123456n)).toEqual({ pa: mem.pageAddress(0) + 0x123456n, perms: RW, level: 2 });
  });

  it('a misaligned IOVA falls back to 4 KiB leaves', () => {
    const { sim } = mappedRig(2n * MiB, [[0x40001000n, 0n, 2n * MiB, RW]], { memory: { hugePages: true } });
    expect(sim.inspect().domains[0].pageTable!.leaves4K).toBe(512);
    expect(sim.inspect().domains[0].pageTable!.leaves2M).toBe(0);
  });

  it('a 1 GiB-aligned map uses a level-3 leaf; mixed sizes fill the rest', () => {
    const sim = new SimulatedBackend({ ramSize: 8n * GiB });
    const dom = sim.allocDomain('translate');
    sim.attach(dom, sim.openDevice('0000:00:03.0'));
    // lazy allocations: one fills RAM below the PCI hole, so the next starts at 4 GiB (1 GiB aligned)
    sim.allocateMemory(3n * GiB - MiB, { lazy: true });
    expect(sim.allocateMemory(4n * GiB, { lazy: true }).pageAddress(0)).toBe(4n * GiB);
    sim.map(dom, 0x80000000n, run(4n * GiB, 1n * GiB), RW);
    let pt = sim.inspect().domains[0].pageTable!;
    expect(pt.perLevel['3']).toEqual({ tables: 1, leaves: 1 });
    expect(pt.tables).toBe(1); // nothing below the root
    expect(sim.translate(dom, 0x80000000n + 0x3ffff123n)).toEqual({ pa: 4n * GiB + 0x3ffff123n, perms: RW, level: 3 });
    // 1 GiB + 2 MiB + 4 KiB in one area: one leaf of each size
    sim.map(dom, 0x100000000n, run(5n * GiB, 1n * GiB + 2n * MiB + 0x1000n), RW);
    pt = sim.inspect().domains[0].pageTable!;
    expect([pt.leaves1G, pt.leaves2M, pt.leaves4K]).toEqual([2, 1, 1]);
    expect(sim.inspect().domains[0].areas[1].runs).toEqual([{ pa: '0x140000000', length: '0x40201000' }]);
  });

  it('tables are freed when they become empty', () => {
    const { sim, dom } = mappedRig(0x3000n, [
      [0x1000n, 0n, 0x1000n, RW],
      [0x40000000n, 0n, 0x1000n, RW], // another level-2 table
      [0x40200000n, 0n, 0x1000n, RW], // another level-1 table
    ]);
    expect(sim.inspect().domains[0].pageTable!.perLevel).toEqual({
      '1': { tables: 3, leaves: 3 },
      '2': { tables: 2, leaves: 0 },
      '3': { tables: 1, leaves: 0 },
    });
    sim.unmap(dom, 0x40200000n, 0x1000n);
    expect(sim.inspect().domains[0].pageTable!.perLevel['1'].tables).toBe(2);
    sim.unmap(dom, 0n, (1n << 64n) - 1n);
    expect(sim.inspect().domains[0].pageTable!.tables).toBe(1);
    expect(sim.verifyPageTables()).toBeNull();
  });

  it('a 48-bit machine has 4 levels', () => {
    const sim = new SimulatedBackend({ addressWidth: 48 });
    const dom = sim.allocDomain('translate');
    sim.attach(dom, sim.openDevice('0000:00:03.0'));
    const mem = sim.allocateMemory(0x1000n);
    sim.map(dom, 0xffff_ffff_f000n, mem.runs(0n, 0x1000n), RW);
    expect(sim.inspect().domains[0].pageTable!.perLevel).toMatchObject({ '4': { tables: 1 }, '3': { tables: 1 }, '2': { tables: 1 }, '1': { tables: 1, leaves: 1 } });
  });
});

describe('PageTable as an area index (unit)', () => {
  it('marks: first leaf holds the length, later leaves the distance back to the start', () => {
    const pt = new PageTable(3, true, true);
    pt.mapRun(510, 1000, 516, 3, 510, 516); // 2 × 4K, 1 × 2M, 2 × 4K
    expect(pt.lookup(510)).not.toBe(0);
    expect(pt.hitMark).toBe(516);
    pt.lookup(511);
    expect(pt.hitMark).toBe(-1);
    // pfn 1002 at page 512 is not 2 MiB aligned: all 4 KiB
    expect(pt.leaves[2]).toBe(0);
    pt.lookup(1025);
    expect(pt.hitAreaStart()).toBe(510);
    expect(pt.areaPagesAt(510)).toBe(516);
    expect(pt.areaPagesAt(511)).toBe(0);
    expect(pt.anyInRange(0, 509)).toBe(false);
    expect(pt.anyInRange(1025, 5000)).toBe(true);
    expect(pt.anyInRange(1026, 5000)).toBe(false);
    expect(pt.firstPresent(0, 10000)).toBe(510);
    expect(pt.lastPresent(0, 10000)).toBe(1025);
    expect(pt.clearRange(510, 1025, null)).toBe(516);
    expect(pt.clearedAreas).toBe(1);
    expect(pt.verify()).toBeNull();
    expect(pt.tables).toEqual([0, 0, 0, 1]);
  });

  it('huge leaves: 2 MiB where IOVA, PA and length allow it', () => {
    const pt = new PageTable(3, true, true);
    pt.mapRun(512, 1024, 1024 + 3, 1, 512, 1027);
    expect(pt.leaves.slice(1)).toEqual([3, 2, 0]);
    pt.lookup(700);
    expect(pt.hitLevel).toBe(2);
    expect(pt.hitBase).toBe(512);
    expect(pt.hitMark).toBe(1027);
    pt.lookup(1024 + 512);
    expect(pt.hitMark).toBe(-1024);
    expect(pt.verify()).toBeNull();
  });
});

describe('scale without per-page objects', () => {
  it('1 TiB of IOVA as 2 MiB areas of one lazy 2 MiB allocation: 2 MiB leaves only, ~1k tables', () => {
    const sim = new SimulatedBackend({ addressWidth: 48 });
    const dom = sim.allocDomain('translate');
    sim.attach(dom, sim.openDevice('0000:00:03.0'));
    const mem = sim.allocateMemory(2n * MiB, { hugePages: true, lazy: true });
    const runs = mem.runs(0n, 2n * MiB);
    const n = (1n << 40n) / (2n * MiB);
    for (let i = 0n; i < n; i++) sim.map(dom, (1n << 40n) + i * 2n * MiB, runs, RW);
    const d = sim.inspect({ maxAreas: 2 }).domains[0];
    expect(d.areaCount).toBe(524288);
    expect(d.pageTable).toMatchObject({ leaves2M: 524288, leaves4K: 0, tables: 1 + 2 + 1024 });
    expect(sim.inspect({ maxAreas: 0 }).memory.allocations[0]).toMatchObject({ touchedPages: 0, mappedPages: 524288 * 512 });
    expect(sim.unmap(dom, 1n << 40n, 1n << 40n)).toBe(1n << 40n);
    expect(sim.inspect().domains[0].pageTable!.tables).toBe(1);
  });

  it('one area over a 32 GiB lazy allocation uses 1 GiB leaves', () => {
    const sim = new SimulatedBackend({ addressWidth: 48 });
    const dom = sim.allocDomain('translate');
    const mem = sim.allocateMemory(32n * GiB, { hugePages: true, lazy: true });
    expect(mem.pageAddress(0) % GiB).toBe(0n);
    sim.map(dom, 64n * GiB, mem.runs(0n, 32n * GiB), RW);
    expect(sim.inspect().domains[0].pageTable).toMatchObject({ leaves1G: 32, leaves2M: 0, leaves4K: 0 });
  });
});
