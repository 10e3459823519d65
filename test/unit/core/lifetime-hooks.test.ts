/**
 * Issue 9 classes 2 and 8: a freed DmaMemory is not kept by its platform; close() settles
 * pending waitForFault promises at once; a fault handler (or a hook) that throws anything, even
 * an object whose `.stack` getter throws, cannot stop the fault from reaching its waiters.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { DomainTypeTranslate, IommuError } from '../../../lib/index.js';
import { type Rig, expectIommu, simRig } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const BDF = '0000:00:03.0';
let rig: Rig | null = null;

afterEach(() => {
  rig?.platform.close();
  rig = null;
});

async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 10 && ref.deref() !== undefined; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
  return ref.deref() === undefined;
}

describe('freed DmaMemory is released by its platform (class 2)', () => {
  it('a freed allocation is collectable while the platform lives; an unfreed one is kept for close()', async () => {
    rig = simRig();
    const { platform } = rig;
    let freed: object | null = platform.allocateDmaMemory(4096n);
    let kept: object | null = platform.allocateDmaMemory(4096n);
    const freedRef = new WeakRef(freed);
    const keptRef = new WeakRef(kept);
    (freed as { free(): void }).free();
    freed = null;
    kept = null;
    expect(await collected(freedRef)).toBe(true);
    expect(await collected(keptRef)).toBe(false); // the platform frees it at close()
    expect((platform.inspect() as { memory: unknown[] }).memory.length).toBe(1);
    platform.close();
    expect(keptRef.deref() === undefined || (keptRef.deref() as { freed: boolean }).freed).toBe(true);
  });

  it('an allocate/free loop does not grow the platform (10,000 cycles of 2 × 4 KiB)', async () => {
    rig = simRig();
    const { platform } = rig;
    const refs: WeakRef<object>[] = [];
    for (let i = 0; i < 10_000; i++) {
      const a = platform.allocateDmaMemory(4096n);
      const b = platform.allocateDmaMemory(4096n);
      if (i % 1000 === 0) refs.push(new WeakRef(a), new WeakRef(b));
      a.free();
      b.free();
    }
    for (const r of refs) expect(await collected(r)).toBe(true);
  });
});

describe('close() and waiters, robust hooks (class 8)', () => {
  it('close() rejects a pending waitForFault at once with STATUS_INVALID_DEVICE_REQUEST', async () => {
    rig = simRig();
    const { platform } = rig;
    const pending = platform.waitForFault({ bdf: BDF }, 0x7fffffff);
    const settled = pending.then(
      () => 'resolved',
      (e: unknown) => (e instanceof IommuError ? e.code : 'other'),
    );
    platform.close();
    expect(await settled).toBe('STATUS_INVALID_DEVICE_REQUEST');
    await expect(platform.waitForFault()).rejects.toMatchObject({ code: 'STATUS_INVALID_DEVICE_REQUEST' });
  });

  it('waitForFault arguments: a bad filter or timeout is a rejected STATUS_INVALID_PARAMETER naming it', async () => {
    rig = simRig();
    const { platform } = rig;
    await expect(platform.waitForFault({ bdf: 42 } as never)).rejects.toMatchObject({ code: 'STATUS_INVALID_PARAMETER', argument: 'filter.bdf' });
    await expect(platform.waitForFault({ iova: 1 } as never)).rejects.toMatchObject({ code: 'STATUS_INVALID_PARAMETER', argument: 'filter.iova' });
    await expect(platform.waitForFault(7 as never)).rejects.toMatchObject({ code: 'STATUS_INVALID_PARAMETER', argument: 'filter' });
    for (const t of [Number.NaN, -1, 1.5, 2 ** 31, Infinity, '10']) {
      await expect(platform.waitForFault({}, t as never)).rejects.toMatchObject({ code: 'STATUS_INVALID_PARAMETER', argument: 'timeoutMs' });
    }
  });

  it('a handler throwing an object whose .stack getter throws: the default hook warns, waiters still get the fault', async () => {
    rig = simRig();
    const { V3, platform, sim } = rig;
    const dev = V3.CreateDevice(platform.findDevice(BDF)!);
    const dom = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
    V3.AttachDeviceEx(dom, dev);
    const nasty = {
      get stack(): string {
        throw new Error('stack getter');
      },
      toString(): string {
        throw new Error('toString');
      },
    };
    V3.SetDeviceFaultReportingEx(dev, 0, true, {
      FaultHandler: () => {
        throw nasty;
      },
    });
    const warnings: string[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w.message);
    };
    process.on('warning', onWarning);
    try {
      const waiting = platform.waitForFault({ bdf: BDF, iova: 0x9000n }, 10_000);
      expect(sim.dmaWrite(BDF, 0x9000n, Uint8Array.of(1)).ok).toBe(false);
      const r = await waiting;
      expect(r.delivered).toBe(true);
      expect(r.information.X64!.FaultAddress).toBe(0x9000n);
      await new Promise((res) => setImmediate(res));
      expect(warnings.some((w) => w.includes('IOMMU_DEVICE_FAULT_HANDLER threw'))).toBe(true);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('a hook that throws does not stop fault delivery either', async () => {
    rig = simRig({}, { onHandlerError: () => { throw new Error('hook'); } });
    const { V3, platform, sim } = rig;
    const dev = V3.CreateDevice(platform.findDevice(BDF)!);
    const dom = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
    V3.AttachDeviceEx(dom, dev);
    V3.SetDeviceFaultReportingEx(dev, 0, true, { FaultHandler: () => { throw new Error('handler'); } });
    const waiting = platform.waitForFault({ bdf: BDF }, 10_000);
    sim.dmaRead(BDF, 0xa000n, 4);
    expect((await waiting).information.X64!.FaultAddress).toBe(0xa000n);
    expect(platform.faults().length).toBe(1);
  });
});
