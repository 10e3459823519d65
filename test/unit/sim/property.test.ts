/**
 * Property test: the page tables + area index against a simple reference model (a Map of IOVA
 * page → { pa, perms } plus the list of areas), over random map / unmap / injected-failure / DMA
 * sequences. Checks every result and errno, the translations, the mapped-page accounting, and
 * that the page tables stay sound (counts exact, no empty table kept).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SimulatedBackend } from '../../../lib/backend/simulated/index.js';
import { BackendError } from '../../../lib/errors.js';
import { E, EDU0 } from './helpers.js';

const PAGE = 4096;
const SPACE = 6144; // IOVA pages the commands play in (24 MiB)
const RESERVED_FIRST = 1000; // a reserved hole inside the space (pages 1000..1015)
const RESERVED_PAGES = 16;

type RunSpec = { off: number; pages: number };
type Cmd =
  | { kind: 'map'; start: number; runs: RunSpec[]; perms: number }
  | { kind: 'unmap'; startByte: number; length: number }
  | { kind: 'unmapAround'; pick: number; head: number; tail: number }
  | { kind: 'unmapAll' }
  | { kind: 'inject'; errno: number }
  | { kind: 'dma'; page: number; write: boolean };

interface Area {
  start: number;
  pages: number;
}

const pageArb = fc.oneof(fc.integer({ min: 0, max: SPACE - 1 }), fc.integer({ min: 0, max: SPACE / 512 - 1 }).map((x) => x * 512));
const runArb = fc.record({
  off: fc.oneof(fc.integer({ min: 0, max: 8191 }), fc.integer({ min: 0, max: 14 }).map((x) => x * 512)),
  pages: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.constant(512), fc.integer({ min: 1, max: 1100 })),
});
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('map' as const), start: pageArb, runs: fc.array(runArb, { minLength: 1, maxLength: 3 }), perms: fc.integer({ min: 1, max: 3 }) }) },
  {
    weight: 4,
    arbitrary: fc
      .record({
        page: pageArb,
        pages: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 2000 })),
        skew: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: PAGE - 1 }) }),
        tail: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -(PAGE - 1), max: PAGE - 1 }) }),
      })
      .map(({ page, pages, skew, tail }) => ({
        kind: 'unmap' as const,
        startByte: page * PAGE + skew,
        length: Math.max(1, pages * PAGE + tail),
      })),
  },
  {
    // relative to an existing area: exact, one page or one byte short or long on either side
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('unmapAround' as const),
      pick: fc.nat(),
      head: fc.constantFrom(0, 0, -PAGE, PAGE, -1, 1),
      tail: fc.constantFrom(0, 0, -PAGE, PAGE, -1, 1, 3 * PAGE),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'unmapAll' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('inject' as const), errno: fc.constantFrom(E.EIO, E.ENOMEM, E.EFAULT) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('dma' as const), page: fc.integer({ min: 0, max: SPACE + 2000 }), write: fc.boolean() }) },
);

function errnoOf(fn: () => unknown): number | 'ok' {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (e instanceof BackendError) return -e.errno;
    throw e;
  }
}

describe('page tables + area index vs a reference model (fast-check)', () => {
  it('agree on results, errnos, translations and accounting over random sequences', () => {
    fc.assert(
      fc.property(fc.array(cmdArb, { minLength: 1, maxLength: 40 }), (cmds) => {
        const sim = new SimulatedBackend({
          reservedRegions: [{ start: BigInt(RESERVED_FIRST * PAGE), last: BigInt((RESERVED_FIRST + RESERVED_PAGES) * PAGE - 1) }],
        });
        const dom = sim.allocDomain('translate');
        sim.attach(dom, sim.openDevice(EDU0));
        const mem = sim.allocateMemory(BigInt(16384 * PAGE), { hugePages: true, lazy: true });
        const basePfn = Number(mem.pageAddress(0)) / PAGE;
        const model = new Map<number, { pfn: number; perms: number }>();
        let areas: Area[] = [];
        let injected: number | null = null;

        const checkPages = (from: number, to: number): void => {
          const bad: string[] = [];
          for (let p = Math.max(0, from); p <= to; p++) {
            const m = model.get(p);
            const t = sim.translate(dom, BigInt(p * PAGE + 0x123));
            const want = m === undefined ? null : { pa: BigInt(m.pfn * PAGE + 0x123), perms: m.perms };
            if ((t === null) !== (want === null) || (t !== null && want !== null && (t.pa !== want.pa || t.perms !== want.perms))) {
              bad.push(`page ${p}: got ${t === null ? 'null' : `${t.pa}/${t.perms}`}, want ${want === null ? 'null' : `${want.pa}/${want.perms}`}`);
            }
          }
          expect(bad).toEqual([]);
        };

        for (const raw of cmds) {
          let cmd: Exclude<Cmd, { kind: 'unmapAround' }>;
          if (raw.kind === 'unmapAround') {
            // relative to an existing area (picked among the live ones, in IOVA order)
            const sorted = [...areas].sort((a, b) => a.start - b.start);
            const a = sorted.length ? sorted[raw.pick % sorted.length] : { start: 7, pages: 1 };
            const startByte = Math.max(0, a.start * PAGE + raw.head);
            const endByte = (a.start + a.pages) * PAGE + raw.tail; // exclusive
            cmd = { kind: 'unmap', startByte, length: Math.max(1, endByte - startByte) };
          } else cmd = raw;
          if (cmd.kind === 'inject') {
            sim.failNth(1, cmd.errno);
            injected ??= cmd.errno; // several due on the same op: the earliest wins, all are spent
            continue;
          }
          if (cmd.kind === 'dma') {
            const m = model.get(cmd.page);
            // a write needs W; a read needs R or W (a write-only map is device-readable on Linux)
            const ok = m !== undefined && (m.perms & (cmd.write ? 2 : 3)) !== 0;
            const iova = BigInt(cmd.page * PAGE + 8);
            const r = cmd.write ? sim.dmaWrite(EDU0, iova, new Uint8Array([0x5a])) : sim.dmaRead(EDU0, iova, 1);
            expect(r.ok).toBe(ok);
            if (!r.ok) expect(r.fault).toMatchObject({ iova: iova & ~0xfffn, kind: m === undefined ? 'translation' : 'permission' });
            if (ok && cmd.write) expect(mem.read(BigInt((m!.pfn - basePfn) * PAGE + 8), 1)[0]).toBe(0x5a);
            continue;
          }
          const inj = injected;
          injected = null;
          if (cmd.kind === 'map') {
            const pages = cmd.runs.reduce((s, r) => s + r.pages, 0);
            const last = cmd.start + pages - 1;
            let expected: number | 'ok' = 'ok';
            if (inj !== null) expected = inj;
            else if (cmd.start <= RESERVED_FIRST + RESERVED_PAGES - 1 && last >= RESERVED_FIRST) expected = E.EINVAL;
            else {
              for (let p = cmd.start; p <= last; p++) if (model.has(p)) expected = E.EEXIST;
            }
            const runs = cmd.runs.map((r) => ({ pa: mem.pageAddress(0) + BigInt(r.off * PAGE), length: BigInt(r.pages * PAGE) }));
            const got = errnoOf(() => sim.map(dom, BigInt(cmd.start * PAGE), runs, cmd.perms));
            expect(got).toBe(expected);
            if (got === 'ok') {
              let p = cmd.start;
              for (const r of cmd.runs) for (let i = 0; i < r.pages; i++) model.set(p++, { pfn: basePfn + r.off + i, perms: cmd.perms });
              areas.push({ start: cmd.start, pages });
            }
            checkPages(cmd.start - 2, last + 2);
          } else {
            const all = cmd.kind === 'unmapAll';
            const startByte = cmd.kind === 'unmap' ? cmd.startByte : 0;
            const length = cmd.kind === 'unmap' ? cmd.length : 0;
            const s = all ? 0 : startByte;
            const e = all ? Number.MAX_SAFE_INTEGER : startByte + length - 1;
            const hit = areas.filter((a) => a.start * PAGE <= e && (a.start + a.pages) * PAGE - 1 >= s);
            const cut = hit.some((a) => a.start * PAGE < s || (a.start + a.pages) * PAGE - 1 > e);
            let expected: number | 'ok';
            if (inj !== null) expected = inj;
            else if (cut) expected = E.ENOENT;
            else if (hit.length === 0 && !all) expected = E.ENOENT;
            else expected = 'ok';
            let bytes = -1n;
            const got = errnoOf(() => {
              bytes = all ? sim.unmap(dom, 0n, (1n << 64n) - 1n) : sim.unmap(dom, BigInt(startByte), BigInt(length));
            });
            expect(got).toBe(expected);
            if (got === 'ok') {
              expect(bytes).toBe(BigInt(hit.reduce((t, a) => t + a.pages, 0) * PAGE));
              for (const a of hit) for (let p = a.start; p < a.start + a.pages; p++) model.delete(p);
              areas = areas.filter((a) => !hit.includes(a));
            }
            if (!all) checkPages(Math.floor(s / PAGE) - 2, Math.floor(e / PAGE) + 2);
          }
          const info = sim.inspect({ maxAreas: 0 });
          expect(info.domains[0].areaCount).toBe(areas.length);
          expect(info.memory.allocations[0].mappedPages).toBe(model.size);
          expect(sim.verifyPageTables()).toBeNull();
        }
        // full comparison, then everything goes and only the root table remains
        checkPages(0, SPACE + 2200);
        expect(sim.inspect({ maxAreas: Infinity }).domains[0].areas.map((a) => [a.iova, a.length])).toEqual(
          [...areas].sort((a, b) => a.start - b.start).map((a) => [`0x${(a.start * PAGE).toString(16)}`, `0x${(a.pages * PAGE).toString(16)}`]),
        );
        sim.clearFailures();
        sim.unmap(dom, 0n, (1n << 64n) - 1n);
        const pt = sim.inspect().domains[0].pageTable!;
        expect(pt.tables).toBe(1);
        expect(pt.leaves4K + pt.leaves2M + pt.leaves1G).toBe(0);
        expect(sim.inspect().memory.allocations[0].mappedPages).toBe(0);
        mem.free();
        sim.close();
      }),
      { numRuns: 200 },
    );
  });
});
