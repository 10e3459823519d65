import { describe, expect, it } from 'vitest';
import { faultMatchesBdf, kmsgMessage, parseFaultLine } from '../../../lib/backend/native/kmsg.js';

describe('kernel-log fault parser', () => {
  it('parses the VT-d line this kernel prints (with the /dev/kmsg record prefix)', () => {
    const rec = '3,1234,56789012,-;DMAR: [DMA Write NO_PASID] Request device [00:03.0] fault addr 0x102000 [fault reason 0x05] PTE Write access is not set\n SUBSYSTEM=pci\n';
    expect(kmsgMessage(rec)).toBe('DMAR: [DMA Write NO_PASID] Request device [00:03.0] fault addr 0x102000 [fault reason 0x05] PTE Write access is not set');
    const f = parseFaultLine(rec);
    expect(f).toMatchObject({ device: '00:03.0', iova: 0x102000n, write: true, reasonCode: 5, reason: 'PTE Write access is not set', vendor: 'intel', kindHint: 'permission' });
    expect(f?.pasid).toBeUndefined();
    expect(faultMatchesBdf(f!, '0000:00:03.0')).toBe(true);
    expect(faultMatchesBdf(f!, '0000:00:04.0')).toBe(false);
    expect(faultMatchesBdf(f!, '0001:00:03.0')).toBe(false);
  });

  it('parses reads, PASID-tagged requests and the older format', () => {
    expect(parseFaultLine('DMAR: [DMA Read NO_PASID] Request device [00:04.0] fault addr 0xfff000 [fault reason 0x06] PTE Read access is not set')).toMatchObject({
      device: '00:04.0',
      iova: 0xfff000n,
      write: false,
      reasonCode: 6,
    });
    expect(parseFaultLine('DMAR: [DMA Write PASID 0x5] Request device [00:03.0] fault addr 0x2000 [fault reason 0x05] PTE Write access is not set')).toMatchObject({ pasid: 5 });
    expect(parseFaultLine('DMAR: [DMA Write] Request device [00:03.0] PASID ffffffff fault addr 102000 [fault reason 05] PTE Write access is not set')).toMatchObject({
      device: '00:03.0',
      iova: 0x102000n,
      write: true,
      reasonCode: 5,
    });
    expect(parseFaultLine('DMAR: [DMA Read] Request device [00:03.0] fault addr 0x0 [fault reason 0x02] Present bit in context entry is clear')).toMatchObject({ kindHint: 'translation', reasonCode: 2 });
  });

  it('recognises AMD-Vi and SMMUv3 records', () => {
    expect(parseFaultLine('vfio-pci 0000:00:03.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0002 address=0x102000 flags=0x0020]')).toMatchObject({
      device: '0000:00:03.0',
      iova: 0x102000n,
      write: true,
      vendor: 'amd',
      kindHint: 'translation',
    });
    expect(parseFaultLine('AMD-Vi: Event logged [IO_PAGE_FAULT device=00:03.0 domain=0x0002 address=0x7000 flags=0x0050]')).toMatchObject({ device: '00:03.0', iova: 0x7000n, write: false, kindHint: 'permission' });
    expect(parseFaultLine('arm-smmu-v3 arm-smmu-v3.0.auto: event: F_TRANSLATION client: 0000:00:03.0 sid: 0x18 ssid: 0x0 iova: 0x102000 ipa: 0x0')).toMatchObject({
      device: '0000:00:03.0',
      iova: 0x102000n,
      vendor: 'smmu',
      kindHint: 'translation',
    });
  });

  it('ignores everything else', () => {
    for (const l of ['DMAR: DRHD: handling fault status reg 2', 'vfio-pci 0000:00:03.0: enabling device (0000 -> 0002)', 'DMAR: [INTR-REMAP] Request device [00:03.0] fault index 0x10 [fault reason 0x25] Blocked a compatibility format interrupt request', '', 'garbage;'])
      expect(parseFaultLine(l)).toBeNull();
  });
});
