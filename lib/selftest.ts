/**
 * The selftest: the whole WDK lifecycle through the public interface on one device — create the
 * device, query domain types, state-change callback, create a domain, attach, enable fault
 * reporting, reserve + map, a DMA round trip that must move the bytes, a DMA to an unmapped IOVA
 * that must be blocked (memory untouched) and reported as a fault, then unmap, free, detach and
 * delete. Used by `dma-iommu selftest` on every backend.
 */
import type { BackendChoice } from './backend/select.js';
import type { IommuDmaDevice, IommuDmaDomain, LogicalAddressToken, PhysicalDeviceObject } from './core/objects.js';
import type { FaultRecord, IommuPlatform } from './core/platform.js';
import type { DmaMemory } from './core/physical.js';
import { type DmaDriver, dmaDriverFor } from './devices/dma.js';
import { IommuError } from './errors.js';
import { openPlatform } from './index.js';
import {
  DMA_IOMMU_INTERFACE_EX_VERSION_3,
  DomainTypeTranslate,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
} from './wdk/constants.js';
import { buildInterfaceEx, type DMA_IOMMU_INTERFACE_V3 } from './wdk/interface.js';
import type { FAULT_INFORMATION, IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT } from './wdk/types.js';

export interface SelftestStep {
  readonly name: string;
  readonly ok: boolean;
  readonly ms: number;
  readonly detail: string;
  readonly [extra: string]: unknown;
}

export interface SelftestReport {
  readonly ok: boolean;
  readonly backend: string;
  readonly reason: string;
  readonly device: string | null;
  readonly steps: SelftestStep[];
}

export interface SelftestOptions {
  readonly backend?: BackendChoice;
  /** BDF of the device to use; default: the first usable device with a DMA driver. */
  readonly device?: string;
  /** How long to wait for the blocked DMA's fault report (the kernel log path is polled). */
  readonly faultTimeoutMs?: number;
  /** Use this platform instead of opening one (it is not closed). */
  readonly platform?: IommuPlatform;
}

const SRC_IOVA = 0x100000n; // reserved range (token) base
const DST_IOVA = 0x200000n; // logical mapping
const LENGTH = 2048; // within the edu's limits (QEMU 7.2 aborts on a full 4 KiB transfer)

/** Deterministic test bytes: an xorshift32 stream from `seed` (also the unit tests' DMA payloads). */
export function pattern(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e); // an IommuError's message starts with its code
}

export async function runSelftest(options: SelftestOptions = {}): Promise<SelftestReport> {
  const steps: SelftestStep[] = [];
  const ft = options.faultTimeoutMs;
  if (ft !== undefined && (typeof ft !== 'number' || !Number.isInteger(ft) || ft < 1 || ft > 2 ** 31 - 1)) {
    throw new IommuError('STATUS_INVALID_PARAMETER', `faultTimeoutMs must be whole milliseconds in 1..2147483647 (the longest a Node timer can wait; got ${String(ft)})`, { operation: 'runSelftest', argument: 'faultTimeoutMs' });
  }
  let platform: IommuPlatform;
  try {
    platform = options.platform ?? openPlatform(options.backend ? { backend: options.backend } : {});
  } catch (e) {
    return { ok: false, backend: options.backend ?? 'auto', reason: describe(e), device: null, steps: [{ name: 'open', ok: false, ms: 0, detail: describe(e) }] };
  }
  const iface = buildInterfaceEx(platform, DMA_IOMMU_INTERFACE_EX_VERSION_3, 0n);
  if (iface.Version !== 3) throw new Error('unreachable');
  const V3: DMA_IOMMU_INTERFACE_V3 = iface.V3;
  const cleanup: Array<[name: string, fn: () => void]> = [];
  let failed = false;
  let tearingDown = false;

  const step = async <T>(name: string, fn: () => T | Promise<T>, detail: (v: T) => string | Record<string, unknown> = () => ''): Promise<T | undefined> => {
    if (failed && !tearingDown) {
      steps.push({ name, ok: false, ms: 0, detail: 'skipped: an earlier step failed' });
      return undefined;
    }
    const t0 = performance.now();
    try {
      const v = await fn();
      const d = detail(v);
      steps.push({ name, ok: true, ms: Math.round((performance.now() - t0) * 10) / 10, ...(typeof d === 'string' ? { detail: d } : { detail: '', ...d }) });
      return v;
    } catch (e) {
      failed = true;
      steps.push({ name, ok: false, ms: Math.round((performance.now() - t0) * 10) / 10, detail: describe(e), ...(e instanceof IommuError ? { code: e.code } : {}) });
      return undefined;
    }
  };

  let pdo: PhysicalDeviceObject | undefined;
  let dev: IommuDmaDevice | undefined;
  let driver: DmaDriver | null = null;
  let domain: IommuDmaDomain | undefined;
  let src: DmaMemory | undefined;
  let dst: DmaMemory | undefined;
  let token: LogicalAddressToken | undefined;
  let segment: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT | undefined;
  const faults: FAULT_INFORMATION[] = [];
  const stateCalls: number[] = [];
  const onState = (s: { AvailableDomainTypes: number }): void => {
    stateCalls.push(s.AvailableDomainTypes);
  };

  try {
    pdo = await step('find-device', () => {
      const all = platform.enumerateDevices();
      if (options.device) {
        const d = platform.findDevice(options.device);
        if (!d) throw new IommuError('STATUS_NOT_FOUND', `no device ${options.device} (have: ${all.map((x) => x.bdf).join(', ') || 'none'})`, { argument: '--device' });
        return d;
      }
      const usable = all.filter((d) => d.usable && d.iommuGroup !== null);
      const pick = usable.find((d) => d.vendorId === 0x1234 && d.deviceId === 0x11e8) ?? usable[0];
      if (!pick) throw new IommuError('STATUS_NOT_FOUND', `no usable device behind an IOMMU (found ${all.length})`);
      return pick;
    }, (d) => ({ detail: `${d.bdf} ${d.vendorId.toString(16)}:${d.deviceId.toString(16)} group ${d.iommuGroup}`, bdf: d.bdf }));

    dev = await step('create-device', () => V3.CreateDevice(pdo!), (d) => String(d));
    if (dev) cleanup.push(['delete-device', () => V3.DeleteDevice(dev!)]);

    await step('query-domain-types', () => {
      const mask = V3.QueryAvailableDomainTypes(dev!);
      if ((mask & (1 << DomainTypeTranslate)) === 0) throw new IommuError('STATUS_ACCESS_DENIED', `DomainTypeTranslate not available (mask 0x${mask.toString(16)})`);
      return mask;
    }, (m) => ({ detail: `available mask 0x${m.toString(16)}`, mask: m }));

    await step('state-callback', () => {
      V3.RegisterInterfaceStateChangeCallback(onState, null, dev!, { AvailableDomainTypes: 1 });
      cleanup.push(['unregister-callback', () => V3.UnregisterInterfaceStateChangeCallback(onState, dev!)]);
      if (stateCalls.length !== 1) throw new IommuError('STATUS_UNSUCCESSFUL', `callback ran ${stateCalls.length} times on registration, expected once`);
      return stateCalls[0];
    }, (m) => `invoked on registration with mask 0x${m.toString(16)}`);

    driver = (await step('dma-driver', () => {
      const d = dmaDriverFor(platform, dev!);
      if (!d) throw new IommuError('STATUS_NOT_SUPPORTED', `dma-iommu has no DMA driver for ${pdo!.bdf} (${pdo!.vendorId.toString(16)}:${pdo!.deviceId.toString(16)}) on the ${platform.backend.kind} backend`);
      return d;
    }, (d) => d.name)) ?? null;

    domain = await step('create-domain', () => V3.CreateDomainEx(DomainTypeTranslate, 0n, null, null), (d) => String(d));
    if (domain) cleanup.push(['delete-domain', () => V3.DeleteDomain(domain!)]);

    await step('attach', () => {
      V3.AttachDeviceEx(domain!, dev!);
      cleanup.push(['detach', () => V3.DetachDeviceEx(dev!)]);
      return platform.geometry(domain!);
    }, (g) => ({ detail: g.ranges.map((r) => `0x${r.start.toString(16)}-0x${r.last.toString(16)}`).join(' '), iovaRanges: g.ranges }));

    await step('fault-reporting', () => {
      const caps = platform.backend.capabilities;
      if (caps.faultSource !== 'none') {
        V3.SetDeviceFaultReportingEx(dev!, 0, true, { FaultHandler: (_ctx, info) => faults.push(info), FaultContext: null });
        return `handler registered (faults come from ${caps.faultSource})`;
      }
      // no fault source (e.g. QEMU's amd-iommu logs no fault): the platform must say so, not accept a handler that never runs
      try {
        V3.SetDeviceFaultReportingEx(dev!, 0, true, { FaultHandler: () => {}, FaultContext: null });
      } catch (e) {
        if (e instanceof IommuError && e.code === 'STATUS_NOT_SUPPORTED') return `not available: no fault record can be observed here (faultSource 'none'${caps.iommu ? `, IOMMU ${caps.iommu}` : ''}); SetDeviceFaultReportingEx answers STATUS_NOT_SUPPORTED`;
        throw e;
      }
      throw new IommuError('STATUS_UNSUCCESSFUL', "SetDeviceFaultReportingEx accepted a handler although the backend's faultSource is 'none'");
    }, (detail) => detail);

    await step('allocate-memory', () => {
      src = platform.allocateDmaMemory(4096n);
      dst = platform.allocateDmaMemory(4096n);
      cleanup.push(['free-memory', () => {
        dst!.free();
        src!.free();
      }]);
      return [src.physicalAddress, dst.physicalAddress];
    }, ([a, b]) => `two pages at PA 0x${a.toString(16)} and 0x${b.toString(16)}`);

    await step('reserve-and-map', () => {
      token = V3.ReserveLogicalAddressRange(domain!, 0x10000n, SRC_IOVA, null, null);
      cleanup.push(['free-reserved', () => V3.FreeReservedLogicalAddressRange(token!)]);
      segment = V3.MapReservedLogicalRange(token, 0n, IOMMU_ACCESS_READ, src!.asMdl());
      cleanup.push(['unmap-reserved', () => V3.UnmapReservedLogicalRange(segment!)]);
      const out = V3.MapLogicalRangeEx(domain!, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, dst!.asPfnArray(), DST_IOVA, null, null);
      if (out !== DST_IOVA) throw new IommuError('STATUS_UNSUCCESSFUL', `LogicalAddressOut 0x${out.toString(16)} != 0x${DST_IOVA.toString(16)}`);
      return out;
    }, () => `source page reserved+mapped read-only at 0x${SRC_IOVA.toString(16)}, destination mapped read/write at 0x${DST_IOVA.toString(16)}`);

    const data = pattern(LENGTH, Date.now());
    let retried = false;
    await step('dma-roundtrip', async () => {
      src!.bytes.set(data);
      dst!.bytes.fill(0);
      await driver!.copy(SRC_IOVA, DST_IOVA, LENGTH);
      const got = dst!.bytes.subarray(0, LENGTH);
      let same = 0;
      for (let i = 0; i < LENGTH; i++) if (got[i] === data[i]) same++;
      if (same !== LENGTH) throw new IommuError('STATUS_IO_DEVICE_ERROR', `${LENGTH - same} of ${LENGTH} bytes differ after the round trip`);
      if (faults.length) throw new IommuError('STATUS_IO_DEVICE_ERROR', `unexpected fault during the round trip at 0x${(faults[0].X64?.FaultAddress ?? faults[0].Arm64?.FaultAddress ?? 0n).toString(16)}`);
      return LENGTH;
    }, (n) => ({ detail: `${n} bytes RAM -> device -> RAM via IOVA 0x${SRC_IOVA.toString(16)} -> 0x${DST_IOVA.toString(16)}, all equal`, bytes: n }));

    await step('dma-blocked-fault', async () => {
      V3.UnmapLogicalRange(domain!, DST_IOVA, 1n);
      dst!.bytes.fill(0xa5, 0, LENGTH);
      const before = dst!.bytes.slice(0, LENGTH);
      // A fault source that drops records past a rate (the kernel log) may have dropped this one
      // if faults were made just before: then wait out its window and try once more.
      const caps = platform.backend.capabilities;
      if (caps.faultSource === 'none') {
        // No fault record can come (e.g. QEMU's amd-iommu logs none): the DMA must still be blocked.
        await driver!.writeToMemory(DST_IOVA, LENGTH);
        const after = dst!.bytes.subarray(0, LENGTH);
        for (let i = 0; i < LENGTH; i++) {
          if (after[i] !== before[i]) throw new IommuError('STATUS_IO_DEVICE_ERROR', `the blocked DMA changed memory at offset ${i}`);
        }
        return { record: null, info: null };
      }
      const limit = caps.faultRateLimit;
      const attempt = async (timeoutMs: number): Promise<FaultRecord | null> => {
        const wait = platform.waitForFault({ bdf: pdo!.bdf, iova: DST_IOVA }, timeoutMs).catch(() => null);
        await driver!.writeToMemory(DST_IOVA, LENGTH);
        return wait;
      };
      const timeout = options.faultTimeoutMs ?? 10_000;
      let record = await attempt(limit ? Math.min(timeout, limit.intervalMs) : timeout);
      if (!record && limit) {
        retried = true;
        await new Promise((r) => setTimeout(r, limit.intervalMs + 500));
        record = await attempt(timeout);
      }
      if (!record) throw new IommuError('STATUS_TIMEOUT', `no fault was reported for the blocked DMA within ${timeout} ms`);
      const after = dst!.bytes.subarray(0, LENGTH);
      for (let i = 0; i < LENGTH; i++) {
        if (after[i] !== before[i]) throw new IommuError('STATUS_IO_DEVICE_ERROR', `the blocked DMA changed memory at offset ${i}`);
      }
      const info = faults.find((f) => (f.X64?.FaultAddress ?? f.Arm64?.FaultAddress) === DST_IOVA);
      if (!info) throw new IommuError('STATUS_UNSUCCESSFUL', 'the fault was seen but not delivered to the SetDeviceFaultReportingEx handler');
      return { record, info };
    }, ({ info }) => info === null ? {
      detail: `blocked, memory unchanged; no fault record (faultSource 'none'${platform.backend.capabilities.iommu ? `, IOMMU ${platform.backend.capabilities.iommu}` : ''})`,
      fault: null,
      memoryUnchanged: true,
    } : ({
      ...(retried ? { retriedAfterRateLimit: true } : {}),
      detail: `${retried ? '(retried after the fault log\'s rate limit) ' : ''}blocked; fault for ${info.Details.bdf} at 0x${(info.X64?.FaultAddress ?? info.Arm64?.FaultAddress ?? 0n).toString(16)} (${info.Details.directionKnown === false ? 'direction not reported' : info.Details.write ? 'write' : 'read'}, ${info.Details.source}: ${info.Details.reason})`,
      fault: { device: info.Details.bdf, iova: info.X64?.FaultAddress ?? info.Arm64?.FaultAddress, write: info.Details.write, source: info.Details.source, reason: info.Details.reason, ...(info.Details.raw ? { raw: info.Details.raw } : {}) },
      memoryUnchanged: true,
    }));
  } finally {
    // teardown in reverse order, each a step of its own, run even after a failure
    tearingDown = true;
    for (const [name, fn] of cleanup.reverse()) await step(name, fn);
    if (!options.platform) {
      try {
        platform.close();
      } catch (e) {
        steps.push({ name: 'close', ok: false, ms: 0, detail: describe(e) });
      }
    }
  }
  return {
    ok: steps.every((s) => s.ok) && steps.some((s) => s.name === 'dma-roundtrip') && steps.some((s) => s.name === 'dma-blocked-fault'),
    backend: platform.backend.kind,
    reason: platform.backend.reason,
    device: pdo?.bdf ?? null,
    steps,
  };
}
