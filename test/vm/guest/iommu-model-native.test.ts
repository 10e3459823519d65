/**
 * Kernel facts of the guest's IOMMU model (`dma-iommu vm --iommu vtd|virtio|amd`), measured on the
 * real kernel and held against the simulator's profile of the same model (`simulator: { iommu }`):
 *  - the backend names the IOMMU the harness booted (read from sysfs, never told);
 *  - a translate domain's usable IOVA ranges are exactly the aperture minus the reserved regions the
 *    kernel lists in /sys/kernel/iommu_groups/N/reserved_regions;
 *  - the simulator's profile reports the same ranges, address width, fault source and fault details;
 *  - a blocked DMA: memory untouched, and where the IOMMU reports faults, the record the kernel
 *    logged agrees with the simulator's record of the same DMA (address, direction known or not,
 *    kind, reason code).
 * Every expectation is read from capabilities; the model's name only selects the profile to compare.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import type { IovaRange } from '../../../lib/backend/contract.js';
import { SIM_IOMMU_MODELS, type SimIommuModel } from '../../../lib/backend/simulated/machine.js';
import { dmaDriverFor } from '../../../lib/devices/dma.js';
import { DomainTypeTranslate, IOMMU_ACCESS_READ, IOMMU_ACCESS_WRITE, openPlatform, type IommuPlatform } from '../../../lib/index.js';
import { paceFault } from '../../support/fault-pacer.js';
import { eduDevices, inGuest, iommuGroup } from './guest-env.js';

const model = process.env.DMA_IOMMU_VM_IOMMU ?? 'vtd';
const backends: Array<'iommufd' | 'vfio-type1'> = [];
if (inGuest && existsSync('/dev/iommu')) backends.push('iommufd');
if (inGuest && existsSync('/dev/vfio/vfio')) backends.push('vfio-type1');

const U64_MAX = (1n << 64n) - 1n;
const BASE = 0x100000n;
const PAGE = 4096n;

/** The group's reserved regions as the kernel lists them ("0x...start 0x...end type"). */
function reservedRegions(bdf: string): IovaRange[] {
  return readFileSync(`/sys/kernel/iommu_groups/${iommuGroup(bdf)}/reserved_regions`, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [s, e] = l.trim().split(/\s+/);
      return { start: BigInt(s!), last: BigInt(e!) };
    })
    .sort((a, b) => (a.start < b.start ? -1 : 1));
}

/** [0, last] minus the regions. */
function complement(last: bigint, holes: IovaRange[]): IovaRange[] {
  const out: IovaRange[] = [];
  let at = 0n;
  for (const h of holes) {
    if (h.start > at) out.push({ start: at, last: h.start - 1n });
    if (h.last + 1n > at) at = h.last + 1n;
  }
  if (at <= last) out.push({ start: at, last });
  return out;
}

const hexRanges = (rs: readonly IovaRange[]) => rs.map((r) => `0x${r.start.toString(16)}-0x${r.last.toString(16)}`);

/** Attach the device to a fresh translate domain and read the geometry; returns the platform's objects too. */
function attached(platform: IommuPlatform, bdf: string) {
  const pdo = platform.findDevice(bdf)!;
  const dev = platform.CreateDevice(pdo);
  const dom = platform.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
  platform.AttachDeviceEx(dom, dev);
  return { pdo, dev, dom, geometry: platform.geometry(dom) };
}

/** An edu write to an IOVA nothing is mapped at (BASE+PAGE), after a good copy: the record seen, or null. */
async function blockedWrite(platform: IommuPlatform, bdf: string) {
  const { dev, dom } = attached(platform, bdf);
  const driver = dmaDriverFor(platform, dev)!;
  const mem = platform.allocateDmaMemory(PAGE);
  platform.MapLogicalRangeEx(dom, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, mem.asMdl(0n, PAGE), BASE, null, null);
  mem.bytes.fill(0x3c);
  const caps = platform.backend.capabilities;
  let wait: Promise<unknown> | null = null;
  if (caps.faultSource !== 'none') {
    await paceFault(caps);
    wait = platform.waitForFault({ bdf }, 10_000);
  }
  await driver.writeToMemory(BASE + PAGE, 512);
  const rec = (await wait) as Awaited<ReturnType<IommuPlatform['waitForFault']>> | null;
  expect(mem.bytes.every((b) => b === 0x3c)).toBe(true);
  if (!rec) return null;
  const d = rec.information.Details;
  return {
    iova: rec.information.X64?.FaultAddress ?? rec.information.Arm64?.FaultAddress,
    directionKnown: d.directionKnown !== false,
    write: d.directionKnown === false ? null : d.write,
    reasonCode: d.reasonCode,
  };
}

describe.runIf(inGuest && backends.length > 0 && eduDevices.length > 0)(`the ${model} IOMMU model: kernel facts and the simulator's profile`, () => {
  const bdf = eduDevices[0]!;
  it('the harness booted a model the simulator has a profile of', () => {
    expect(SIM_IOMMU_MODELS as readonly string[]).toContain(model);
  });

  for (const backend of backends) {
    describe(backend, () => {
      it(`detects the ${model} IOMMU from sysfs`, () => {
        const platform = openPlatform({ backend });
        try {
          expect(platform.backend.capabilities.iommu).toBe(model);
        } finally {
          platform.close();
        }
      });

      it('usable IOVA ranges = aperture minus the kernel\'s reserved regions, and the simulator profile reports the same geometry and fault capabilities', () => {
        const platform = openPlatform({ backend });
        const sim = openPlatform({ backend: 'sim', simulator: { iommu: model as SimIommuModel } });
        try {
          const real = attached(platform, bdf).geometry;
          const last = real.ranges.at(-1)!.last;
          expect(hexRanges(real.ranges)).toEqual(hexRanges(complement(last, reservedRegions(bdf))));
          expect(last === U64_MAX || last === (1n << BigInt(real.addressWidth)) - 1n).toBe(true);
          const modelled = attached(sim, bdf).geometry;
          expect(hexRanges(modelled.ranges)).toEqual(hexRanges(real.ranges));
          expect(modelled.addressWidth).toBe(real.addressWidth);
          const rc = platform.backend.capabilities;
          const sc = sim.backend.capabilities;
          expect(sc.iommu).toBe(rc.iommu);
          expect(sc.arch).toBe(rc.arch);
          expect(sc.faultSource === 'none').toBe(rc.faultSource === 'none');
          expect(sc.faultDetails ?? null).toEqual(rc.faultDetails ?? null);
          expect(sc.writeOnlyMappings ?? 'readable').toBe(rc.writeOnlyMappings ?? 'readable');
        } finally {
          sim.close();
          platform.close();
        }
      });

      it('a DMA to an unmapped IOVA is blocked with memory untouched; its fault record (if the IOMMU reports one) matches the simulator\'s', async () => {
        const platform = openPlatform({ backend });
        const sim = openPlatform({ backend: 'sim', simulator: { iommu: model as SimIommuModel } });
        try {
          const real = await blockedWrite(platform, bdf);
          const modelled = await blockedWrite(sim, bdf);
          if (platform.backend.capabilities.faultSource === 'none') expect(real).toBeNull();
          else expect(real).not.toBeNull();
          expect(modelled).toEqual(real);
        } finally {
          sim.close();
          platform.close();
        }
      });
    });
  }
});
