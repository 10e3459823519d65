/**
 * A hot-unplug during a running script, end to end (issue 11 item 3). One scenario, several
 * runners: the simulator (test/sweep/hot-unplug.test.ts: removal injection) and the native
 * backends in a `dma-iommu vm run --hotplug` guest (test/vm/guest/hotplug-native.test.ts: QEMU
 * device_del / device_add through lib/vm/guest-control.ts).
 *
 * The script holds a device attached to a translate domain with a mapping and a working DMA path.
 * The unplug starts; the interface-state-change callback must hear AvailableDomainTypes 0; from
 * then on calls on the device answer STATUS_DEVICE_REMOVED; the script (reacting to the callback)
 * releases everything; the unplug must then complete (natively: QEMU's DEVICE_DELETED, i.e. the
 * guest kernel ejected the device); the device is gone from the enumeration; after a plug it is a
 * new PDO that works from scratch (create, attach, map, a DMA round trip that moves the bytes) on
 * the same platform, and the old PDO is refused.
 *
 * Returns its problems (empty = it behaved) and what it measured; it never throws.
 */
import { DomainTypeTranslate, IommuError, type IommuPlatform } from '../../lib/index.js';
import { expect } from 'vitest';
import { interfaceV3, nothingHeld, releaseHeld, roundTrip, ROUND_TRIP_IOVA as MAP_IOVA } from './device-use.js';

export interface HotUnplugDriver {
  readonly name: string;
  readonly bdf: string;
  open(): IommuPlatform;
  /** Start the unplug; the promise settles when it completed (or failed). */
  unplug(p: IommuPlatform): Promise<unknown>;
  /** Plug a fresh device into the slot; resolves once it can be enumerated. */
  plug(p: IommuPlatform): Promise<unknown>;
  /** How long to wait for the callback after the unplug started (ms). */
  readonly callbackTimeoutMs: number;
}

/** What every backend answers on a removed device (the scenario's `removedAnswers`, asserted by its callers). */
export const REMOVED_ANSWERS: Readonly<Record<string, string>> = {
  configRead: 'STATUS_DEVICE_REMOVED',
  barRead32: 'STATUS_DEVICE_REMOVED',
  DetachDeviceEx: 'STATUS_DEVICE_REMOVED',
  AttachDeviceEx: 'STATUS_DEVICE_REMOVED',
  QueryAvailableDomainTypes: 'success',
};

export interface HotUnplugResult {
  problems: string[];
  /** unplug started → state-change callback with AvailableDomainTypes 0, ms. */
  callbackLatencyMs: number | null;
  /** unplug started → unplug completed, ms. */
  unplugMs: number | null;
  /** AvailableDomainTypes values the callback heard, in order. */
  notified: number[];
  /** Codes the calls on the removed device answered, by call. */
  removedAnswers: Record<string, string>;
}

function what(e: unknown): string {
  return e instanceof IommuError ? `${e.code} (${e.message})` : e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'success';
  } catch (e) {
    return e instanceof IommuError ? e.code : `${(e as Error)?.name ?? 'thrown'}: ${(e as Error)?.message ?? String(e)}`;
  }
}

/** What every run of the scenario must show, on any backend: no problems, the callback heard the device go (0) after it was there, both latencies measured, the removed device's answers. */
export function expectScenarioBehaved(r: HotUnplugResult): void {
  expect(r.problems).toEqual([]);
  expect(r.notified[0]).toBeGreaterThan(0);
  expect(r.notified).toContain(0);
  expect(r.callbackLatencyMs).not.toBeNull();
  expect(r.unplugMs).not.toBeNull();
  expect(r.removedAnswers).toEqual(REMOVED_ANSWERS);
}

export async function hotUnplugScenario(driver: HotUnplugDriver): Promise<HotUnplugResult> {
  const r: HotUnplugResult = { problems: [], callbackLatencyMs: null, unplugMs: null, notified: [], removedAnswers: {} };
  const problems = r.problems;
  let p: IommuPlatform;
  try {
    p = driver.open();
  } catch (e) {
    problems.push(`open: ${what(e)}`);
    return r;
  }
  const V3 = interfaceV3(p);
  try {
    const pdo = p.findDevice(driver.bdf);
    if (!pdo) throw new Error(`no device ${driver.bdf} to start with`);
    const { dev, dom, mem, edu, moved } = await roundTrip(p, V3, pdo, nothingHeld(), { seed: 5, timeoutMs: 5000 });
    if (!moved) problems.push('before the unplug: the DMA round trip did not move the bytes');

    // The driver's removal handler: on AvailableDomainTypes 0 it releases what it holds (next tick).
    let removedAt = 0;
    let heard: () => void = () => {};
    const callbackSeen = new Promise<void>((res) => (heard = res));
    const callback = (s: { AvailableDomainTypes: number }) => {
      r.notified.push(s.AvailableDomainTypes);
      if (s.AvailableDomainTypes === 0 && removedAt === 0) {
        removedAt = performance.now();
        heard();
      }
    };
    V3.RegisterInterfaceStateChangeCallback(callback, null, dev, { AvailableDomainTypes: 1 });
    if (r.notified[0] === undefined || r.notified[0] === 0) problems.push(`at registration the callback heard ${r.notified.join(', ') || 'nothing'}, expected a non-zero mask`);

    const started = performance.now();
    let unplugDone = 0;
    let unplugError: unknown = null;
    const unplugging = driver.unplug(p).then(
      () => void (unplugDone = performance.now()),
      (e: unknown) => void (unplugError = e),
    );
    const timedOut = await Promise.race([
      callbackSeen.then(() => false),
      unplugging.then(() => new Promise<boolean>((res) => setTimeout(() => res(removedAt === 0), 100))),
      new Promise<boolean>((res) => setTimeout(() => res(true), driver.callbackTimeoutMs)),
    ]);
    if (timedOut || removedAt === 0) {
      problems.push(`the state-change callback did not hear AvailableDomainTypes 0 within ${driver.callbackTimeoutMs} ms of the unplug (heard ${r.notified.join(', ')}; unplug ${unplugError ? `failed: ${what(unplugError)}` : unplugDone ? 'completed' : 'pending'})`);
    } else r.callbackLatencyMs = removedAt - started;

    // Calls on the removed device.
    const d = dev;
    const dm = dom;
    const m = mem;
    const other = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
    r.removedAnswers.configRead = codeOf(() => p.deviceRegions(d).configRead(0, 2));
    r.removedAnswers.barRead32 = codeOf(() => edu.identify());
    r.removedAnswers.DetachDeviceEx = codeOf(() => V3.DetachDeviceEx(d)); // and recorded detached
    r.removedAnswers.AttachDeviceEx = codeOf(() => V3.AttachDeviceEx(other, d));
    r.removedAnswers.QueryAvailableDomainTypes = codeOf(() => {
      const mask = V3.QueryAvailableDomainTypes(d);
      if (mask !== 0) throw new Error(`mask ${mask}, expected 0`);
    });
    for (const [call, code] of Object.entries(r.removedAnswers)) {
      const want = call === 'QueryAvailableDomainTypes' ? 'success' : 'STATUS_DEVICE_REMOVED';
      if (code !== want) problems.push(`${call} on the removed device answered ${code}, expected ${want}`);
    }

    // Clean release: every step succeeds now (the device is recorded detached).
    const step = (name: string, fn: () => void) => {
      try {
        fn();
      } catch (e) {
        problems.push(`release: ${name}: ${what(e)}`);
      }
    };
    step('DeleteDomain (other)', () => V3.DeleteDomain(other));
    step('UnmapLogicalRange', () => V3.UnmapLogicalRange(dm, MAP_IOVA, 2n));
    step('UnregisterInterfaceStateChangeCallback', () => V3.UnregisterInterfaceStateChangeCallback(callback, d));
    step('DeleteDomain', () => V3.DeleteDomain(dm));
    step('DeleteDevice', () => V3.DeleteDevice(d));
    step('DmaMemory.free', () => m.free());

    await unplugging;
    if (unplugError) problems.push(`the unplug did not complete after the release: ${what(unplugError)}`);
    else r.unplugMs = unplugDone - started;
    if (!unplugError && p.findDevice(driver.bdf)) problems.push(`after the unplug, findDevice(${driver.bdf}) still finds a device`);
    if (codeOf(() => V3.CreateDevice(pdo)) !== 'STATUS_INVALID_PARAMETER_1') problems.push('CreateDevice(the removed PDO) was not refused with STATUS_INVALID_PARAMETER_1');

    // Plug again: a new PDO that works from scratch, on the same platform.
    await driver.plug(p);
    const fresh = p.findDevice(driver.bdf);
    if (!fresh) problems.push(`after the plug, findDevice(${driver.bdf}) finds nothing`);
    else {
      if (fresh === pdo) problems.push('after the plug, findDevice returned the old PDO (expected a new one)');
      const held = nothingHeld();
      const { moved } = await roundTrip(p, V3, fresh, held, { seed: 77, timeoutMs: 5000 });
      if (!moved) problems.push('after the plug: the DMA round trip did not move the bytes');
      releaseHeld(V3, held);
    }
  } catch (e) {
    problems.push(what(e));
  } finally {
    try {
      p.close();
    } catch (e) {
      problems.push(`close(): ${what(e)}`);
    }
  }
  return r;
}
