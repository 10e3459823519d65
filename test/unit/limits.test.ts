/**
 * The limits users hit first, on the simulator (options memlockLimit, dmaEntryLimit: the same
 * statuses, errnos and messages as the native backends in the guest, test/vm/guest/limits-native),
 * the native backends' /proc readers and message rewriting, and `info`'s problem list.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BackendError, IommuError } from '../../lib/errors.js';
import { openPlatform } from '../../lib/index.js';
import { explainLimit, memlockFacts } from '../../lib/backend/native/limits.js';
import { groupsOf } from '../../lib/backend/groups.js';
import { findProblems, limitFacts } from '../../lib/cli/info.js';
import { DomainTypeTranslate, IOMMU_ACCESS_READ, IOMMU_ACCESS_WRITE } from '../../lib/wdk/constants.js';
import { catchIommuError } from '../support/expect-error.js';

const RW = IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE;

describe('simulated limits', () => {
  it('dmaEntryLimit: the map after the last entry is STATUS_INSUFFICIENT_RESOURCES (ENOSPC) naming the limit, its value and the fix; an unmap frees an entry', () => {
    const p = openPlatform({ backend: 'sim', simulator: { dmaEntryLimit: 8 } });
    try {
      expect(p.backend.capabilities.maxAreasPerDomain).toBe(8);
      const dev = p.CreateDevice(p.findDevice('0000:00:03.0')!);
      const dom = p.CreateDomainEx(DomainTypeTranslate);
      p.AttachDeviceEx(dom, dev);
      const buf = p.allocateDmaMemory(4096 * 9);
      const page = (i: number) => buf.asPfnArray(BigInt(i * 4096), 4096n);
      for (let i = 0; i < 8; i++) p.MapLogicalRangeEx(dom, RW, page(i), 0x100000n + BigInt(i) * 0x2000n);
      const e = catchIommuError(() => p.MapLogicalRangeEx(dom, RW, page(8), 0x100000n + 8n * 0x2000n));
      expect(e).toMatchObject({ code: 'STATUS_INSUFFICIENT_RESOURCES', errno: -28 });
      expect(e.message).toContain('VFIO type1 dma_entry_limit reached: this domain already holds 8 mappings');
      expect(e.message).toContain('/sys/module/vfio_iommu_type1/parameters/dma_entry_limit = 8');
      expect(e.message).toContain('| sudo tee /sys/module/vfio_iommu_type1/parameters/dma_entry_limit');
      p.UnmapLogicalRange(dom, 0x100000n, 1n);
      p.MapLogicalRangeEx(dom, RW, page(8), 0x100000n + 8n * 0x2000n);
      // the limit is per domain
      const other = p.CreateDomainEx(DomainTypeTranslate);
      p.MapLogicalRangeEx(other, RW, page(0), 0x100000n);
    } finally {
      p.close();
    }
  });

  it('memlockLimit: a map past it is STATUS_INSUFFICIENT_RESOURCES (ENOMEM) naming RLIMIT_MEMLOCK, its value and the fix; under it maps work', () => {
    const p = openPlatform({ backend: 'sim', simulator: { memlockLimit: 1048576 } });
    try {
      const dev = p.CreateDevice(p.findDevice('0000:00:03.0')!);
      const dom = p.CreateDomainEx(DomainTypeTranslate);
      p.AttachDeviceEx(dom, dev);
      const small = p.allocateDmaMemory(256 * 1024);
      expect(p.MapLogicalRangeEx(dom, RW, small.asMdl(), 0x100000n)).toBe(0x100000n);
      const big = p.allocateDmaMemory(4 * 1024 * 1024);
      const e = catchIommuError(() => p.MapLogicalRangeEx(dom, RW, big.asMdl(), 0x1000000n));
      expect(e).toMatchObject({ code: 'STATUS_INSUFFICIENT_RESOURCES', errno: -12 });
      expect(e.message).toContain('RLIMIT_MEMLOCK reached: a map of 0x400000 bytes at IOVA 0x1000000 would pin 4194304 bytes (4 MiB) more');
      expect(e.message).toContain('RLIMIT_MEMLOCK is 1048576 bytes (1 MiB)');
      expect(e.message).toContain('ulimit -l unlimited');
      // what is mapped in every domain counts; an unmap gives it back
      const other = p.CreateDomainEx(DomainTypeTranslate);
      const rest = p.allocateDmaMemory(1024 * 1024 - 256 * 1024);
      p.MapLogicalRangeEx(other, RW, rest.asMdl(), 0x100000n);
      expect(catchIommuError(() => p.MapLogicalRangeEx(other, RW, small.asPfnArray(0n, 4096n), 0x800000n)).errno).toBe(-12);
      p.UnmapLogicalRange(dom, 0x100000n, 64n);
      p.MapLogicalRangeEx(other, RW, small.asPfnArray(0n, 4096n), 0x800000n);
    } finally {
      p.close();
    }
  });

  it('bad limit options are STATUS_INVALID_PARAMETER naming the option', () => {
    for (const simulator of [{ dmaEntryLimit: 0 }, { dmaEntryLimit: 1.5 }, { memlockLimit: -1 }, { memlockLimit: 'x' as never }]) {
      const e = catchIommuError(() => openPlatform({ backend: 'sim', simulator }));
      expect(e.code).toBe('STATUS_INVALID_PARAMETER');
      expect(e.message).toMatch(Object.keys(simulator)[0]!);
    }
  });
});

describe('native limit facts and messages', () => {
  const fakeProc = (limits: string, status: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'dma-iommu-proc-'));
    writeFileSync(join(dir, 'limits'), `Limit                     Soft Limit           Hard Limit           Units\n${limits}\n`);
    writeFileSync(join(dir, 'status'), status);
    return dir;
  };

  it('reads RLIMIT_MEMLOCK, CAP_IPC_LOCK, VmLck and VmPin from /proc', () => {
    const dir = fakeProc('Max locked memory         1048576              unlimited            bytes', 'VmLck:\t     256 kB\nVmPin:\t      8 kB\nCapEff:\t000001ffffffbfff\n');
    expect(memlockFacts(dir)).toEqual({ limit: 1048576n, hardLimit: null, capIpcLock: false, locked: 262144n, pinned: 8192n });
    const root = fakeProc('Max locked memory         unlimited            unlimited            bytes', 'VmLck:\t0 kB\nVmPin:\t0 kB\nCapEff:\t000001ffffffffff\n');
    expect(memlockFacts(root)).toMatchObject({ limit: null, capIpcLock: true });
  });

  it('rewrites ENOMEM past RLIMIT_MEMLOCK and type1 ENOSPC, keeps errno and syscall, leaves everything else alone', () => {
    const proc = fakeProc('Max locked memory         1048576              1048576              bytes', 'VmLck:\t0 kB\nVmPin:\t512 kB\nCapEff:\t0000000000000000\n');
    const pin = explainLimit(new BackendError(-12, 'IOMMU_IOAS_MAP', 'x'), { what: 'a map', request: 1048576n, counter: 'pinned', entryLimit: null, proc }) as BackendError;
    expect(pin).toMatchObject({ errno: -12, syscall: 'IOMMU_IOAS_MAP' });
    expect(pin.message).toContain('RLIMIT_MEMLOCK reached: a map would pin 1048576 bytes (1 MiB) more, this process has 524288 bytes locked or pinned already');
    const fits = new BackendError(-12, 'IOMMU_IOAS_MAP', 'x');
    expect(explainLimit(fits, { what: 'a map', request: 4096n, counter: 'pinned', entryLimit: null, proc })).toBe(fits);
    const entries = explainLimit(new BackendError(-28, 'VFIO_IOMMU_MAP_DMA'), { what: 'a map', request: 4096n, counter: 'locked', entryLimit: 65535, proc }) as BackendError;
    expect(entries.message).toContain('dma_entry_limit reached: this domain already holds 65535 mappings');
    const other = new BackendError(-22, 'VFIO_IOMMU_MAP_DMA');
    expect(explainLimit(other, { what: 'a map', request: 4096n, counter: 'locked', entryLimit: 65535, proc })).toBe(other);
  });
});

describe('info: limits and problems', () => {
  it('lists a non-viable group, a low RLIMIT_MEMLOCK and a lowered dma_entry_limit, each with the command that fixes it', () => {
    const devices = [
      { bdf: '0000:01:01.0', iommuGroup: 7, driver: 'vfio-pci', usable: false, whyNotUsable: 'IOMMU group 7 is not viable: ...', group: { viable: false } },
      { bdf: '0000:01:03.0', iommuGroup: 7, driver: 'virtio-pci', usable: false, whyNotUsable: 'bound to virtio-pci, not vfio-pci' },
      { bdf: '0000:00:03.0', iommuGroup: 3, driver: 'vfio-pci', usable: false, whyNotUsable: '/dev/vfio/3 is not readable and writable by this user (fix: `sudo chown "$USER" /dev/vfio/3`, or run as root)' },
    ];
    // a group without a vfio-pci member (the host's own devices) is not a problem
    devices.push({ bdf: '0000:00:1f.3', iommuGroup: 9, driver: 'i801_smbus', usable: false, whyNotUsable: 'bound to i801_smbus, not vfio-pci' });
    const groups = groupsOf(devices);
    const limits = {
      memlock: { limit: 65536n, hardLimit: 65536n, capIpcLock: false, locked: 0n, pinned: 0n, applies: true },
      dmaEntryLimit: { limit: 100, param: '/sys/module/vfio_iommu_type1/parameters/dma_entry_limit', default: 65535, dmaAvail: 100 },
    };
    const steps = [
      { check: '/dev/iommu', ok: false, detail: 'present but not readable and writable by this user (fix: `sudo chown "$USER" /dev/iommu`)' },
      { check: 'kernel log', ok: true, detail: 'readable' },
    ];
    const problems = findProblems(devices, groups, limits, steps);
    expect(problems.map((p) => p.what)).toEqual(['/dev/iommu', 'IOMMU group 7', '0000:00:03.0', 'RLIMIT_MEMLOCK', 'dma_entry_limit']);
    expect(problems.shift()).toEqual({ what: '/dev/iommu', problem: 'present but not readable and writable by this user', fix: 'sudo chown "$USER" /dev/iommu' });
    expect(problems[0]!.problem).toContain('0000:01:03.0 is bound to the host driver virtio-pci');
    expect(problems[0]!.fix).toContain('echo 0000:01:03.0 > /sys/bus/pci/devices/0000:01:03.0/driver/unbind');
    expect(problems[1]!.fix).toBe('sudo chown "$USER" /dev/vfio/3');
    expect(problems[2]!.fix).toContain('ulimit -l unlimited');
    expect(problems[3]!.fix).toBe('echo 65535 | sudo tee /sys/module/vfio_iommu_type1/parameters/dma_entry_limit');
  });

  it('the simulator pins nothing and has no entry limit', () => {
    expect(limitFacts('simulated', null)).toEqual({ memlock: null, dmaEntryLimit: null });
  });
});
