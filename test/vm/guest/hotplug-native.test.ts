/**
 * A real hot-unplug during a running script, on the native backends inside a
 * `dma-iommu vm run --hotplug` guest (issue 11 item 3): QEMU's device_del of an edu device the
 * script holds attached, mapped and doing DMA, asked for through lib/vm/guest-control.ts. The
 * kernel's vfio-pci signals the VFIO request notifier; the backend turns it into the
 * interface-state-change callback (AvailableDomainTypes 0) and STATUS_DEVICE_REMOVED answers; the
 * script releases everything; the unplug then completes (QEMU's DEVICE_DELETED); device_add puts a
 * fresh device in the slot, which works from scratch as a new PDO. The scenario is
 * test/support/hot-unplug.ts, shared with the simulator (test/sweep/hot-unplug.test.ts).
 *
 * The same scenario also runs with the kernel's own removal, `echo 1 > /sys/bus/pci/devices/BDF/remove`
 * (it blocks until vfio-pci's users let go, so it is written from the thread pool) and a
 * `/sys/bus/pci/rescan` to bring the device back: no slot needed.
 *
 * `dma-iommu vm test` runs this file in a guest of its own with --hotplug, on each kernel; in a
 * guest without hot-plug slots the slot cases, and outside a guest all, are reported as skipped,
 * never as passed.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { openPlatform } from '../../../lib/index.js';
import { adoptDevice, hotplugAvailable, plug, unplug } from '../../../lib/vm/guest-control.js';
import { expectScenarioBehaved, hotUnplugScenario, type HotUnplugDriver } from '../../support/hot-unplug.js';
import { eduDevices, inGuest } from './guest-env.js';

const backends: Array<'iommufd' | 'vfio-type1'> = [];
if (inGuest && existsSync('/dev/iommu')) backends.push('iommufd');
if (inGuest && existsSync('/dev/vfio/vfio')) backends.push('vfio-type1');

const withSlots = inGuest && hotplugAvailable() && eduDevices.length >= 2;

describe.runIf(withSlots && backends.length > 0)('hot-unplug during a running script (native, QEMU device_del/device_add)', () => {
  const bdf = eduDevices[1]!;

  it('an unplug of a device nobody holds completes, and a plug brings a vfio-pci device back', async () => {
    const out = await unplug(bdf);
    expect(existsSync(`/sys/bus/pci/devices/${bdf}`)).toBe(false);
    const back = await plug(bdf);
    expect(existsSync(`/sys/bus/pci/devices/${bdf}/driver`)).toBe(true);
    expect(back.iommuGroup).toBeGreaterThan(0);
    console.log(`[hotplug] idle unplug: host ${out.hostMs} ms, guest ${out.ms} ms; plug: host ${back.hostMs} ms, to vfio-pci ${back.ms} ms`);
  }, 120_000);

  it('guest-control refuses what is not a slot, with the reason', async () => {
    await expect(unplug('0000:00:1f.0')).rejects.toThrow(/0000:00:1f\.0 is not a hot-plug slot of this guest/);
    await expect(unplug('not-a-bdf')).rejects.toThrow(/bdf must be a PCI address/);
  });

  for (const backend of backends) {
    it(`${backend}: callback hears 0, calls answer STATUS_DEVICE_REMOVED, the release lets the unplug complete, the re-plugged device works as a new PDO`, async () => {
      const driver: HotUnplugDriver = {
        name: backend,
        bdf,
        callbackTimeoutMs: 30_000,
        open: () => openPlatform({ backend, onHandlerError: () => undefined }),
        unplug: () => unplug(bdf, { timeoutMs: 60_000 }),
        plug: () => plug(bdf),
      };
      const r = await hotUnplugScenario(driver);
      console.log(`[hotplug] ${backend}: unplug request → state-change callback ${r.callbackLatencyMs?.toFixed(1)} ms; request → unplug complete ${r.unplugMs?.toFixed(1)} ms; callback heard ${r.notified.join(', ')}`);
      expectScenarioBehaved(r);
      expect(existsSync(`/sys/bus/pci/devices/${bdf}/driver`)).toBe(true);
    }, 300_000);
  }
});

describe.runIf(inGuest && backends.length > 0 && eduDevices.length >= 2)('removal through sysfs during a running script (native)', () => {
  const bdf = eduDevices[1]!;
  for (const backend of backends) {
    it(`${backend}: sysfs remove → callback hears 0, STATUS_DEVICE_REMOVED, the release lets the remove return, rescan brings a new PDO that works`, async () => {
      const driver: HotUnplugDriver = {
        name: `${backend} sysfs`,
        bdf,
        callbackTimeoutMs: 30_000,
        open: () => openPlatform({ backend, onHandlerError: () => undefined }),
        // returns only once the kernel removed the device: vfio-pci waits for its users
        unplug: () => writeFile(`/sys/bus/pci/devices/${bdf}/remove`, '1'),
        plug: async () => {
          await writeFile('/sys/bus/pci/rescan', '1');
          await adoptDevice(bdf);
        },
      };
      const r = await hotUnplugScenario(driver);
      console.log(`[hotplug] ${backend} sysfs remove: request → state-change callback ${r.callbackLatencyMs?.toFixed(1)} ms; request → removed ${r.unplugMs?.toFixed(1)} ms; callback heard ${r.notified.join(', ')}`);
      expect(r.problems).toEqual([]);
      expect(r.notified).toContain(0);
      expect(r.callbackLatencyMs).not.toBeNull();
      expect(r.unplugMs).not.toBeNull();
      expect(existsSync(`/sys/bus/pci/devices/${bdf}/driver`)).toBe(true);
    }, 300_000);
  }
});
