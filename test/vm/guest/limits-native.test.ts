/**
 * The limits users hit first, hit on purpose on the real kernel (inside a `dma-iommu vm` guest), each
 * through the library on the native backends, with the message naming the limit, its value and the
 * fix: RLIMIT_MEMLOCK (a child process without CAP_IPC_LOCK under `prlimit --memlock`: the mlock of
 * DMA memory, and, without CAP_SYS_ADMIN so nothing is mlocked first, the kernel's own pin at map
 * time) and type1's dma_entry_limit (lowered through its module parameter: the map after the last
 * entry). And `dma-iommu info --json` reporting these facts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openPlatform } from '../../../lib/index.js';
import { DomainTypeTranslate, IOMMU_ACCESS_READ, IOMMU_ACCESS_WRITE } from '../../../lib/wdk/constants.js';
import { IommuError } from '../../../lib/errors.js';
import { eduDevices, inGuest } from './guest-env.js';

const root = join(import.meta.dirname, '../../..');
const PARAM = '/sys/module/vfio_iommu_type1/parameters/dma_entry_limit';
const backends: Array<'iommufd' | 'vfio-type1'> = [];
if (inGuest && existsSync('/dev/iommu')) backends.push('iommufd');
if (inGuest && existsSync('/dev/vfio/vfio')) backends.push('vfio-type1');

/** A child node process (the built library, dist/) with RLIMIT_MEMLOCK = limit and the capabilities dropped. */
function child(script: string, limit: number, dropCaps: string): { status: number | null; out: Record<string, unknown>; stderr: string } {
  const code = `const L = await import(${JSON.stringify(join(root, 'dist/lib/index.js'))});\n${script}`;
  const r = spawnSync('prlimit', [`--memlock=${limit}:${limit}`, 'setpriv', `--inh-caps=${dropCaps}`, `--bounding-set=${dropCaps}`, process.execPath, '--input-type=module', '-e', code], {
    encoding: 'utf8',
    timeout: 90_000,
    cwd: root,
  });
  let out: Record<string, unknown> = {};
  try {
    out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
  } catch {
    /* reported below */
  }
  return { status: r.status, out, stderr: `${r.stdout}\n${r.stderr}` };
}

const report = `const report = (e) => console.log(JSON.stringify(e instanceof L.IommuError ? { code: e.code, errno: e.errno, syscall: e.syscall, message: e.message } : { ok: String(e) }));`;

describe.runIf(inGuest && backends.length > 0 && eduDevices.length > 0)('limits on the real kernel', () => {
  for (const backend of backends) {
    it(`${backend}: DMA memory past RLIMIT_MEMLOCK (mlocked for real PAs) is STATUS_INSUFFICIENT_RESOURCES naming the limit, its value and the fix`, () => {
      const r = child(
        `${report}\nconst p = L.openPlatform({ backend: '${backend}' });\ntry { p.allocateDmaMemory(4 * 1024 * 1024); report('allocated'); } catch (e) { report(e); } finally { p.close(); }`,
        1048576,
        '-ipc_lock',
      );
      expect(r.status, r.stderr).toBe(0);
      // the addon names an mmap(MAP_LOCKED)-style allocation that could not be locked 'mmap' (ENOMEM)
      expect(r.out, r.stderr).toMatchObject({ code: 'STATUS_INSUFFICIENT_RESOURCES', errno: -12, syscall: 'mmap' });
      const m = String(r.out.message);
      expect(m).toContain('RLIMIT_MEMLOCK reached');
      expect(m).toContain('RLIMIT_MEMLOCK is 1048576 bytes (1 MiB)');
      expect(m).toContain('would pin 4194304 bytes (4 MiB) more');
      expect(m).toContain('ulimit -l unlimited');
      expect(m).toContain('cap_ipc_lock+ep');
    });

    it(`${backend}: a map the kernel cannot pin under RLIMIT_MEMLOCK is STATUS_INSUFFICIENT_RESOURCES naming the limit; under the limit it works`, () => {
      const syscall = backend === 'iommufd' ? 'IOMMU_IOAS_MAP' : 'VFIO_IOMMU_MAP_DMA';
      const r = child(
        `${report}
const p = L.openPlatform({ backend: '${backend}' });
const out = {};
try {
  const dev = p.CreateDevice(p.findDevice('${eduDevices[0]}'));
  const dom = p.CreateDomainEx(0);
  p.AttachDeviceEx(dom, dev);
  const small = p.allocateDmaMemory(256 * 1024);
  const iova = p.MapLogicalRangeEx(dom, 3, small.asMdl(), 0x100000n);
  out.smallMapped = iova === 0x100000n;
  const big = p.allocateDmaMemory(4 * 1024 * 1024);
  try { p.MapLogicalRangeEx(dom, 3, big.asMdl(), 0x1000000n); out.bigMapped = true; } catch (e) { out.err = { code: e.code, errno: e.errno, syscall: e.syscall, message: e.message }; }
  out.physicalIsReal = p.backend.memoryInfo.physicalIsReal;
} catch (e) { out.setup = String(e); } finally { p.close(); }
console.log(JSON.stringify(out));`,
        1048576,
        '-ipc_lock,-sys_admin',
      );
      expect(r.status, r.stderr).toBe(0);
      expect(r.out, r.stderr).toMatchObject({ smallMapped: true, physicalIsReal: false });
      expect(r.out.err, r.stderr).toMatchObject({ code: 'STATUS_INSUFFICIENT_RESOURCES', errno: -12, syscall });
      const m = String((r.out.err as { message: string }).message);
      expect(m).toContain('RLIMIT_MEMLOCK reached: a map of 0x400000 bytes at IOVA 0x1000000 would pin 4194304 bytes (4 MiB) more');
      expect(m).toContain('RLIMIT_MEMLOCK is 1048576 bytes (1 MiB)');
      expect(m).toContain('ulimit -l unlimited');
    });
  }

  it.runIf(backends.includes('vfio-type1'))('vfio-type1: the map after the last dma_entry_limit entry is STATUS_INSUFFICIENT_RESOURCES (ENOSPC) naming the limit, its value and the fix', () => {
    const saved = readFileSync(PARAM, 'utf8').trim();
    writeFileSync(PARAM, '8');
    try {
      const p = openPlatform({ backend: 'vfio-type1' });
      try {
        expect(p.backend.capabilities.maxAreasPerDomain).toBe(8);
        const dev = p.CreateDevice(p.findDevice(eduDevices[0]!)!);
        const dom = p.CreateDomainEx(DomainTypeTranslate);
        p.AttachDeviceEx(dom, dev);
        const buf = p.allocateDmaMemory(4096 * 9);
        const rw = IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE;
        const page = (i: number) => buf.asPfnArray(BigInt(i * 4096), 4096n);
        for (let i = 0; i < 8; i++) p.MapLogicalRangeEx(dom, rw, page(i), 0x100000n + BigInt(i) * 0x2000n);
        let err: unknown;
        try {
          p.MapLogicalRangeEx(dom, rw, page(8), 0x100000n + 8n * 0x2000n);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(IommuError);
        const e = err as IommuError;
        expect(e).toMatchObject({ code: 'STATUS_INSUFFICIENT_RESOURCES', errno: -28, syscall: 'VFIO_IOMMU_MAP_DMA' });
        expect(e.message).toContain('VFIO type1 dma_entry_limit reached: this domain already holds 8 mappings');
        expect(e.message).toContain(`${PARAM} = 8`);
        expect(e.message).toContain(`| sudo tee ${PARAM}`);
        expect(e.message).toContain('iommufd');
        // one unmapped: the next map works again
        p.UnmapLogicalRange(dom, 0x100000n, 1n);
        p.MapLogicalRangeEx(dom, rw, page(8), 0x100000n + 8n * 0x2000n);
      } finally {
        p.close();
      }
    } finally {
      writeFileSync(PARAM, saved);
    }
  });

  for (const backend of backends) {
    it(`${backend}: info --json reports groups, RLIMIT_MEMLOCK, dma_entry_limit and DMA_AVAIL, IOVA ranges and width; a low memlock is a problem with its fix`, () => {
      const r = spawnSync(process.execPath, [join(root, 'bin/dma-iommu.js'), 'info', '--json', '--backend', backend], { encoding: 'utf8', timeout: 90_000, cwd: root });
      expect(r.status, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout);
      const d = j.devices.find((x: { bdf: string }) => x.bdf === eduDevices[0]);
      expect(d.group).toEqual({ group: d.iommuGroup, viable: true, members: [{ bdf: eduDevices[0], driver: 'vfio-pci' }] });
      expect(d.iovaWidth).toBe(39);
      expect(d.iovaRanges).toEqual([{ start: '0x0', last: '0xfedfffff' }, { start: '0xfef00000', last: '0x7fffffffff' }]);
      expect(j.limits.memlock).toMatchObject({ capIpcLock: true, applies: false });
      if (backend === 'vfio-type1') {
        const limit = Number(readFileSync(PARAM, 'utf8'));
        expect(j.limits.dmaEntryLimit).toEqual({ limit, param: PARAM, default: 65535, dmaAvail: limit });
      } else expect(j.limits.dmaEntryLimit).toBeNull();
      expect(j.problems).toEqual([]); // the guest's virtio and SMBus functions are in groups without a vfio-pci member: not problems
      const low = spawnSync('prlimit', ['--memlock=65536:65536', 'setpriv', '--inh-caps=-ipc_lock', '--bounding-set=-ipc_lock', process.execPath, join(root, 'bin/dma-iommu.js'), 'info', '--json', '--backend', backend], { encoding: 'utf8', timeout: 90_000, cwd: root });
      expect(low.status, low.stderr).toBe(0);
      const k = JSON.parse(low.stdout);
      expect(k.limits.memlock).toMatchObject({ limit: '0x10000', capIpcLock: false, applies: true });
      expect(k.problems).toContainEqual(expect.objectContaining({ what: 'RLIMIT_MEMLOCK', fix: expect.stringContaining('ulimit -l unlimited') }));
    });
  }
});
