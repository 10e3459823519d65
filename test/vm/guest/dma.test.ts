/**
 * Real DMA through the emulated VT-d, driven from Node (via the C helper until the native addon lands):
 * IOVA ranges, a round trip through a mapped IOVA, and a DMA to an unmapped IOVA that the IOMMU blocks
 * with the kernel's fault record. Runs inside a `dma-iommu vm` guest; skipped anywhere else.
 */
import { describe, expect, it } from 'vitest';
import { eduDevices, escapeRe, EXPECTED_IOVA_RANGES, inGuest, kernel, Kmsg, probe, shortBdf, iommuGroup } from './guest-env.js';

/** Which uAPI drives which edu device: on the iommufd kernel both uAPIs are present, so use both. */
const plan: { bdf: string; api: 'type1' | 'iommufd'; iova: number }[] = eduDevices.map((bdf, i) => ({
  bdf,
  api: kernel === 'iommufd' && i === 0 ? 'iommufd' : 'type1',
  iova: 0x100000 + i * 0x400000,
}));
const hex = (n: number) => `0x${n.toString(16)}`;

describe.skipIf(!inGuest)(`IOMMU DMA on the ${kernel} kernel`, () => {
  it('reports the usable IOVA ranges: everything below 2^39 except the MSI window', () => {
    for (const api of kernel === 'iommufd' ? (['iommufd', 'type1'] as const) : (['type1'] as const)) {
      const { report } = probe(['--api', api, '--bdf', eduDevices[0]!, '--no-dma']);
      expect(report.ok, JSON.stringify(report)).toBe(true);
      expect(report.iovaRanges).toEqual(EXPECTED_IOVA_RANGES);
      expect(report.edu).toEqual({ id: '0x010000ed', liveness: true });
      expect(report.group).toBe(iommuGroup(eduDevices[0]!));
      if (api === 'type1') expect(report.pageSizes).toBe('0x40201000'); // 4 KiB, 2 MiB, 1 GiB
      else {
        expect(report.iovaAlignment).toBe('0x1000');
        expect(report.devId).toBeGreaterThan(0);
        expect(report.hwInfo?.type).toBe(1); // IOMMU_HW_INFO_TYPE_INTEL_VTD
        expect(report.hwInfo?.length).toBe(24);
      }
    }
  });

  it.runIf(kernel === 'type1')('has no iommufd uAPI on the packaged kernel', () => {
    const { report } = probe(['--api', 'iommufd', '--bdf', eduDevices[0]!, '--no-dma']);
    expect(report).toMatchObject({ ok: false, step: 'open /dev/iommu', errno: 2 }); // ENOENT
  });

  for (const { bdf, api, iova } of plan) {
    it(`${bdf} via ${api}: a DMA round trip moves the exact bytes; after unmap the DMA is blocked and faulted`, async () => {
      const log = new Kmsg();
      try {
        // DMAR fault records are rate-limited by the kernel (10 messages per 5 s, two per fault): if an
        // earlier test used the budget up, the record is dropped, not delayed. Then wait and try again.
        for (let attempt = 1; ; attempt++) {
          log.drain(); // skip everything logged so far
          const { report, status } = probe(['--api', api, '--bdf', bdf, '--iova', hex(iova), '--length', '2048']);
          expect(report, JSON.stringify(report)).toMatchObject({ ok: true, api, bdf });
          expect(status).toBe(0);
          expect(report.map).toEqual({ iova: hex(iova), size: '0x200000' });
          expect(report.roundTrip).toMatchObject({ length: 2048, srcIova: hex(iova), dstIova: hex(iova + 0x2000), equal: true, firstMismatch: -1 });
          expect(report.unmap).toEqual({ bytes: '0x200000' });
          expect(report.blocked).toMatchObject({ iova: hex(iova + 0x2000), completed: true, unchanged: true, firstChanged: -1 });

          const record = `DMAR: [DMA Write NO_PASID] Request device [${shortBdf(bdf)}] fault addr ${hex(iova + 0x2000)} `;
          const { hit, seen } = await log.waitFor(new RegExp(escapeRe(record)), 3000);
          if (!hit && attempt < 3) {
            await new Promise((r) => setTimeout(r, 5500));
            continue;
          }
          expect(hit, `no "${record}" record in /dev/kmsg`).toBeDefined();
          expect(hit!.message).toMatch(/\[fault reason 0x05\] PTE Write access is not set/);
          // The mapped round trip itself faulted nowhere: every DMA fault of this run is the blocked one.
          const faults = seen.filter((r) => /DMAR: \[DMA /.test(r.message));
          expect(faults.map((r) => r.message.startsWith(record))).toEqual(faults.map(() => true));
          break;
        }
      } finally {
        log.close();
      }
    });
  }
});
