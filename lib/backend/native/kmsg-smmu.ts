/**
 * Arm SMMUv3 fault records from Linux ≤ 6.13's event dump. arm_smmu_evtq_thread() prints an event it
 * did not handle as one header line and the four raw 64-bit words of the event record, each its own
 * log record (dev_info, rate-limited: "arm_smmu_evtq_thread: N callbacks suppressed"):
 *
 *   arm-smmu-v3 9050000.smmuv3: event 0x10 received:
 *   arm-smmu-v3 9050000.smmuv3: \t0x0000001800000010      (/dev/kmsg escapes the tab as \x09)
 *   arm-smmu-v3 9050000.smmuv3: \t0x0000000000000000
 *   arm-smmu-v3 9050000.smmuv3: \t0x0000000000200000
 *   arm-smmu-v3 9050000.smmuv3: \t0x0000000000000000
 *
 * (Measured in `dma-iommu vm run --iommu smmuv3` on Debian's arm64 6.12.118 under QEMU 7.2: an edu
 * write to an unmapped IOVA 0x200000 from 0000:00:03.0.) The words decode per the SMMUv3 spec's event
 * record, as Linux's EVTQ_* masks name them: word 0 bits 7:0 the event ID (0x10 F_TRANSLATION,
 * 0x11 F_ADDR_SIZE, 0x12 F_ACCESS, 0x13 F_PERMISSION), bits 63:32 the StreamID (the PCI requester
 * ID, bus<<8 | devfn, on a PCI root complex); word 1 bit 35 RnW (1: read, 0: write); word 2 the input
 * address (the IOVA). 6.14+ prints a decoded one-line form instead (parsed in kmsg.ts).
 *
 * `SmmuEventAssembler.feed` takes one record at a time and returns the fault once its fourth word
 * has arrived; the state is kept per SMMU (the line prefix), so two SMMUs' dumps may interleave.
 */
import type { ParsedFault } from './kmsg.js';

const HEADER = /^(.*?): event 0x([0-9a-f]{1,2}) received:$/i;
const WORD = /^(.*?): (?:\\x09|\t)?\s*0x([0-9a-f]{16})$/i;

/** The translation-fault events (those whose record has the address, RnW and StreamID layout used here). */
export const SMMU_FAULT_EVENTS: Readonly<Record<number, { name: string; kind: ParsedFault['kindHint'] }>> = {
  0x10: { name: 'F_TRANSLATION', kind: 'translation' },
  0x11: { name: 'F_ADDR_SIZE', kind: 'other' },
  0x12: { name: 'F_ACCESS', kind: 'other' },
  0x13: { name: 'F_PERMISSION', kind: 'permission' },
};

const RNW = 1n << 35n;

/** A StreamID (PCI requester ID) as 'bb:dd.f' (the SID carries no PCI domain). */
export function streamIdToDevice(sid: number): string {
  const bus = (sid >> 8) & 0xff;
  const dev = (sid >> 3) & 0x1f;
  const fn = sid & 7;
  return `${bus.toString(16).padStart(2, '0')}:${dev.toString(16).padStart(2, '0')}.${fn}`;
}

/** Decode the four words of a fault event (null for events that are not translation faults). */
export function decodeSmmuEvent(words: readonly bigint[], raw: string): ParsedFault | null {
  if (words.length !== 4) return null;
  const id = Number(words[0]! & 0xffn);
  const ev = SMMU_FAULT_EVENTS[id];
  if (!ev) return null;
  const sid = Number(words[0]! >> 32n);
  return {
    device: streamIdToDevice(sid),
    iova: words[2]!,
    write: (words[1]! & RNW) === 0n,
    reasonCode: id,
    reason: ev.name,
    vendor: 'smmu',
    kindHint: ev.kind,
    raw,
  };
}

export class SmmuEventAssembler {
  #open = new Map<string, { header: string; words: bigint[] }>();

  /** Feed one log message (kmsgMessage of a record); returns the fault when a dump completes. */
  feed(message: string): ParsedFault | null {
    let m = HEADER.exec(message);
    if (m) {
      this.#open.set(m[1]!, { header: message, words: [] });
      return null;
    }
    m = WORD.exec(message);
    if (!m) return null;
    const dump = this.#open.get(m[1]!);
    if (!dump) return null;
    dump.words.push(BigInt(`0x${m[2]}`));
    if (dump.words.length < 4) return null;
    this.#open.delete(m[1]!);
    const raw = `${dump.header} ${dump.words.map((w) => `0x${w.toString(16).padStart(16, '0')}`).join(' ')}`;
    return decodeSmmuEvent(dump.words, raw);
  }
}
