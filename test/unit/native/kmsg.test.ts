import { describe, expect, it } from 'vitest';
import { endpointBdf, faultMatchesBdf, kmsgMessage, parseFaultLine } from '../../../lib/backend/native/kmsg.js';

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

describe('virtio-iommu fault lines (as Linux 6.12 printed them in `dma-iommu vm --iommu virtio`)', () => {
  it('maps the endpoint ID (the requester ID) to the BDF; no R/W flag = direction unknown, a no-mapping fault', () => {
    const f = parseFaultLine('3,812,59097078,-;virtio_iommu virtio0: page fault from EP 24 at 0x200000 []\n SUBSYSTEM=virtio\n');
    expect(f).toMatchObject({ device: '0000:00:03.0', iova: 0x200000n, write: null, reasonCode: 2, vendor: 'virtio', kindHint: 'translation' });
    expect(faultMatchesBdf(f!, '0000:00:03.0')).toBe(true);
    expect(faultMatchesBdf(f!, '0000:00:04.0')).toBe(false);
  });

  it('reads the R/W flags (a permission fault) and the other reasons', () => {
    expect(parseFaultLine('virtio_iommu virtio1: page fault from EP 32 at 0x1004 [W]')).toMatchObject({ device: '0000:00:04.0', iova: 0x1004n, write: true, kindHint: 'permission', reason: 'page fault (access not permitted)' });
    expect(parseFaultLine('virtio_iommu virtio1: page fault from EP 32 at 0x1000 [R]')).toMatchObject({ write: false, kindHint: 'permission' });
    expect(parseFaultLine('virtio_iommu virtio0: domain fault from EP 24')).toMatchObject({ device: '0000:00:03.0', iova: 0n, reasonCode: 1, kindHint: 'translation' });
    expect(parseFaultLine('virtio_iommu virtio0: unknown fault from EP 264 at 0x0 []')).toMatchObject({ device: '0000:01:01.0', reasonCode: 0, kindHint: 'other' });
  });

  it('puts the PCI segment above bit 16 and refuses what is not a fault line', () => {
    expect(endpointBdf(0x1_0018)).toBe('0001:00:03.0');
    expect(endpointBdf(0xffff)).toBe('0000:ff:1f.7');
    expect(parseFaultLine('virtio_iommu virtio0: page fault from EP 24')).toBeNull();
    expect(parseFaultLine('virtio_iommu virtio0: input address: 64 bits')).toBeNull();
    expect(parseFaultLine('virtio_iommu virtio0: page fault from EP 99999999999 at 0x0 []')).toBeNull();
  });
});
