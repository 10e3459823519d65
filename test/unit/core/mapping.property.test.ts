/**
 * Property test of the whole mapping stack (WDK rules in the core, split-and-remap for sub-range
 * unmaps, the simulator's page tables) against a reference model: a Map from IOVA page to the
 * physical page it reaches. After every operation the status code must match the model's
 * prediction, and at the end every page must translate (by a real simulated DMA read) exactly as
 * the model says.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DomainTypeTranslate,
  IOMMU_ACCESS_READ,
  IommuError,
  type SimulatedBackend,
} from '../../../lib/index.js';
import { withSimV2 } from './helpers.js';

const PAGES = 48; // IOVA pages 0x10..0x3f in play
const BASE_PAGE = 0x10;

type Op =
  | { op: 'map'; at: number; len: number; src: number }
  | { op: 'unmap'; at: number; len: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('map' as const), at: fc.integer({ min: 0, max: PAGES - 1 }), len: fc.integer({ min: 1, max: 6 }), src: fc.integer({ min: 0, max: 15 }) }),
  fc.record({ op: fc.constant('unmap' as const), at: fc.integer({ min: 0, max: PAGES - 1 }), len: fc.integer({ min: 1, max: 6 }) }),
);

describe('mapping stack vs a page model', () => {
  it('status codes and translations agree with the model', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        withSimV2((V2, platform) => {
          const sim = platform.backend as SimulatedBackend;
          const pdo = platform.findDevice('0000:00:03.0')!;
          const dev = V2.CreateDevice(pdo);
          const dom = V2.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
          V2.AttachDeviceEx(dom, dev);
          // 16 source pages, each filled with its own index
          const mem = platform.allocateDmaMemory(16n * 4096n);
          for (let i = 0; i < 16; i++) mem.bytes.fill(i + 1, i * 4096, (i + 1) * 4096);
          const model = new Map<number, number>(); // iova page -> source page index
          for (const o of ops) {
            const at = BASE_PAGE + o.at;
            if (o.op === 'map') {
              const len = Math.min(o.len, 16 - o.src);
              let overlap = false;
              for (let i = 0; i < len; i++) if (model.has(at + i)) overlap = true;
              let code: string | null = null;
              try {
                V2.MapLogicalRangeEx(dom, IOMMU_ACCESS_READ, mem.asPfnArray(BigInt(o.src) * 4096n, BigInt(len) * 4096n), BigInt(at) * 4096n, null, null);
              } catch (e) {
                code = (e as IommuError).code;
              }
              expect(code).toBe(overlap ? 'STATUS_IN_USE' : null);
              if (!overlap) for (let i = 0; i < len; i++) model.set(at + i, o.src + i);
            } else {
              let covered = true;
              for (let i = 0; i < o.len; i++) if (!model.has(at + i)) covered = false;
              let code: string | null = null;
              try {
                V2.UnmapLogicalRange(dom, BigInt(at) * 4096n, BigInt(o.len));
              } catch (e) {
                code = (e as IommuError).code;
              }
              expect(code).toBe(covered ? null : 'STATUS_INVALID_PARAMETER');
              if (covered) for (let i = 0; i < o.len; i++) model.delete(at + i);
            }
          }
          for (let p = BASE_PAGE - 1; p < BASE_PAGE + PAGES + 6; p++) {
            const r = sim.dmaRead(pdo.bdf, BigInt(p) * 4096n + 100n, 8);
            const want = model.get(p);
            if (want === undefined) expect(r.ok, `page 0x${p.toString(16)} should fault`).toBe(false);
            else {
              expect(r.ok, `page 0x${p.toString(16)} should translate`).toBe(true);
              if (r.ok) expect(r.data[0]).toBe(want + 1);
            }
          }
          // tear down: every remaining page unmaps, then the memory can be freed
          for (const p of [...model.keys()]) {
            V2.UnmapLogicalRange(dom, BigInt(p) * 4096n, 1n);
            model.delete(p);
          }
          mem.free();
        });
      }),
      { numRuns: 120 },
    );
  });
});
