// A second process for the native lifetime and busy-device guest tests. argv: MODE BACKEND BDF [BYTES].
//  - hold: create the device, a domain, attach, map BYTES (default 64 KiB), run a DMA round trip,
//    print one JSON line { ready: true, pid, wrong, VmLck, VmPin } and then wait (forever: the test
//    kills it, e.g. SIGKILL).
//  - use:  one whole cycle with a DMA round trip; prints { ok: true, wrong } (wrong: first bad byte, -1 none).
// Any IommuError is printed as { ok: false, code, message }; exit code 0 either way (the test judges).
import { DomainTypeTranslate, IOMMU_ACCESS_READ, IOMMU_ACCESS_WRITE, IOVA, cycle, eduRoundTrip, openPlatform, vmStatus } from './native-cycle.mjs';

const [mode, backend, bdf, bytes = String(64 * 1024)] = process.argv.slice(2);
const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

try {
  const platform = openPlatform({ backend });
  const pdo = platform.findDevice(bdf);
  if (!pdo) throw new Error(`no device ${bdf}`);
  if (mode === 'use') {
    const mem = platform.allocateDmaMemory(64 * 1024);
    say({ ok: true, wrong: await cycle(platform, pdo, mem, 1, true) });
  } else if (mode === 'hold') {
    const mem = platform.allocateDmaMemory(Number(bytes));
    const dev = platform.CreateDevice(pdo);
    const dom = platform.CreateDomainEx(DomainTypeTranslate, 0n, null, null);
    platform.AttachDeviceEx(dom, dev);
    const iova = platform.MapLogicalRangeEx(dom, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, mem.asMdl(), IOVA, null, null);
    const wrong = await eduRoundTrip(platform, dev, mem, 2, iova);
    say({ ready: true, pid: process.pid, wrong, ...vmStatus() });
    setInterval(() => {}, 1 << 30);
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
} catch (e) {
  say({ ok: false, code: e?.code ?? e?.constructor?.name, message: String(e?.message ?? e) });
}
