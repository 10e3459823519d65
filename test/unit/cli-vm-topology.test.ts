/**
 * `dma-iommu vm run --topology`: option parsing and the QEMU devices of each layout (host only; the
 * guest side, one IOMMU group behind the bridge, is checked in test/vm/guest/bridge/).
 */
import { describe, expect, it } from 'vitest';
import { expectChoiceOption, vmMachine } from '../support/vm-host.js';
import { qemuArgs, TOPOLOGIES, topologyArgs, topologyEduCount } from '../../lib/vm/qemu-args.js';

const machine = vmMachine();

describe('vm --topology', () => {
  it('parses flat and bridge; anything else is a usage error naming the option and the choices', () => {
    expect(TOPOLOGIES).toEqual(['flat', 'bridge']);
    expectChoiceOption('--topology', (a) => a.topology, TOPOLOGIES, 'tree');
  });

  it('flat adds nothing; bridge puts two edu devices and a virtio-rng behind a pci-bridge without SHPC, after the root-complex devices', () => {
    expect(topologyArgs('flat')).toEqual([]);
    expect(qemuArgs(machine).join(' ')).toBe(qemuArgs({ ...machine, topology: 'flat' }).join(' '));
    const args = qemuArgs({ ...machine, topology: 'bridge' }).join(' ');
    expect(args).toContain(
      '-device edu,addr=0x4 -device pci-bridge,id=dma-br0,chassis_nr=1,shpc=off,addr=0x1c -device edu,bus=dma-br0,addr=0x1 -device edu,bus=dma-br0,addr=0x2 -device virtio-rng-pci,bus=dma-br0,addr=0x3 ',
    );
    expect(args.indexOf('intel-iommu')).toBeLessThan(args.indexOf('pci-bridge'));
    expect(topologyEduCount('bridge')).toBe(2);
    expect(topologyEduCount('flat')).toBe(0);
  });
});
