/**
 * The SMMUv3 event dump of Linux ≤ 6.13 (lib/backend/native/kmsg-smmu.ts), fed with the lines the real
 * kernel printed: Debian's arm64 6.12.118 under QEMU 7.2 `virt,iommu=smmuv3`, an edu device at
 * 0000:00:03.0 (StreamID 0x18) writing to the unmapped IOVA 0x200000 (`dma-iommu vm run --iommu smmuv3`).
 */
import { describe, expect, it } from 'vitest';
import { kmsgMessage, parseFaultLine } from '../../lib/backend/native/kmsg.js';
import { decodeSmmuEvent, SmmuEventAssembler, SMMU_FAULT_EVENTS, streamIdToDevice } from '../../lib/backend/native/kmsg-smmu.js';

const PREFIX = 'arm-smmu-v3 9050000.smmuv3:';
/** One dump as /dev/kmsg hands it out: level 6 (info), the tab escaped as \x09, the device dictionary. */
function records(words: string[], seq = 1000, id = '0x10'): string[] {
  const dict = '\n SUBSYSTEM=platform\n DEVICE=+platform:9050000.smmuv3\n';
  return [`6,${seq},54712215,-;${PREFIX} event ${id} received:${dict}`, ...words.map((w, i) => `6,${seq + 1 + i},5471230${i},-;${PREFIX} \\x09${w}${dict}`)];
}
/** The real dump of the blocked write (dmesg shows the same words after a tab). */
const REAL_WRITE = ['0x0000001800000010', '0x0000000000000000', '0x0000000000200000', '0x0000000000000000'];

function feedAll(a: SmmuEventAssembler, recs: string[]) {
  return recs.map((r) => a.feed(kmsgMessage(r)));
}

describe('SMMUv3 event dump (Linux 6.12)', () => {
  it('assembles the real five-record dump into one fault: device from the StreamID, IOVA, write from RnW=0, F_TRANSLATION', () => {
    const a = new SmmuEventAssembler();
    const out = feedAll(a, records(REAL_WRITE));
    expect(out.slice(0, 4)).toEqual([null, null, null, null]);
    expect(out[4]).toEqual({
      device: '00:03.0',
      iova: 0x200000n,
      write: true,
      reasonCode: 0x10,
      reason: 'F_TRANSLATION',
      vendor: 'smmu',
      kindHint: 'translation',
      raw: `${PREFIX} event 0x10 received: ${REAL_WRITE.join(' ')}`,
    });
    // none of the five records is a one-line fault for the generic parser
    for (const r of records(REAL_WRITE)) expect(parseFaultLine(r)).toBeNull();
  });

  it('decodes the real permission dump (an edu write to a read-only page at 0x100000) as F_PERMISSION, write', () => {
    // verbatim from /dev/kmsg in the guest (after "arm_smmu_evtq_thread: 246 callbacks suppressed")
    const real = [
      '6,711,1033706516,-;arm-smmu-v3 9050000.smmuv3: event 0x13 received:\n SUBSYSTEM=platform\n DEVICE=+platform:9050000.smmuv3\n',
      '6,712,1033706605,-;arm-smmu-v3 9050000.smmuv3: \\x090x0000001800000013\n SUBSYSTEM=platform\n DEVICE=+platform:9050000.smmuv3\n',
      '6,713,1033706622,-;arm-smmu-v3 9050000.smmuv3: \\x090x0000000000000000\n SUBSYSTEM=platform\n DEVICE=+platform:9050000.smmuv3\n',
      '6,714,1033706633,-;arm-smmu-v3 9050000.smmuv3: \\x090x0000000000100000\n SUBSYSTEM=platform\n DEVICE=+platform:9050000.smmuv3\n',
      '6,715,1033706643,-;arm-smmu-v3 9050000.smmuv3: \\x090x0000000000000000\n SUBSYSTEM=platform\n DEVICE=+platform:9050000.smmuv3\n',
    ];
    const a = new SmmuEventAssembler();
    expect(a.feed(kmsgMessage('4,710,1033706397,-;arm_smmu_evtq_thread: 246 callbacks suppressed\n'))).toBeNull();
    const out = feedAll(a, real);
    expect(out.slice(0, 4)).toEqual([null, null, null, null]);
    expect(out[4]).toMatchObject({ device: '00:03.0', iova: 0x100000n, write: true, reasonCode: 0x13, reason: 'F_PERMISSION', kindHint: 'permission' });
  });

  it('reads the dmesg form (a real tab) the same way', () => {
    const a = new SmmuEventAssembler();
    a.feed(`${PREFIX} event 0x10 received:`);
    for (const w of REAL_WRITE.slice(0, 3)) expect(a.feed(`${PREFIX} \t${w}`)).toBeNull();
    expect(a.feed(`${PREFIX} \t${REAL_WRITE[3]}`)).toMatchObject({ device: '00:03.0', iova: 0x200000n, write: true });
  });

  it('RnW (word 1 bit 35) = 1 is a read; F_PERMISSION is a permission fault; SID bus/devfn decode', () => {
    const f = decodeSmmuEvent([0x0000_0120_0000_0013n, 1n << 35n, 0x100000n, 0n], 'r');
    expect(f).toMatchObject({ device: '01:04.0', iova: 0x100000n, write: false, reason: 'F_PERMISSION', kindHint: 'permission', reasonCode: 0x13 });
    expect(streamIdToDevice(0x18)).toBe('00:03.0');
    expect(streamIdToDevice(0x20)).toBe('00:04.0');
    expect(streamIdToDevice(0xff0f)).toBe('ff:01.7');
    expect(Object.keys(SMMU_FAULT_EVENTS).map(Number)).toEqual([0x10, 0x11, 0x12, 0x13]);
  });

  it('ignores non-fault events, stray words, the rate-limit line; a new header restarts a dump', () => {
    const a = new SmmuEventAssembler();
    // a C_BAD_STE (0x04) dump completes but is not a DMA fault
    expect(feedAll(a, records(['0x0000001800000004', '0x0', '0x0', '0x0'].map((w) => w.padEnd(18, '0')), 1, '0x04'))).toEqual([null, null, null, null, null]);
    expect(a.feed(`${PREFIX} \t${REAL_WRITE[0]}`)).toBeNull(); // no header open
    expect(a.feed('arm_smmu_evtq_thread: 502 callbacks suppressed')).toBeNull();
    a.feed(`${PREFIX} event 0x10 received:`);
    a.feed(`${PREFIX} \t${REAL_WRITE[0]}`);
    a.feed(`${PREFIX} event 0x10 received:`); // the previous dump was cut short: start over
    const got = REAL_WRITE.map((w) => a.feed(`${PREFIX} \t${w}`));
    expect(got.slice(0, 3)).toEqual([null, null, null]);
    expect(got[3]).toMatchObject({ iova: 0x200000n });
  });

  it('keeps the dumps of two SMMUs apart when their records interleave', () => {
    const a = new SmmuEventAssembler();
    const other = 'arm-smmu-v3 9060000.smmuv3:';
    a.feed(`${PREFIX} event 0x10 received:`);
    a.feed(`${other} event 0x10 received:`);
    const out: unknown[] = [];
    for (let i = 0; i < 4; i++) {
      out.push(a.feed(`${PREFIX} \t${REAL_WRITE[i]}`));
      out.push(a.feed(`${other} \t${['0x0000002000000010', '0x0000000800000000', '0x0000000000300000', '0x0000000000000000'][i]}`));
    }
    expect(out.slice(0, 6).every((x) => x === null)).toBe(true);
    expect(out[6]).toMatchObject({ device: '00:03.0', iova: 0x200000n, write: true });
    expect(out[7]).toMatchObject({ device: '00:04.0', iova: 0x300000n, write: false });
  });
});
