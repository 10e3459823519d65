/**
 * Shared IOMMU groups on the simulator: its 'bridge' topology (the VM's `--topology bridge`) through
 * the cases the native backends run in the guest (test/support/group-cases.ts).
 */
import { describe, expect, it } from 'vitest';
import { openPlatform } from '../../lib/index.js';
import { BRIDGE_TOPOLOGY_DEVICES, DEFAULT_DEVICES } from '../../lib/backend/simulated/machine.js';
import { groupViability, notViableMessage } from '../../lib/backend/groups.js';
import { groupCases } from '../support/group-cases.js';

const released = BRIDGE_TOPOLOGY_DEVICES.map((d) => (d.bdf === '0000:01:03.0' ? { ...d, driver: null } : d));

describe('shared IOMMU groups on the simulator (bridge topology)', () => {
  groupCases(() => ({
    members: ['0000:01:01.0', '0000:01:02.0'],
    blocker: '0000:01:03.0',
    blockerDriver: 'virtio-pci',
    refusalSyscall: 'VFIO_DEVICE_BIND_IOMMUFD',
    blocked: () => openPlatform({ backend: 'sim', simulator: { topology: 'bridge' } }),
    released: () => openPlatform({ backend: 'sim', simulator: { devices: [...DEFAULT_DEVICES, ...released] } }),
  }));

  it('the default machine keeps its groups viable; the flat topology adds nothing', () => {
    const p = openPlatform({ backend: 'sim', simulator: { topology: 'flat' } });
    try {
      expect(p.enumerateDevices().map((d) => d.bdf)).toEqual(DEFAULT_DEVICES.map((d) => d.bdf));
      expect(p.enumerateDevices().every((d) => d.usable)).toBe(true);
    } finally {
      p.close();
    }
  });

  it('a bad topology is STATUS_INVALID_PARAMETER naming the option', () => {
    expect(() => openPlatform({ backend: 'sim', simulator: { topology: 'tree' as never } })).toThrow(/topology/);
  });
});

describe('group viability rule', () => {
  it('unbound members and DMA-managing drivers leave a group viable; any other driver blocks it', () => {
    expect(groupViability(3, [{ bdf: '0000:00:03.0', driver: 'vfio-pci' }, { bdf: '0000:00:03.1', driver: null }]).viable).toBe(true);
    for (const safe of ['pci-stub', 'pcieport', 'sim']) expect(groupViability(1, [{ bdf: '0000:00:01.0', driver: safe }]).viable).toBe(true);
    const g = groupViability(9, [{ bdf: '0000:02:00.1', driver: 'snd_hda_intel' }, { bdf: '0000:02:00.0', driver: 'vfio-pci' }]);
    expect(g).toMatchObject({ viable: false, blockers: [{ bdf: '0000:02:00.1', driver: 'snd_hda_intel' }] });
    expect(g.members.map((m) => m.bdf)).toEqual(['0000:02:00.0', '0000:02:00.1']);
    expect(g.problem).toBe(notViableMessage(9, g.blockers));
    expect(g.problem).toContain('echo 0000:02:00.1 > /sys/bus/pci/devices/0000:02:00.1/driver/unbind');
  });
});
