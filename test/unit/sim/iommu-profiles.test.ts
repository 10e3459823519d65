/**
 * The simulator's IOMMU profiles (`simulator: { iommu }`): options and their checks, the geometry
 * each model had in `dma-iommu vm --iommu MODEL`, and its fault records. The guest suite
 * test/vm/guest/iommu-model-native.test.ts holds each profile against the real kernel.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { BackendFault } from '../../../lib/backend/contract.js';
import { SimulatedBackend } from '../../../lib/backend/simulated/index.js';
import { SIM_IOMMU_MODELS, SIM_IOMMU_PROFILES } from '../../../lib/backend/simulated/machine.js';
import { EDU0, R, rig, RW } from './helpers.js';

const hex = (rs: readonly { start: bigint; last: bigint }[]) => rs.map((r) => `0x${r.start.toString(16)}-0x${r.last.toString(16)}`);

afterEach(() => {
  delete process.env.DMA_IOMMU_SIM_IOMMU;
});

describe('simulator IOMMU profiles', () => {
  it('checks the option and its environment twin, and that arch fits the model', () => {
    expect(SIM_IOMMU_MODELS).toEqual(['vtd', 'virtio', 'amd', 'smmuv3']);
    expect(() => new SimulatedBackend({ iommu: 'intel' as never })).toThrow(/iommu must be 'vtd', 'virtio', 'amd', 'smmuv3', got "intel"/);
    expect(() => new SimulatedBackend({ iommu: 'smmuv3', arch: 'x86_64' })).toThrow(/iommu 'smmuv3' is an arm64 IOMMU: arch must be 'arm64'/);
    expect(() => new SimulatedBackend({ iommu: 'virtio', arch: 'arm64' })).toThrow(/arch must be 'x86_64'/);
    process.env.DMA_IOMMU_SIM_IOMMU = 'amd';
    expect(new SimulatedBackend().capabilities.iommu).toBe('amd');
    expect(new SimulatedBackend({ arch: 'arm64' }).capabilities.iommu).toBe('smmuv3'); // an explicit arch wins over the variable
    process.env.DMA_IOMMU_SIM_IOMMU = 'sparc';
    expect(() => new SimulatedBackend()).toThrow(/DMA_IOMMU_SIM_IOMMU must be/);
    delete process.env.DMA_IOMMU_SIM_IOMMU;
    expect(new SimulatedBackend().capabilities).toMatchObject({ iommu: 'vtd', arch: 'x86_64', faultSource: 'engine' });
    expect(new SimulatedBackend({ arch: 'arm64' }).capabilities).toMatchObject({ iommu: 'smmuv3', arch: 'arm64' });
  });

  it('reports the ranges each model had in the guest (aperture minus the reserved windows)', () => {
    const geometry = (iommu: (typeof SIM_IOMMU_MODELS)[number]) => {
      const { sim, dom } = rig({ iommu });
      return sim.geometry(dom);
    };
    expect(hex(geometry('vtd').ranges)).toEqual(['0x0-0xfedfffff', '0xfef00000-0x7fffffffff']);
    expect(hex(geometry('virtio').ranges)).toEqual(['0x0-0xfedfffff', '0xfef00000-0xffffffffffffffff']);
    expect(hex(geometry('amd').ranges)).toEqual(['0x0-0xfedfffff', '0xfef00000-0xfcffffffff', '0x10000000000-0xffffffffffffffff']);
    expect(hex(geometry('smmuv3').ranges)).toEqual(['0x0-0x7ffffff', '0x8100000-0xffffffffffff']);
    expect(geometry('virtio').addressWidth).toBe(64);
  });

  it('virtio: a no-mapping fault has the exact address, no direction and reason 2 (mapping); a permission fault says W', () => {
    const { sim, dom } = rig({ iommu: 'virtio' });
    const seen: BackendFault[] = [];
    sim.onFault((f) => seen.push(f));
    const mem = sim.allocateMemory(0x1000n);
    sim.map(dom, 0x100000n, mem.runs(0n, 0x1000n), R);
    sim.dmaWrite(EDU0, 0x200010n, new Uint8Array(8));
    sim.dmaWrite(EDU0, 0x100020n, new Uint8Array(8));
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatchObject({ iova: 0x200010n, write: false, directionKnown: false, kind: 'translation', reasonCode: 2 });
    expect(seen[0]!.raw).toBe('virtio_iommu virtio0: page fault from EP 24 at 0x200010 []');
    expect(seen[1]).toMatchObject({ iova: 0x100020n, write: true, kind: 'permission', reasonCode: 2 });
    expect(seen[1]!.directionKnown).toBeUndefined();
    expect(seen[1]!.raw).toBe('virtio_iommu virtio0: page fault from EP 24 at 0x100020 [W]');
  });

  it('amd: the blocked DMA is blocked and logged for inspection, never delivered (QEMU reports none); faultSource none', () => {
    const { sim, dom } = rig({ iommu: 'amd' });
    expect(sim.capabilities).toMatchObject({ faultSource: 'none', faultDetails: null });
    const seen: BackendFault[] = [];
    sim.onFault((f) => seen.push(f));
    const mem = sim.allocateMemory(0x1000n);
    sim.map(dom, 0x100000n, mem.runs(0n, 0x1000n), RW);
    mem.bytes!.fill(9);
    expect(sim.dmaWrite(EDU0, 0x101000n, new Uint8Array(16)).ok).toBe(false);
    expect(seen).toEqual([]);
    expect(sim.faultLog()).toHaveLength(1);
    expect(mem.bytes!.every((b) => b === 9)).toBe(true);
  });

  it('each profile states its fault details, and the capabilities carry them', () => {
    for (const m of SIM_IOMMU_MODELS) {
      const caps = new SimulatedBackend({ iommu: m }).capabilities;
      expect(caps.faultDetails ?? null).toEqual(SIM_IOMMU_PROFILES[m].faultDetails);
      expect(caps.arch).toBe(SIM_IOMMU_PROFILES[m].arch);
    }
  });
});

describe('write-only mappings per profile', () => {
  it('virtio and amd enforce write-only (virtio: a read fault [R]; amd: silently); vtd lets the device read', () => {
    for (const iommu of SIM_IOMMU_MODELS.filter((m) => m !== 'smmuv3')) {
      const { sim, dom } = rig({ iommu });
      const seen: BackendFault[] = [];
      sim.onFault((f) => seen.push(f));
      const mem = sim.allocateMemory(0x1000n);
      mem.bytes!.fill(0x42);
      sim.map(dom, 0x100000n, mem.runs(0n, 0x1000n), 2);
      const r = sim.dmaRead(EDU0, 0x100000n, 8);
      if (iommu === 'virtio') {
        expect(sim.capabilities.writeOnlyMappings).toBe('enforced');
        expect(r.ok).toBe(false);
        expect(seen[0]).toMatchObject({ iova: 0x100000n, write: false, kind: 'permission', reasonCode: 2 });
        expect(seen[0]!.raw).toMatch(/\[R\]$/);
      } else if (iommu === 'amd') {
        expect(sim.capabilities.writeOnlyMappings).toBe('enforced');
        expect(r.ok).toBe(false);
        expect(seen).toEqual([]);
      } else {
        expect(sim.capabilities.writeOnlyMappings).toBe('readable');
        expect(r).toEqual({ ok: true, data: new Uint8Array(8).fill(0x42) });
      }
      expect(sim.dmaWrite(EDU0, 0x100000n, new Uint8Array(8)).ok).toBe(true);
    }
  });
});
