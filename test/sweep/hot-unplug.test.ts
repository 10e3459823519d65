/**
 * A hot-unplug during a running script on the simulator (issue 11 item 3): the scenario of
 * test/support/hot-unplug.ts, the same one the guest runs on the native backends with a real QEMU
 * hot-unplug (test/vm/guest/hotplug-native.test.ts). The simulator's unplug is its removal
 * injection, completed once the script released the device, the way vfio-pci holds a real unplug
 * until user space lets go.
 */
import { describe, expect, it } from 'vitest';
import { openPlatform, SimulatedBackend, type IommuPlatform } from '../../lib/index.js';
import { expectScenarioBehaved, hotUnplugScenario, type HotUnplugDriver } from '../support/hot-unplug.js';

const BDF = '0000:00:03.0';

function sim(p: IommuPlatform): SimulatedBackend {
  if (!(p.backend instanceof SimulatedBackend)) throw new Error('not the simulator');
  return p.backend;
}

/** The simulator's unplug: remove at once (the callback runs), complete when nothing holds the device. */
function simDriver(): HotUnplugDriver & { releasedBeforeCompletion: boolean | null } {
  const d = {
    name: 'simulator',
    bdf: BDF,
    callbackTimeoutMs: 5000,
    releasedBeforeCompletion: null as boolean | null,
    open: () => openPlatform({ backend: 'sim', onHandlerError: () => undefined }),
    async unplug(p: IommuPlatform) {
      // the request reaches the script on a later turn of the event loop, as the eventfd does natively
      await new Promise((r) => setImmediate(r));
      sim(p).removeDevice(BDF);
      // complete once the platform holds nothing of the device (the script's release)
      for (let i = 0; i < 1000; i++) {
        const s = p.inspect() as { devices: Array<{ bdf: string }> };
        if (!s.devices.some((x) => x.bdf === BDF)) {
          d.releasedBeforeCompletion = true;
          return;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
      d.releasedBeforeCompletion = false;
      throw new Error(`${BDF} was not released within 5 s`);
    },
    async plug(p: IommuPlatform) {
      sim(p).addDevice({ bdf: BDF, model: 'edu', iommuGroup: 3 });
    },
  };
  return d;
}

describe('hot-unplug during a running script (simulator)', () => {
  it('callback hears 0, calls answer STATUS_DEVICE_REMOVED, the release completes the unplug, the re-plugged device works as a new PDO', async () => {
    const driver = simDriver();
    const r = await hotUnplugScenario(driver);
    expectScenarioBehaved(r);
    expect(driver.releasedBeforeCompletion).toBe(true);
  });
});
