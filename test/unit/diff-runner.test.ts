/**
 * The differential runner (test/diff/) checked on the host: the simulator against itself must
 * agree on every operation, a sequence replays to the same observations, and the comparator
 * catches a difference injected into one platform (and shrinks it to the operations that matter).
 * The real comparison, simulator against the kernel, runs in `npm run test:diff`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareObservations } from '../diff/compare.js';
import { type Op, sequenceArbitrary } from '../diff/ops.js';
import { Side, openSimulator } from '../diff/run.js';
import { type PairFactory, PairPool, runCampaign, runSequence } from '../diff/sequence.js';

const EDU = ['0000:00:03.0', '0000:00:04.0'];
const simSide = (label: string): Side => new Side(label, openSimulator(), { devices: EDU });
const simPair: PairFactory = () => ({ a: simSide('a'), b: simSide('b') });

describe('differential runner (simulator against itself)', () => {
  it('finds no divergence in 3,000 operations', async () => {
    const r = await runCampaign(simPair, { seed: 4242, operations: 3000, length: 100, shrinkMs: 10_000 });
    expect(r.divergences, JSON.stringify(r.classes.map((c) => c.cls))).toBe(0);
    expect(r.operations).toBeGreaterThanOrEqual(3000);
  }, 180_000);

  it('one pair reused across sequences (reset through the public API) observes exactly what fresh pairs observe', async () => {
    const opts = { seed: 77, operations: 1500, length: 120, shrinkMs: 5_000 };
    const fresh = await runCampaign(simPair, opts);
    const pool = new PairPool(simPair);
    let pooled;
    try {
      pooled = await runCampaign(pool, opts);
    } finally {
      await pool.close();
    }
    expect(pool.opened).toBe(1); // every reset succeeded
    expect(pooled.divergences).toBe(0);
    expect({ ...pooled, classes: [] }).toEqual({ ...fresh, classes: [] });
    expect(fresh.sequences).toBeGreaterThan(5);
  }, 180_000);

  it('another process sees the simulator side\'s open devices as busy, as on the kernel (a named simulated machine)', async () => {
    const side = simSide('hold');
    try {
      await side.init();
      expect((await side.execute({ op: 'createDevice', dev: 0 })).status).toBe('ok');
      expect(await side.execute({ op: 'holdElsewhere', dev: 0 })).toMatchObject({ status: 'ok', value: 'STATUS_DEVICE_BUSY' });
      expect(await side.execute({ op: 'holdElsewhere', dev: 1 })).toMatchObject({ status: 'ok', value: 'ok' });
      expect((await side.execute({ op: 'createDevice', dev: 1 })).status).toBe('STATUS_DEVICE_BUSY');
      expect((await side.execute({ op: 'releaseElsewhere', dev: 1 })).status).toBe('ok');
      expect((await side.execute({ op: 'createDevice', dev: 1 })).status).toBe('ok');
      // held and let go again: the same helper process answers (one per side, not one per hold)
      expect(await side.execute({ op: 'holdElsewhere', dev: 1 })).toMatchObject({ status: 'ok', value: 'STATUS_DEVICE_BUSY' });
      expect((await side.execute({ op: 'releaseElsewhere', dev: 1 })).status).toBe('ok');
      expect((await side.execute({ op: 'releaseElsewhere', dev: 0 })).status).toBe('ok');
      expect((await side.execute({ op: 'deleteDevice', dev: 0 })).status).toBe('ok');
      expect(await side.execute({ op: 'holdElsewhere', dev: 0 })).toMatchObject({ status: 'ok', value: 'ok' });
      expect((await side.execute({ op: 'createDevice', dev: 0 })).status).toBe('STATUS_DEVICE_BUSY');
      expect(side.elsewhereProcesses).toBe(1);
    } finally {
      await side.close();
    }
  }, 60_000);

  it('a map of stale PFNs runs only while no live allocation holds any of them (reuse is the allocator\'s choice), and is then refused', async () => {
    const side = simSide('stale');
    const stale: Op = { op: 'mapStale', dom: 0, mem: 0, window: 2 };
    const mapMem0: Op = { op: 'map', dom: 0, perms: 3, phys: { mem: 0, page: 0, pages: 4, kind: 'pfn', shuffle: 0 }, window: 4, pageDelta: 0, v1: false };
    try {
      await side.init();
      for (const o of [{ op: 'createDevice', dev: 0 }, { op: 'createDomain', dom: 0, type: 'translate', buddy: false }, { op: 'attach', dom: 0, dev: 0, v1: false }] as Op[]) {
        expect((await side.execute(o)).status).toBe('ok');
      }
      expect(side.skipReason(stale)).toBeNull(); // never freed: the slot's own pages
      expect((await side.execute(stale)).status).toBe('ok');
      expect((await side.execute({ op: 'unmap', dom: 0, window: 2, pageDelta: 0, pages: 4 })).status).toBe('ok');
      expect((await side.execute({ op: 'free', mem: 0 })).status).toBe('ok');
      expect(side.skipReason(stale)).toBeNull(); // freed, held by nobody: refused on every backend
      expect((await side.execute(stale)).status).toBe('STATUS_INVALID_PARAMETER_3');
      expect(side.skipReason(mapMem0)).toBeNull();
      expect((await side.execute(mapMem0)).status).toBe('STATUS_INVALID_PARAMETER_3');
      // allocated again: the simulator's first fit hands the same pages back (the kernel may not)
      expect((await side.execute({ op: 'alloc', mem: 0 })).status).toBe('ok');
      expect(side.skipReason(stale)).toMatch(/stale PFNs reused/);
      expect(side.skipReason(mapMem0)).toBeNull(); // the slot's live memory
      expect((await side.execute(mapMem0)).status).toBe('ok');
    } finally {
      await side.close();
    }
  });

  it('runs DMA, maps of every kind, reserved ranges and bad calls (the model reaches them)', async () => {
    const seen = new Map<string, number>();
    const ops = fc.sample(sequenceArbitrary(100), { seed: 7, numRuns: 30 }).flat();
    for (const o of ops) seen.set(o.op === 'bad' ? `bad ${o.call}` : o.op, (seen.get(o.op) ?? 0) + 1);
    for (const k of ['dma', 'map', 'mapBuddy', 'unmap', 'identityMap', 'reserve', 'mapReserved', 'unmapReserved', 'mapStale', 'free', 'attach', 'detach']) {
      expect(seen.get(k) ?? 0, k).toBeGreaterThan(0);
    }
    // and the DMA both moves bytes and faults on the simulator
    const side = simSide('probe');
    const faults: string[] = [];
    try {
      const script: Op[] = [
        { op: 'createDevice', dev: 0 },
        { op: 'createDomain', dom: 0, type: 'translate', buddy: false },
        { op: 'attach', dom: 0, dev: 0, v1: false },
        { op: 'map', dom: 0, perms: 3, phys: { mem: 0, page: 0, pages: 1, kind: 'mdl', shuffle: 0 }, window: 0, pageDelta: 0, v1: false },
        { op: 'dma', dev: 0, toDevice: false, base: { kind: 'window', slot: 0 }, offset: 16, length: 64, deviceOffset: 0 },
        { op: 'dma', dev: 0, toDevice: false, base: { kind: 'window', slot: 3 }, offset: 0, length: 8, deviceOffset: 0 },
      ];
      const before = side.memoryDigests();
      for (const o of script) expect((await side.execute(o)).status, JSON.stringify(o)).toBe('ok');
      faults.push(...side.takeFaults());
      expect(side.memoryDigests()[0]).not.toBe(before[0]);
      expect(faults).toHaveLength(1);
      expect(faults[0]).toMatch(/^0000:00:03\.0 W 0x13/);
    } finally {
      await side.close();
    }
  });

  it('replays a sequence to the same observations', async () => {
    const [ops] = fc.sample(sequenceArbitrary(80), { seed: 99, numRuns: 1 });
    const trace = async (): Promise<string[]> => {
      const s = simSide('replay');
      const out: string[] = [];
      try {
        for (const o of ops) {
          if (s.skipReason(o)) continue;
          const r = await s.execute(o);
          out.push(JSON.stringify([r.status, r.value, r.edu, s.memoryDigests(), s.takeFaults()]));
        }
      } finally {
        await s.close();
      }
      return out;
    };
    const first = await trace();
    expect(first.length).toBeGreaterThan(20);
    expect(await trace()).toEqual(first);
  });

  it('compares every field: status, value, memory, edu buffer, faults (unless a capability relaxes them)', () => {
    const base = { status: 'ok', memory: ['aa', 'bb'], faults: ['0000:00:03.0 W 0x1000'], faultsCompared: true, edu: '00ff' };
    expect(compareObservations(base, { ...base })).toEqual([]);
    expect(compareObservations(base, { ...base, status: 'STATUS_INVALID_PARAMETER' }).map((d) => d.field)).toEqual(['status']);
    expect(compareObservations(base, { ...base, value: '0x1000' }).map((d) => d.field)).toEqual(['value']);
    expect(compareObservations(base, { ...base, memory: ['aa', 'bc'] }).map((d) => d.field)).toEqual(['memory[1]']);
    expect(compareObservations(base, { ...base, edu: '0000' }).map((d) => d.field)).toEqual(['edu']);
    expect(compareObservations(base, { ...base, faults: ['0000:00:03.0 W 0x1008'] }).map((d) => d.field)).toEqual(['faults']);
    expect(compareObservations(base, { ...base, faults: [], faultsCompared: false })).toEqual([]);
  });

  it('catches a difference injected into one platform and shrinks it to the operations that cause it', async () => {
    // Platform b's memory slot 1 reads back one byte different after any successful DMA into memory:
    // the campaign must report a divergence whose shrunk sequence ends with such a DMA.
    class Skewed extends Side {
      override async execute(op: Op, readEdu?: boolean) {
        const r = await super.execute(op, readEdu);
        if (op.op === 'dma' && !op.toDevice && r.status === 'ok') {
          const m = this.memoryBytes(1);
          if (m) m[5] ^= 0xff;
        }
        return r;
      }
    }
    const skewed: PairFactory = () => ({ a: simSide('a'), b: new Skewed('b', openSimulator(), { devices: EDU }) });
    const lines: string[] = [];
    const r = await runCampaign(skewed, { seed: 1, operations: 2000, sequences: 40, length: 60, shrinkMs: 20_000, log: (l) => lines.push(l) });
    expect(r.divergences).toBeGreaterThan(0);
    const c = r.classes[0];
    expect(c.cls).toBe('dma: memory');
    const last = c.shrunk.ops[c.shrunk.ops.length - 1];
    expect(last.op).toBe('dma');
    expect(c.shrunk.ops.length).toBeLessThanOrEqual(c.original.length);
    expect(c.shrunk.divergence.details[0]).toMatch(/^memory\[1\]: 1 bytes differ in \[0x5, 0x6\)/);
    expect(lines.join('\n')).toMatch(new RegExp(`DIVERGENCE seed ${c.seed} `));
    // the shrunk sequence replays to the same divergence
    const again = await runSequence(skewed, c.shrunk.ops);
    expect(again.divergence?.cls).toBe('dma: memory');
  }, 180_000);
});
