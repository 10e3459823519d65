/**
 * The DMA engine against a page-level reference model (fast-check): random DMAs of any offset and
 * length over a window of pages, each unmapped, read-only, write-only or read-write. The model is
 * QEMU's memory core behind an IOMMU: each page translates on its own; a page with the needed
 * permission moves, a blocked page's write is dropped and its read yields zeros; one fault per
 * request, for its first blocked byte, at the page address on VT-d and the exact byte on SMMUv3.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SimulatedBackend } from '../../../lib/backend/simulated/index.js';
import { EDU0 } from './helpers.js';

const PAGE = 4096;
const PAGES = 8;
const BASE = 0x100000n;
type Perm = 0 | 1 | 2 | 3; // bit 0 read, bit 1 write; 0 = not mapped

/** Index of the first differing byte, -1 when equal (cheap to report, unlike a 32 KiB diff). */
function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

const dmaArb = fc.record({
  write: fc.boolean(),
  offset: fc.integer({ min: 0, max: PAGES * PAGE - 1 }),
  // up to one page past the window (unmapped there), so both ends can straddle
  length: fc.integer({ min: 1, max: 3 * PAGE }),
  seed: fc.integer({ min: 1, max: 255 }),
});

describe('DMA engine vs a page-level reference model (fast-check)', () => {
  for (const arch of ['x86_64', 'arm64'] as const) {
    it(`${arch}: straddling DMAs over mapped, unmapped and read-only pages move exactly what each page allows`, () => {
      fc.assert(
        fc.property(fc.array(fc.constantFrom<Perm>(0, 1, 2, 3), { minLength: PAGES, maxLength: PAGES }), fc.array(dmaArb, { minLength: 1, maxLength: 12 }), (perms, dmas) => {
          const sim = new SimulatedBackend({ arch });
          try {
            const dom = sim.allocDomain('translate');
            sim.attach(dom, sim.openDevice(EDU0));
            const mem = sim.allocateMemory(BigInt(PAGES * PAGE));
            perms.forEach((p, i) => {
              if (p !== 0) sim.map(dom, BASE + BigInt(i * PAGE), mem.runs(BigInt(i * PAGE), BigInt(PAGE)), p);
            });
            // the reference: the memory's bytes
            const model = new Uint8Array(PAGES * PAGE);
            for (let i = 0; i < model.length; i++) model[i] = (i * 7) & 0xff;
            mem.bytes!.set(model);
            const permAt = (byte: number): Perm => (byte < PAGES * PAGE ? perms[Math.floor(byte / PAGE)] : 0);
            for (const d of dmas) {
              const need = d.write ? 2 : 3; // a write-only page is readable (Linux sets the read/present bit)
              const before = sim.faultLog().length;
              let firstBlocked = -1;
              let moved = 0;
              /** The model's side of the request: `pass(i, at)` for each byte that may move, the first blocked byte noted. */
              const walk = (pass: (i: number, at: number) => void): void => {
                for (let i = 0; i < d.length; i++) {
                  const at = d.offset + i;
                  if (permAt(at) & need) {
                    pass(i, at);
                    moved++;
                  } else if (firstBlocked < 0) firstBlocked = at;
                }
              };
              const iova = BASE + BigInt(d.offset);
              if (d.write) {
                const data = new Uint8Array(d.length).map((_, i) => (d.seed + i) & 0xff);
                const r = sim.dmaWrite(EDU0, iova, data);
                walk((i, at) => (model[at] = data[i]));
                expect(r.bytesWritten).toBe(moved);
                expect(r.ok).toBe(firstBlocked < 0);
              } else {
                const r = sim.dmaRead(EDU0, iova, d.length);
                const want = new Uint8Array(d.length);
                walk((i, at) => (want[i] = model[at]));
                expect(firstDiff(r.data, want), 'first wrong byte read').toBe(-1);
                expect(r.ok).toBe(firstBlocked < 0);
                if (!r.ok) expect(r.bytesRead).toBe(moved);
              }
              expect(firstDiff(mem.bytes!, model), 'first wrong byte in memory').toBe(-1);
              const log = sim.faultLog();
              if (firstBlocked < 0) {
                expect(log.length).toBe(before);
              } else {
                expect(log.length).toBe(before + 1); // one record per request
                const at = BASE + BigInt(firstBlocked);
                expect(log[before]).toMatchObject({
                  bdf: EDU0,
                  write: d.write,
                  iova: arch === 'x86_64' ? at & ~0xfffn : at,
                  kind: permAt(firstBlocked) === 0 ? 'translation' : 'permission',
                });
              }
            }
          } finally {
            sim.close();
          }
        }),
        { numRuns: 150 },
      );
    });
  }
});
