/**
 * Shared helpers of the guest suite (runs inside a `dma-iommu vm` guest: see lib/vm/run.ts for the
 * DMA_IOMMU_VM_* variables it sets).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, constants, openSync, readSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';

export const inGuest = process.env.DMA_IOMMU_VM === '1';
export const kernel = (process.env.DMA_IOMMU_VM_KERNEL ?? '') as 'type1' | 'iommufd' | '';
export const helper = process.env.DMA_IOMMU_VM_HELPER ?? '';
/** BDFs of the edu devices, e.g. ["0000:00:03.0", "0000:00:04.0"]. */
export const eduDevices = (process.env.DMA_IOMMU_VM_EDU ?? '').split(' ').filter(Boolean);

/** The IOVA ranges both kernels report behind QEMU's VT-d (39-bit, minus the x86 MSI window). */
export const EXPECTED_IOVA_RANGES = [
  { start: '0x0', last: '0xfedfffff' },
  { start: '0xfef00000', last: '0x7fffffffff' },
];

export function iommuGroup(bdf: string): number {
  return Number(basename(readlinkSync(`/sys/bus/pci/devices/${bdf}/iommu_group`)));
}

export interface ProbeReport {
  ok: boolean;
  api: string;
  bdf: string;
  step?: string;
  errno?: number;
  error?: string;
  group?: number;
  vfioDevice?: string;
  devId?: number;
  ioasId?: number;
  hwptId?: number;
  hwInfo?: { type: number; length: number; capabilities: string };
  pageSizes?: string;
  iovaAlignment?: string;
  iovaRanges?: { start: string; last: string }[];
  device?: { regions: number; irqs: number; bar0Size: string };
  edu?: { id: string; liveness: boolean };
  map?: { iova: string; size: string };
  roundTrip?: { length: number; srcIova: string; dstIova: string; equal: boolean; firstMismatch: number };
  unmap?: { bytes: string };
  blocked?: { iova: string; length: number; completed: boolean; unchanged: boolean; firstChanged: number };
}

/** Run the C helper (stand-in for the native addon) and parse its JSON report. */
export function probe(args: string[]): { report: ProbeReport; status: number | null; stderr: string } {
  const r = spawnSync(helper, args, { encoding: 'utf8', timeout: 60_000 });
  let report: ProbeReport;
  try {
    report = JSON.parse(r.stdout) as ProbeReport;
  } catch {
    throw new Error(`dma-probe ${args.join(' ')} printed no JSON (status ${r.status}): ${r.stdout}\n${r.stderr}`);
  }
  return { report, status: r.status, stderr: r.stderr };
}

export interface KmsgRecord {
  seq: number;
  usec: number;
  message: string;
}

/**
 * A reader of the kernel log (/dev/kmsg): `drain()` returns the records logged since the last call
 * (the first call returns the whole ring buffer).
 */
export class Kmsg {
  private readonly fd = openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
  private readonly buf = Buffer.alloc(16384);

  drain(): KmsgRecord[] {
    const out: KmsgRecord[] = [];
    for (;;) {
      let n: number;
      try {
        n = readSync(this.fd, this.buf, 0, this.buf.length, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') break;
        if (code === 'EPIPE') continue; // records overwritten while we were away
        throw e;
      }
      if (n <= 0) break;
      const line = this.buf.subarray(0, n).toString('utf8');
      const semi = line.indexOf(';');
      const [, seq, usec] = line.slice(0, semi).split(',');
      out.push({ seq: Number(seq), usec: Number(usec), message: line.slice(semi + 1).split('\n')[0]! });
    }
    return out;
  }

  /** Wait (up to `ms`) for a new record matching `re`; also returns every record read meanwhile. */
  async waitFor(re: RegExp, ms = 5000): Promise<{ hit?: KmsgRecord; seen: KmsgRecord[] }> {
    const until = Date.now() + ms;
    const seen: KmsgRecord[] = [];
    for (;;) {
      const batch = this.drain();
      seen.push(...batch);
      const hit = batch.find((r) => re.test(r.message));
      if (hit || Date.now() > until) return { hit, seen };
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** "0000:00:03.0" -> "00:03.0", the form DMAR fault records use. */
export function shortBdf(bdf: string): string {
  return bdf.replace(/^[0-9a-f]{4}:/, '');
}

export function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
