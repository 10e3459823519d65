/**
 * Surprise removal at every point of the lifecycle, then full clean-up and close(), then the device
 * again as a new PDO (issue 9). One module, two runners: on the simulator (test/sweep/removal.test.ts)
 * the device really disappears (`SimulatedBackend.removeDevice`); on the native backends in the VM
 * (test/vm/guest/sweep-native.test.ts) "removal" is simulated (a real hot-unplug is test/support/hot-unplug.ts) by
 * deleting handles out of order (each refused with its documented code and nothing changed).
 *
 * A scenario returns its problems (empty = it behaved); it never throws.
 */
import {
  DomainTypeTranslate,
  EduDevice,
  IommuError,
  type DmaMemory,
  type IommuDmaDevice,
  type IommuDmaDomain,
  type IommuPlatform,
  type LogicalAddressToken,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT,
  type PhysicalDeviceObject,
} from '../../lib/index.js';
import type { SweepBackend } from './known-defects.js';
import type { DMA_IOMMU_INTERFACE_V3 } from '../../lib/wdk/interface.js';
import { interfaceV3 as v3, nothingHeld, releaseHeld, roundTrip } from '../support/device-use.js';
import { agreement, PAGE, RW } from './world.js';

export const STAGES = ['after-create', 'after-attach', 'after-map', 'during-dma', 'callback-cleans-up'] as const;
export type Stage = (typeof STAGES)[number];
/** 'full': unmap, free tokens, detach, delete, free memory, then close(); 'close-only': straight to close(). */
export const MODES = ['full', 'close-only'] as const;
export type Mode = (typeof MODES)[number];

export interface RemovalDriver {
  readonly name: string;
  readonly backend: 'sim' | 'native';
  /** Which KNOWN_DEFECTS entries apply. */
  readonly kind: SweepBackend;
  open(): IommuPlatform;
  readonly bdf: string;
  /** Make the device go away (or, natively, try every out-of-order delete). Returns problems. */
  remove(p: IommuPlatform, life: Life): string[];
  /** Bring the device back (simulator: re-add it); natively a no-op. */
  readd(p: IommuPlatform): void;
  /** Codes a clean-up step may answer once the device is gone, besides success. */
  readonly goneCodes: readonly string[];
}

export interface Life {
  readonly V3: DMA_IOMMU_INTERFACE_V3;
  pdo: PhysicalDeviceObject;
  dev: IommuDmaDevice | null;
  dom: IommuDmaDomain | null;
  mem: DmaMemory | null;
  token: LogicalAddressToken | null;
  segment: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT | null;
  mapped: bigint | null;
  edu: EduDevice | null;
  callback: ((s: { AvailableDomainTypes: number }) => void) | null;
  /** State-change notifications seen (AvailableDomainTypes). */
  readonly notified: number[];
}

const MAP_IOVA = 0x100000n;
const TOKEN_IOVA = 0x400000n;

function what(e: unknown): string {
  return e instanceof IommuError ? e.code : e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** Run a clean-up step: it must succeed, or answer one of `codes` (an IommuError). */
function step(problems: string[], name: string, fn: () => void, codes: readonly string[] = []): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (e instanceof IommuError && codes.includes(e.code)) return false;
    problems.push(`${name}: ${what(e)}${e instanceof IommuError ? ` (${e.message})` : ''}`);
    return false;
  }
}

/** Build the lifecycle up to `stage`. */
function build(p: IommuPlatform, bdf: string, stage: Stage): Life {
  const V3 = v3(p);
  const pdo = p.findDevice(bdf);
  if (!pdo) throw new Error(`no device ${bdf}`);
  const life: Life = { V3, pdo, dev: null, dom: null, mem: null, token: null, segment: null, mapped: null, edu: null, callback: null, notified: [] };
  life.dev = V3.CreateDevice(pdo);
  if (stage === 'after-create') return life;
  life.dom = V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
  V3.AttachDeviceEx(life.dom, life.dev);
  if (stage === 'after-attach') return life;
  life.mem = p.allocateDmaMemory(4n * PAGE);
  life.mapped = V3.MapLogicalRangeEx(life.dom, RW, life.mem.asMdl(0n, 2n * PAGE), MAP_IOVA, null, null);
  life.token = V3.ReserveLogicalAddressRange(life.dom, 0x10000n, TOKEN_IOVA, null, null);
  life.segment = V3.MapReservedLogicalRange(life.token, 0n, RW, life.mem.asMdl(2n * PAGE, PAGE));
  V3.SetDeviceFaultReportingEx(life.dev, 0, true, { FaultHandler: () => undefined, FaultContext: null });
  life.edu = new EduDevice(p.deviceRegions(life.dev), { timeoutMs: 3000 });
  life.edu.enableBusMaster();
  if (stage === 'callback-cleans-up') {
    // the driver's removal handler: on AvailableDomainTypes == 0 it releases everything it holds
    const dev = life.dev;
    life.callback = (s) => {
      life.notified.push(s.AvailableDomainTypes);
      if (s.AvailableDomainTypes !== 0) return;
      const problems: string[] = [];
      cleanUp(p, life, problems, ['STATUS_DEVICE_REMOVED'], 'in the callback: ');
      if (problems.length) life.notified.push(-1), (callbackProblems.get(p) ?? callbackProblems.set(p, []).get(p)!).push(...problems);
    };
    V3.RegisterInterfaceStateChangeCallback(life.callback, null, dev, { AvailableDomainTypes: 1 });
  }
  return life;
}

const callbackProblems = new WeakMap<IommuPlatform, string[]>();

/** Release everything the lifecycle holds, in dependency order. */
function cleanUp(p: IommuPlatform, life: Life, problems: string[], goneCodes: readonly string[], prefix = ''): void {
  const { V3 } = life;
  if (life.segment) {
    const s = life.segment;
    life.segment = null;
    step(problems, `${prefix}UnmapReservedLogicalRange`, () => V3.UnmapReservedLogicalRange(s), goneCodes);
  }
  if (life.token) {
    const t = life.token;
    life.token = null;
    step(problems, `${prefix}FreeReservedLogicalAddressRange`, () => V3.FreeReservedLogicalAddressRange(t), goneCodes);
  }
  if (life.mapped !== null && life.dom) {
    const d = life.dom;
    life.mapped = null;
    step(problems, `${prefix}UnmapLogicalRange`, () => V3.UnmapLogicalRange(d, MAP_IOVA, 2n), goneCodes);
  }
  if (life.callback && life.dev) {
    const cb = life.callback;
    const dev = life.dev;
    life.callback = null;
    step(problems, `${prefix}UnregisterInterfaceStateChangeCallback`, () => V3.UnregisterInterfaceStateChangeCallback(cb, dev), goneCodes);
  }
  if (life.dev && life.dom) {
    const dev = life.dev;
    step(problems, `${prefix}DetachDeviceEx`, () => V3.DetachDeviceEx(dev), goneCodes);
  }
  if (life.dom) {
    const d = life.dom;
    life.dom = null;
    step(problems, `${prefix}DeleteDomain`, () => V3.DeleteDomain(d));
  }
  if (life.dev) {
    const dev = life.dev;
    life.dev = null;
    step(problems, `${prefix}DeleteDevice`, () => V3.DeleteDevice(dev));
  }
  if (life.mem) {
    const m = life.mem;
    life.mem = null;
    step(problems, `${prefix}DmaMemory.free`, () => m.free());
  }
  void p;
}

/** After everything was released: the platform holds nothing and agrees with its backend. */
function empty(p: IommuPlatform, problems: string[]): void {
  const s = p.inspect() as { devices: unknown[]; domains: unknown[]; memory: unknown[] };
  if (s.devices.length || s.domains.length || s.memory.length) {
    problems.push(`after clean-up the platform still holds ${s.devices.length} device(s), ${s.domains.length} domain(s), ${s.memory.length} allocation(s)`);
  }
  problems.push(...agreement(p).map((x) => `after clean-up: ${x}`));
}

/** The device works again: a new PDO, create, attach, map, a DMA round trip that moves the bytes. */
async function usableAgain(driver: RemovalDriver, p: IommuPlatform, stalePdo: PhysicalDeviceObject, problems: string[]): Promise<void> {
  const V3 = v3(p);
  const pdo = p.findDevice(driver.bdf);
  if (!pdo) {
    problems.push('after re-add: findDevice() does not see the device');
    return;
  }
  {
    if (pdo === stalePdo) problems.push('after re-add: findDevice() returned the stale PDO (expected a new one)');
    try {
      const d = V3.CreateDevice(stalePdo);
      V3.DeleteDevice(d);
      problems.push('after re-add: CreateDevice(stale PDO) was accepted (expected STATUS_INVALID_PARAMETER_1)');
    } catch (e) {
      if (!(e instanceof IommuError) || e.code !== 'STATUS_INVALID_PARAMETER_1') problems.push(`after re-add: CreateDevice(stale PDO) answered ${what(e)}, expected STATUS_INVALID_PARAMETER_1`);
    }
  }
  const held = nothingHeld();
  try {
    const { moved } = await roundTrip(p, V3, pdo, held, { seed: 3, timeoutMs: 3000 });
    if (!moved) problems.push('after re-add: the DMA round trip did not move the bytes');
  } catch (e) {
    problems.push(`after re-add: ${what(e)}${e instanceof IommuError ? ` (${e.message})` : ''}`);
  } finally {
    releaseHeld(V3, held, (name, fn) => void step(problems, `after re-add: ${name}`, fn));
  }
}

/** One scenario: build to `stage`, remove, clean up (`mode`), close, re-add, use again. */
export async function removalScenario(driver: RemovalDriver, stage: Stage, mode: Mode): Promise<string[]> {
  const problems: string[] = [];
  let p: IommuPlatform;
  try {
    p = driver.open();
  } catch (e) {
    return [`open: ${what(e)}`];
  }
  let life: Life;
  try {
    life = build(p, driver.bdf, stage);
  } catch (e) {
    try {
      p.close();
    } catch {
      /* reported below */
    }
    return [`building to ${stage}: ${what(e)}${e instanceof IommuError ? ` (${e.message})` : ''}`];
  }
  const stalePdo = life.pdo;
  let dma: Promise<unknown> | null = null;
  if (stage === 'during-dma' && life.edu && life.mapped !== null) {
    // a transfer in flight when the device goes: it must settle (reject with an IommuError on
    // removal, or complete when nothing really went away), never hang
    dma = life.edu.dmaToDevice(MAP_IOVA, 2048).then(
      () => 'completed',
      (e: unknown) => e,
    );
  }
  problems.push(...driver.remove(p, life));
  if (dma) {
    const r = await Promise.race([dma, new Promise((res) => setTimeout(() => res('hang'), 10_000))]);
    if (r === 'hang') problems.push('the DMA in flight did not settle within 10 s of the removal');
    else if (r !== 'completed' && !(r instanceof IommuError)) problems.push(`the DMA in flight rejected with ${what(r)}, not an IommuError`);
    else if (r instanceof IommuError && driver.backend === 'sim' && r.code !== 'STATUS_DEVICE_REMOVED') problems.push(`the DMA in flight rejected with ${r.code}, expected STATUS_DEVICE_REMOVED`);
  }
  if (stage === 'callback-cleans-up' && driver.backend === 'sim') {
    if (!life.notified.includes(0)) problems.push(`the state-change callback was not told AvailableDomainTypes 0 (saw ${life.notified.join(', ')})`);
    problems.push(...(callbackProblems.get(p) ?? []));
  }
  if (mode === 'full') {
    cleanUp(p, life, problems, driver.goneCodes);
    empty(p, problems);
  }
  step(problems, 'close()', () => p.close());
  // a fresh platform gets the device, usable, and the closed platform's PDO is refused there
  let q: IommuPlatform | null = null;
  try {
    q = driver.open();
    await usableAgain(driver, q, stalePdo, problems);
  } catch (e) {
    problems.push(`after close, a new platform: ${what(e)}`);
  } finally {
    if (q) step(problems, 'close() of the new platform', () => q!.close());
  }
  return problems;
}

/** Re-add on the same platform (simulator): removal, clean-up, re-add, then use without closing. */
export async function readdSamePlatform(driver: RemovalDriver, stage: Stage): Promise<string[]> {
  const problems: string[] = [];
  const p = driver.open();
  try {
    const life = build(p, driver.bdf, stage);
    const stale = life.pdo;
    problems.push(...driver.remove(p, life));
    cleanUp(p, life, problems, driver.goneCodes);
    driver.readd(p);
    await usableAgain(driver, p, stale, problems);
    empty(p, problems);
  } catch (e) {
    problems.push(`${what(e)}${e instanceof IommuError ? ` (${e.message})` : ''}`);
  } finally {
    step(problems, 'close()', () => p.close());
  }
  return problems;
}

/** Natively: every out-of-order delete is refused with its documented code and changes nothing. */
export function outOfOrderDeletes(p: IommuPlatform, life: Life): string[] {
  const problems: string[] = [];
  const { V3 } = life;
  const before = JSON.stringify((p.inspect() as { devices: unknown; domains: unknown }).domains);
  const refuse = (name: string, fn: () => void, code: string): void => {
    try {
      fn();
      problems.push(`${name} out of order was accepted (expected ${code})`);
    } catch (e) {
      if (!(e instanceof IommuError) || e.code !== code) problems.push(`${name} out of order answered ${what(e)}, expected ${code}`);
    }
  };
  if (life.dom && life.dev) refuse('DeleteDomain with a device attached', () => V3.DeleteDomain(life.dom!), 'STATUS_RESOURCE_IN_USE');
  if (life.dom && life.dev) refuse('DeleteDevice while attached', () => V3.DeleteDevice(life.dev!), 'STATUS_RESOURCE_IN_USE');
  if (life.token && life.segment) refuse('FreeReservedLogicalAddressRange with a mapped segment', () => V3.FreeReservedLogicalAddressRange(life.token!), 'STATUS_RESOURCE_IN_USE');
  if (life.mem && life.mapped !== null) refuse('DmaMemory.free while mapped', () => life.mem!.free(), 'STATUS_RESOURCE_IN_USE');
  const after = JSON.stringify((p.inspect() as { devices: unknown; domains: unknown }).domains);
  if (before !== after) problems.push('a refused out-of-order delete changed the platform bookkeeping');
  problems.push(...agreement(p));
  return problems;
}
