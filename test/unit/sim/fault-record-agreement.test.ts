/**
 * The simulator's fault records agree field by field with what the native backend reads from the
 * kernel log for the same fault: the simulator's kernel-log style `raw` line, parsed by the native
 * parser (lib/backend/native/kmsg.ts), gives the record's address (VT-d: the page; SMMUv3: the
 * byte), direction, device, reason code and reason text.
 */
import { describe, expect, it } from 'vitest';
import { faultMatchesBdf, parseFaultLine } from '../../../lib/backend/native/kmsg.js';
import type { SimulatedFault } from '../../../lib/backend/simulated/faults.js';
import { EDU0, GEN0, mappedRig, R, RW } from './helpers.js';

function agree(rec: SimulatedFault, vendor: 'intel' | 'smmu'): void {
  const p = parseFaultLine(rec.raw!);
  expect(p, rec.raw).not.toBeNull();
  expect(p!.vendor).toBe(vendor);
  expect(p!.iova).toBe(rec.iova);
  expect(p!.write).toBe(rec.write);
  expect(faultMatchesBdf(p!, rec.bdf)).toBe(true);
  if (vendor === 'intel') {
    expect(p!.reasonCode).toBe(rec.reasonCode);
    expect(p!.reason).toBe(rec.reason);
    expect(p!.pasid).toBe(rec.pasid);
  } else if (p!.kindHint !== 'other') {
    expect(p!.kindHint).toBe(rec.kind);
  }
}

// Each test's memory and mappings are a table at its top (mappedRig): the sizes and addresses are
// what the test is about.
describe('simulated fault records vs the native kernel-log parser', () => {
  it('x86 (VT-d): unmapped, read-only, unaligned and straddling requests, blocked devices, PASID faults', () => {
    const { sim } = mappedRig(0x2000n, [
      [0x100000n, 0n, 0x1000n, RW],
      [0x101000n, 0x1000n, 0x1000n, R],
    ]);
    sim.dmaWrite(EDU0, 0x100ff8n, new Uint8Array(16)); // straddles into the read-only page
    sim.dmaRead(EDU0, 0x300abcn, 3); // unmapped, unaligned
    sim.dmaWrite(EDU0, 0x2ff800n, new Uint8Array(0x1000)); // unmapped then unmapped
    sim.dmaRead('0000:00:04.0', 0x5123n, 4); // never attached: context entry not present
    sim.dmaRead(GEN0, 0x7000n, 4, { pasid: 9 }); // PASID not attached
    const log = sim.faultLog();
    expect(log.map((f) => f.iova)).toEqual([0x101000n, 0x300000n, 0x2ff000n, 0x5000n, 0x7000n]);
    for (const rec of log) agree(rec, 'intel');
  });

  it('arm64 (SMMUv3): the exact input address', () => {
    const { sim } = mappedRig(0x1000n, [[0x100000n, 0n, 0x1000n, R]], { sim: { arch: 'arm64' } });
    sim.dmaWrite(EDU0, 0x100ff8n, new Uint8Array(16)); // permission fault on the first byte
    sim.dmaRead(EDU0, 0x300abcn, 3); // translation fault
    const log = sim.faultLog();
    expect(log.map((f) => [f.iova, f.kind])).toEqual([
      [0x100ff8n, 'permission'],
      [0x300abcn, 'translation'],
    ]);
    for (const rec of log) agree(rec, 'smmu');
  });
});
