/**
 * The contract-level suite: the backend contract of lib/backend/contract.ts (below the WDK layer:
 * handles, areas, errnos), written once and run against every backend: the simulator in
 * `npm test` (test/contract/simulated.test.ts) and the native backends the guest kernel offers
 * inside `dma-iommu vm` (test/vm/guest/contract-native.test.ts). Errnos are named in the cases
 * (test/support/expect-errno.ts), never written as numbers. Where a platform legitimately differs, the case reads the
 * backend's declared `capabilities`, never its kind. Backend-specific cases stay with their
 * backend: simulator internals (page-table levels, translate, inspect layout, injected failures)
 * in test/unit/sim/, native specifics (pinning, kernel pieces, kmsg faults, real DMA) in
 * test/vm/guest/.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BackendMemory, DomainGeometry, IommuBackend, MapSource } from '../../lib/backend/contract.js';
import { expectErrno } from '../support/expect-error.js';

export interface ContractOptions {
  /** Two openable devices, each in its own IOMMU group (the two edu devices). */
  readonly devices: readonly [string, string];
}

const RW = 3;
const R = 1;
const W = 2;
const U64_MAX = (1n << 64n) - 1n;
const IOVA = 0x100000n;
/** The x86 MSI window, never usable for DMA behind VT-d (and the simulator's x86 model). */
const MSI = { start: 0xfee00000n, last: 0xfeefffffn };

/** How the cases name memory to `map`: its physical runs, or its identity (a `MemorySpan`, as the platform passes DmaMemory's). */
export type SourceKind = 'runs' | 'span';

export function defineContractSuite(name: string, makeBackend: () => IommuBackend, opts: ContractOptions): void {
  for (const via of ['runs', 'span'] as const) defineFor(name, makeBackend, opts, via);
}

function defineFor(name: string, makeBackend: () => IommuBackend, opts: ContractOptions, via: SourceKind): void {
  /** [offset, offset + length) of `mem` as the map source this pass uses. */
  const src = (mem: BackendMemory, offset: bigint, length: bigint): MapSource => (via === 'runs' ? mem.runs(offset, length) : { memory: mem, offset, length });
  describe(`backend contract: ${name} (map source: ${via})`, () => {
    let b: IommuBackend;
    const [bdf0, bdf1] = opts.devices;

    beforeEach(() => {
      b = makeBackend();
    });
    afterEach(() => {
      b.close();
    });

    /** A translate domain with device 0 opened and attached. */
    function attached(): { dom: number; dev: number } {
      const dev = b.openDevice(bdf0);
      const dom = b.allocDomain('translate');
      b.attach(dom, dev);
      return { dom, dev };
    }

    describe('devices', () => {
      it('opens both devices; unknown BDF → ENOENT, open twice → EBUSY; close is idempotent', () => {
        const infos = b.enumerateDevices().filter((d) => opts.devices.includes(d.bdf));
        expect(infos.map((d) => [d.bdf, d.usable])).toEqual(opts.devices.map((x) => [x, true]));
        const ids = opts.devices.map((x) => b.openDevice(x));
        expect(ids[0]).toBeGreaterThan(0);
        expect(ids[1]).not.toBe(ids[0]);
        expectErrno(() => b.openDevice(bdf0), 'EBUSY');
        expectErrno(() => b.openDevice('0000:00:1f.7'), 'ENOENT');
        b.closeDevice(ids[0]!);
        b.closeDevice(ids[0]!);
        // the other device is untouched, and the closed one opens again
        expect(b.deviceRegions(ids[1]!).configRead(0, 2)).toBe(infos[1]!.vendorId);
        const again = b.openDevice(bdf0);
        expect(b.deviceRegions(again).configRead(0, 2)).toBe(infos[0]!.vendorId);
      });

      it('available domain types, input-mapping IDs and unmanaged domains follow the capabilities', () => {
        const dev = b.openDevice(bdf0);
        const caps = b.capabilities;
        expect(b.availableDomainTypes(dev) & ~caps.domainTypes).toBe(0);
        expect(b.availableDomainTypes(dev) & 1).toBe(1); // Translate
        if (caps.arch === 'x86_64') expectErrno(() => b.inputMappingIds(dev), 'EOPNOTSUPP');
        else expect(b.inputMappingIds(dev).length).toBeGreaterThan(0);
        if (!caps.unmanagedDomains) expectErrno(() => b.allocDomain('unmanaged'), 'EOPNOTSUPP');
        else b.freeDomain(b.allocDomain('unmanaged'));
      });
    });

    describe('domains and attach', () => {
      it('geometry before any attach is what capabilities.unattachedGeometry declares, and the attached geometry lies within it', () => {
        const dev = b.openDevice(bdf0); // an opened (not attached) device changes nothing
        const dom = b.allocDomain('translate');
        const dom2 = b.allocDomain('translate');
        b.attach(dom2, dev); // nor does another domain's attach
        const before = b.geometry(dom);
        const modelled = b.capabilities.unattachedGeometry === 'modelled';
        b.detach(dev);
        b.attach(dom, dev);
        const after = b.geometry(dom);
        expect(before).toEqual({
          ranges: [{ start: 0n, last: U64_MAX }],
          alignment: modelled ? 1n : 0x1000n,
          pageSizes: modelled ? after.pageSizes : 0x1000n,
          addressWidth: 64,
        });
        expect(after.alignment % before.alignment).toBe(0n);
        expect(after.pageSizes & before.pageSizes).toBe(before.pageSizes);
        for (const r of after.ranges) expect(r.start >= before.ranges[0]!.start && r.last <= before.ranges[0]!.last).toBe(true);
      });

      it('geometry once attached: sorted usable ranges, 4 KiB alignment, the MSI window left out (x86)', () => {
        const { dom } = attached();
        const g = b.geometry(dom);
        expect(g.alignment).toBe(0x1000n);
        expect(g.pageSizes & 0x1000n).toBe(0x1000n);
        expect(g.ranges.length).toBeGreaterThan(0);
        for (let i = 0; i < g.ranges.length; i++) {
          expect(g.ranges[i]!.start <= g.ranges[i]!.last).toBe(true);
          if (i > 0) expect(g.ranges[i]!.start > g.ranges[i - 1]!.last + 1n).toBe(true);
        }
        expect(g.ranges.at(-1)!.last).toBe((1n << BigInt(g.addressWidth)) - 1n);
        if (b.capabilities.arch === 'x86_64') {
          for (const r of g.ranges) expect(r.last < MSI.start || r.start > MSI.last).toBe(true);
        }
      });

      it('attach while attached → EBUSY (same or other domain); freeDomain with a device → EBUSY; detach, then free', () => {
        const { dom, dev } = attached();
        const dom2 = b.allocDomain('translate');
        expectErrno(() => b.attach(dom, dev), 'EBUSY');
        expectErrno(() => b.attach(dom2, dev), 'EBUSY');
        expectErrno(() => b.freeDomain(dom), 'EBUSY');
        b.detach(dev);
        b.freeDomain(dom);
        b.attach(dom2, dev);
        b.detach(dev);
        b.freeDomain(dom2);
      });

      it('before any attach a domain takes maps outside the usable ranges (no device: no reserved ranges); attach then answers EADDRINUSE, leaves the device detached, and succeeds once they are unmapped', () => {
        const dev = b.openDevice(bdf0);
        const dom = b.allocDomain('translate');
        const mem = b.allocateMemory(0x2000n);
        const beyond = 1n << 48n; // past any aperture the backends model (39-bit VT-d in the VM, 48-bit SMMU)
        b.map(dom, IOVA, src(mem, 0n, 0x1000n), RW);
        b.map(dom, beyond, src(mem, 0x1000n, 0x1000n), RW);
        expectErrno(() => b.attach(dom, dev), 'EADDRINUSE');
        // still detached and usable: another domain takes it, and gives it back
        const dom2 = b.allocDomain('translate');
        b.attach(dom2, dev);
        b.detach(dev);
        b.freeDomain(dom2);
        expect(b.unmap(dom, beyond, 0x1000n)).toBe(0x1000n);
        if (b.capabilities.arch === 'x86_64') {
          b.map(dom, MSI.start + 0x3000n, src(mem, 0x1000n, 0x1000n), R);
          expectErrno(() => b.attach(dom, dev), 'EADDRINUSE');
          expect(b.unmap(dom, MSI.start + 0x3000n, 0x1000n)).toBe(0x1000n);
        }
        b.attach(dom, dev);
        // the good area made it through the attach
        expect(b.unmap(dom, IOVA, 0x1000n)).toBe(0x1000n);
        b.detach(dev);
        b.freeDomain(dom);
      });

      it('a domain whose last device detached takes maps outside the usable ranges again (as before its first attach); the next attach answers EADDRINUSE until they are unmapped', () => {
        const { dom, dev } = attached();
        const mem = b.allocateMemory(0x1000n);
        const top = U64_MAX - 0xfffn; // the last page of the 64-bit space: past every aperture
        expectErrno(() => b.map(dom, top, src(mem, 0n, 0x1000n), RW), 'EINVAL');
        b.detach(dev);
        expect(b.geometry(dom).ranges).toEqual([{ start: 0n, last: U64_MAX }]);
        b.map(dom, top, src(mem, 0n, 0x1000n), RW);
        expectErrno(() => b.attach(dom, dev), 'EADDRINUSE');
        expect(b.unmap(dom, top, 0x1000n)).toBe(0x1000n);
        b.attach(dom, dev);
        expectErrno(() => b.map(dom, top, src(mem, 0n, 0x1000n), RW), 'EINVAL');
        b.map(dom, IOVA, src(mem, 0n, 0x1000n), RW);
        expect(b.unmap(dom, IOVA, 0x1000n)).toBe(0x1000n);
      });

      it('two devices in two groups attach to two domains independently', () => {
        const [d0, d1] = opts.devices.map((x) => b.openDevice(x));
        const [m0, m1] = [b.allocDomain('translate'), b.allocDomain('translate')];
        b.attach(m0, d0!);
        b.attach(m1, d1!);
        const mem = b.allocateMemory(0x1000n);
        // the same IOVA in both domains: no conflict
        b.map(m0, IOVA, src(mem, 0n, 0x1000n), RW);
        b.map(m1, IOVA, src(mem, 0n, 0x1000n), R);
        expect(b.unmap(m0, IOVA, 0x1000n)).toBe(0x1000n);
        expect(b.unmap(m1, IOVA, 0x1000n)).toBe(0x1000n);
      });
    });

    describe('map (one area at a fixed IOVA)', () => {
      it('EEXIST when the new area overlaps an existing one, on any side; adjacent areas are fine', () => {
        const { dom } = attached();
        const mem = b.allocateMemory(0x10000n);
        b.map(dom, IOVA, src(mem, 0n, 0x4000n), RW);
        expectErrno(() => b.map(dom, IOVA, src(mem, 0n, 0x1000n), RW), 'EEXIST');
        expectErrno(() => b.map(dom, IOVA + 0x1000n, src(mem, 0n, 0x1000n), RW), 'EEXIST');
        expectErrno(() => b.map(dom, IOVA - 0x1000n, src(mem, 0n, 0x2000n), RW), 'EEXIST');
        expectErrno(() => b.map(dom, IOVA + 0x3000n, src(mem, 0n, 0x2000n), RW), 'EEXIST');
        expectErrno(() => b.map(dom, IOVA - 0x1000n, src(mem, 0n, 0x6000n), RW), 'EEXIST');
        b.map(dom, IOVA - 0x1000n, src(mem, 0n, 0x1000n), R);
        b.map(dom, IOVA + 0x4000n, src(mem, 0n, 0x1000n), W);
        expect(b.unmap(dom, IOVA - 0x1000n, 0x6000n)).toBe(0x6000n);
      });

      it('EINVAL: zero perms, an IOVA or length not aligned to the geometry', () => {
        const { dom } = attached();
        const mem = b.allocateMemory(0x4000n);
        expectErrno(() => b.map(dom, IOVA, src(mem, 0n, 0x1000n), 0), 'EINVAL');
        expectErrno(() => b.map(dom, IOVA + 0x800n, src(mem, 0n, 0x1000n), RW), 'EINVAL');
        expectErrno(() => b.map(dom, IOVA, [{ pa: mem.pageAddress(0), length: 0x1800n }], RW), 'EINVAL');
        // nothing was left behind
        expectErrno(() => b.unmap(dom, 0n, 1n << 39n), 'ENOENT');
      });

      it('EINVAL outside the usable ranges: the MSI window (x86), straddling a range end, beyond the aperture', () => {
        const { dom } = attached();
        const g: DomainGeometry = b.geometry(dom);
        const mem = b.allocateMemory(0x2000n);
        const top = g.ranges.at(-1)!.last + 1n;
        expectErrno(() => b.map(dom, top, src(mem, 0n, 0x1000n), RW), 'EINVAL');
        expectErrno(() => b.map(dom, top - 0x1000n, src(mem, 0n, 0x2000n), RW), 'EINVAL');
        if (b.capabilities.arch === 'x86_64') {
          expectErrno(() => b.map(dom, MSI.start, src(mem, 0n, 0x1000n), RW), 'EINVAL');
          expectErrno(() => b.map(dom, MSI.start - 0x1000n, src(mem, 0n, 0x2000n), RW), 'EINVAL');
          expectErrno(() => b.map(dom, MSI.last - 0xfffn, src(mem, 0n, 0x2000n), RW), 'EINVAL');
        }
        // the last page of every range is usable
        for (const r of g.ranges) {
          b.map(dom, r.last - 0xfffn, src(mem, 0n, 0x1000n), RW);
          expect(b.unmap(dom, r.last - 0xfffn, 0x1000n)).toBe(0x1000n);
        }
      });

      it('EFAULT when a PA is not memory this backend allocated', () => {
        const { dom } = attached();
        expectErrno(() => b.map(dom, IOVA, [{ pa: 0x1000n, length: 0x1000n }], RW), 'EFAULT');
      });

      it('several runs make one area: unmap of a part → ENOENT, of the whole → its bytes', () => {
        const { dom } = attached();
        const a = b.allocateMemory(0x2000n);
        const c = b.allocateMemory(0x3000n);
        b.map(dom, IOVA, [...a.runs(0n, 0x2000n), ...c.runs(0n, 0x3000n)], RW);
        expectErrno(() => b.unmap(dom, IOVA, 0x2000n), 'ENOENT');
        expectErrno(() => b.unmap(dom, IOVA + 0x2000n, 0x3000n), 'ENOENT');
        expect(b.unmap(dom, IOVA, 0x5000n)).toBe(0x5000n);
      });
    });

    if (via === 'span') {
      describe('map source: a span of an allocation (MemorySpan)', () => {
        /** The errno name a call throws ('ok' when it returns; the error's name for non-backend errors). */
        const outcome = (fn: () => unknown): string => {
          try {
            fn();
            return 'ok';
          } catch (e) {
            const err = e as { code?: unknown; name?: string };
            return typeof err.code === 'string' ? err.code : (err.name ?? 'error');
          }
        };

        it('decides as the runs it names: byte-granular offsets, pages in the middle, another backend\'s memory', () => {
          const { dom } = attached();
          const mem = b.allocateMemory(0x4000n);
          const other = makeBackend();
          try {
            const foreign = other.allocateMemory(0x2000n);
            const cases: Array<[BackendMemory, bigint, bigint]> = [
              [mem, 0n, 0x4000n],
              [mem, 0x1000n, 0x2000n],
              [mem, 0x3000n, 0x1000n],
              [mem, 0x800n, 0x1000n],
              [mem, 0x1000n, 0x800n],
              [foreign, 0n, 0x1000n],
              [foreign, 0x1000n, 0x1000n],
            ];
            const seen: string[] = [];
            cases.forEach(([m, offset, length], i) => {
              const iova = IOVA + BigInt(i) * 0x10000n;
              const bySpan = outcome(() => b.map(dom, iova, { memory: m, offset, length }, RW));
              if (bySpan === 'ok') b.unmap(dom, iova, length);
              const byRuns = outcome(() => b.map(dom, iova, m.runs(offset, length), RW));
              if (byRuns === 'ok') b.unmap(dom, iova, length);
              expect([i, bySpan]).toEqual([i, byRuns]);
              seen.push(bySpan);
            });
            expect(seen.slice(0, 3)).toEqual(['ok', 'ok', 'ok']);
            expect(seen[3]).not.toBe('ok'); // 0x800: the geometry's 4 KiB alignment
            foreign.free();
          } finally {
            other.close();
          }
        });

        it('EFAULT for a span of freed memory; EINVAL outside the allocation; TypeError for a malformed span; nothing left behind', () => {
          const { dom } = attached();
          const mem = b.allocateMemory(0x2000n);
          const gone = b.allocateMemory(0x1000n);
          gone.free();
          expectErrno(() => b.map(dom, IOVA, { memory: gone, offset: 0n, length: 0x1000n }, RW), 'EFAULT');
          for (const [offset, length] of [
            [0n, 0x3000n],
            [0x2000n, 0x1000n],
            [0x1000n, 0n],
            [-0x1000n, 0x1000n],
          ] as const) {
            expectErrno(() => b.map(dom, IOVA, { memory: mem, offset, length }, RW), 'EINVAL');
          }
          for (const bad of [{ memory: {}, offset: 0n, length: 0x1000n }, { memory: mem, offset: 0, length: 0x1000n }, { memory: mem, offset: 0n }, null, 7]) {
            expect(() => b.map(dom, IOVA, bad as never, RW)).toThrow(TypeError);
          }
          expectErrno(() => b.unmap(dom, 0n, 1n << 39n), 'ENOENT');
          mem.free();
          expect(mem.freed).toBe(true);
        });
      });
    }

    describe('unmap (whole areas only)', () => {
      it('ENOENT when nothing is mapped in the range', () => {
        const { dom } = attached();
        expectErrno(() => b.unmap(dom, IOVA, 0x1000n), 'ENOENT');
        const mem = b.allocateMemory(0x1000n);
        b.map(dom, IOVA, src(mem, 0n, 0x1000n), RW);
        expectErrno(() => b.unmap(dom, IOVA + 0x1000n, 0x1000n), 'ENOENT');
        expectErrno(() => b.unmap(dom, IOVA - 0x10000n, 0x10000n), 'ENOENT');
      });

      it('ENOENT when the range cuts an area (start, middle, end), atomically: nothing changes', () => {
        const { dom } = attached();
        const mem = b.allocateMemory(0x4000n);
        b.map(dom, IOVA, src(mem, 0n, 0x4000n), RW);
        b.map(dom, IOVA + 0x100000n, src(mem, 0n, 0x4000n), RW);
        expectErrno(() => b.unmap(dom, IOVA, 0x1000n), 'ENOENT');
        expectErrno(() => b.unmap(dom, IOVA + 0x1000n, 0x1000n), 'ENOENT');
        expectErrno(() => b.unmap(dom, IOVA + 0x1000n, 0x3000n), 'ENOENT');
        expectErrno(() => b.unmap(dom, IOVA + 0x1000n, 0x4000n), 'ENOENT');
        expectErrno(() => b.unmap(dom, 0n, IOVA + 0x1000n), 'ENOENT');
        // covers the first area wholly but cuts the second: nothing is unmapped
        expectErrno(() => b.unmap(dom, IOVA, 0x101000n), 'ENOENT');
        // both areas are still there, whole
        expectErrno(() => b.map(dom, IOVA, src(mem, 0n, 0x1000n), RW), 'EEXIST');
        expectErrno(() => b.map(dom, IOVA + 0x103000n, src(mem, 0n, 0x1000n), RW), 'EEXIST');
        expect(b.unmap(dom, IOVA, 0x104000n)).toBe(0x8000n);
      });

      it('a range covering several whole areas, with holes between, removes them and returns the bytes', () => {
        const { dom } = attached();
        const mem = b.allocateMemory(0x4000n);
        b.map(dom, IOVA, src(mem, 0n, 0x1000n), RW);
        b.map(dom, IOVA + 0x80000n, src(mem, 0n, 0x3000n), RW);
        b.map(dom, IOVA + 0xff000n, src(mem, 0n, 0x1000n), R);
        b.map(dom, IOVA + 0x200000n, src(mem, 0n, 0x1000n), RW);
        expect(b.unmap(dom, IOVA - 0x1000n, 0x102000n)).toBe(0x5000n);
        expectErrno(() => b.unmap(dom, IOVA - 0x1000n, 0x102000n), 'ENOENT');
        expect(b.unmap(dom, IOVA + 0x200000n, 0x1000n)).toBe(0x1000n);
      });

      it('unmap-all (iova 0, length 2^64-1) of an empty domain succeeds with 0 (iommufd: iopt_unmap_all; type1: VFIO_DMA_UNMAP_FLAG_ALL)', () => {
        const { dom } = attached();
        expect(b.unmap(dom, 0n, U64_MAX)).toBe(0n);
        const mem = b.allocateMemory(0x1000n);
        b.map(dom, IOVA, src(mem, 0n, 0x1000n), RW);
        expect(b.unmap(dom, 0n, U64_MAX)).toBe(0x1000n);
        expect(b.unmap(dom, 0n, U64_MAX)).toBe(0n);
        mem.free();
      });

      it('unmap-all (iova 0, length 2^64-1) removes every area', () => {
        const { dom } = attached();
        const mem = b.allocateMemory(0x2000n);
        b.map(dom, 0n, src(mem, 0n, 0x1000n), RW);
        b.map(dom, IOVA, src(mem, 0n, 0x2000n), RW);
        b.map(dom, b.geometry(dom).ranges.at(-1)!.last - 0xfffn, src(mem, 0n, 0x1000n), RW);
        expect(b.unmap(dom, 0n, U64_MAX)).toBe(0x4000n);
        expectErrno(() => b.unmap(dom, IOVA, 0x2000n), 'ENOENT');
        mem.free();
      });

      it('EINVAL for length 0', () => {
        const { dom } = attached();
        expectErrno(() => b.unmap(dom, IOVA, 0n), 'EINVAL');
      });
    });

    describe('memory', () => {
      it('free while mapped → EBUSY; after unmap it frees; free is idempotent', () => {
        const { dom } = attached();
        const mem: BackendMemory = b.allocateMemory(0x2000n);
        expect(mem.size).toBe(0x2000n);
        b.map(dom, IOVA, src(mem, 0n, 0x2000n), RW);
        expectErrno(() => mem.free(), 'EBUSY');
        expect(mem.freed).toBe(false);
        expect(b.unmap(dom, IOVA, 0x2000n)).toBe(0x2000n);
        mem.free();
        mem.free();
        expect(mem.freed).toBe(true);
      });

      it('the pages of freed memory: EFAULT while no live allocation holds them, and mapped as the new owner\'s memory once one does', () => {
        const { dom } = attached();
        const pagesOf = (m: BackendMemory): bigint[] => m.runs(0n, m.size).flatMap((r) => Array.from({ length: Number(r.length / 0x1000n) }, (_, i) => r.pa + BigInt(i) * 0x1000n));
        const old = b.allocateMemory(0x4000n);
        const keep = b.allocateMemory(0x1000n); // after `old`: a hole once `old` is freed
        const stale = pagesOf(old);
        old.free();
        const next = b.allocateMemory(0x1000n); // the allocator may give it one of the freed pages
        const held = new Set([...pagesOf(keep), ...pagesOf(next)]);
        let refused = 0;
        stale.forEach((pa, i) => {
          const iova = IOVA + BigInt(i) * 0x1000n;
          if (held.has(pa)) {
            b.map(dom, iova, [{ pa, length: 0x1000n }], RW);
            expect(b.unmap(dom, iova, 0x1000n)).toBe(0x1000n);
          } else {
            expectErrno(() => b.map(dom, iova, [{ pa, length: 0x1000n }], RW), 'EFAULT');
            refused++;
          }
        });
        expect(refused).toBeGreaterThanOrEqual(stale.length - 1); // one new page can hold at most one of them
        // all of them at once: refused as a whole while any is not held
        expectErrno(() => b.map(dom, IOVA, stale.map((pa) => ({ pa, length: 0x1000n })), RW), 'EFAULT');
      });

      it('freeDomain drops the areas still mapped, which releases their memory', () => {
        const { dom, dev } = attached();
        const mem = b.allocateMemory(0x1000n);
        b.map(dom, IOVA, src(mem, 0n, 0x1000n), RW);
        b.detach(dev);
        expectErrno(() => mem.free(), 'EBUSY'); // still mapped in the domain
        b.freeDomain(dom);
        mem.free();
        expect(mem.freed).toBe(true);
      });
    });

    it('close is idempotent and releases memory still mapped', () => {
      const { dom } = attached();
      const mem = b.allocateMemory(0x1000n);
      b.map(dom, IOVA, src(mem, 0n, 0x1000n), RW);
      b.close();
      b.close();
      expect(b.closed).toBe(true);
      expect(mem.freed).toBe(true);
    });
  });
}
