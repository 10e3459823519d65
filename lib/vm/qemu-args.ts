/**
 * The QEMU command line of a guest: q35, its emulated IOMMU (iommu-models.ts; default Intel VT-d), N edu devices
 * (each in its own IOMMU group), 9p shares, virtio-serial ports for COMMAND's stdout/stderr and the
 * control channel, the kernel console on the first serial port.
 */
import { join } from 'node:path';
import { hotplugDeviceArgs } from './hotplug-args.js';
import type { GuestKernel } from './kernel-types.js';
import { IOMMU_MODEL_RECORDS, type IommuModelName } from './iommu-models.js';
import { arm64QemuArgs } from './arm64/qemu-args.js';

export type Accel = 'tcg' | 'kvm';

/** PCI slot of the first edu device (00:03.0, 00:04.0, ...). */
export const EDU_FIRST_SLOT = 3;
/** At most this many edu devices (slots 0x03..0x12; virtio devices sit at 0x18..0x1b). */
export const MAX_EDU_DEVICES = 16;

/** Socket names in the run's socket folder. */
export const CHANNELS = ['console', 'stdout', 'stderr', 'control'] as const;
/** With `hotplug`, also QEMU's QMP monitor and the guest's hot-plug request port (lib/vm/hotplug.ts). */
export const HOTPLUG_CHANNELS = ['qmp', 'hotplug'] as const;
export type Channel = (typeof CHANNELS)[number] | (typeof HOTPLUG_CHANNELS)[number];

/** The sockets a guest's QEMU connects to. */
export function channelsOf(m: Pick<GuestMachine, 'hotplug'>): readonly Channel[] {
  return m.hotplug ? [...CHANNELS, ...HOTPLUG_CHANNELS] : CHANNELS;
}

export interface GuestMachine {
  kernel: GuestKernel;
  initrd: string;
  accel: Accel;
  memoryMiB: number;
  cpus: number;
  devices: number;
  /** Host folder shared writable as the guest's cwd. */
  cwd: string;
  /** Host folder with config.sh/cmd.sh (9p tag dmarun). */
  runShare: string;
  /** Folder holding the Unix sockets QEMU connects to. */
  socketDir: string;
  /** Extra kernel command-line words. */
  append?: string;
  /** Edu devices in hot-pluggable slots, a QMP monitor and the hot-plug request port (hotplug-args.ts). */
  hotplug?: boolean;
  /** Devices beyond the root-complex edu devices (default 'flat': none). */
  topology?: Topology;
  /** The emulated IOMMU (default 'vtd'; lib/vm/iommu-models.ts). */
  iommu?: IommuModelName;
  /** Host folder shared read-only as the guest's root ("hostroot"; default '/': the host's own; the arm64 guest's root). */
  hostRoot?: string;
}

/**
 * Rig layouts beyond the `devices` edu functions on the root complex (each alone in its IOMMU group):
 *  - 'flat': nothing more;
 *  - 'bridge': a conventional PCI-PCI bridge (QEMU `pci-bridge`, SHPC off so no host driver claims it)
 *    at 00:1c.0 with two edu devices and a virtio-rng function behind it. The kernel cannot tell the
 *    requests of functions behind a conventional bridge apart (they carry the bridge's requester
 *    ID), so the bridge and the three functions form ONE IOMMU group. The guest binds both edu
 *    devices to vfio-pci and leaves the virtio function on its host driver (virtio-pci): the group
 *    is not viable until that member is unbound (`echo BDF > /sys/bus/pci/devices/BDF/driver/unbind`).
 */
export const TOPOLOGIES = ['flat', 'bridge'] as const;
export type Topology = (typeof TOPOLOGIES)[number];

/** Root-bus slot of the bridge of the 'bridge' topology (free of edu slots, virtio 0x18..0x1b and q35's 0x1f). */
export const BRIDGE_SLOT = 0x1c;

/** Edu devices a topology adds beyond the root-complex ones (the guest's init binds them all). */
export function topologyEduCount(topology: Topology): number {
  return topology === 'bridge' ? 2 : 0;
}

/** QEMU arguments of a topology's extra devices (after the IOMMU and the root-complex edu devices). */
export function topologyArgs(topology: Topology): string[] {
  if (topology === 'flat') return [];
  return [
    '-device', `pci-bridge,id=dma-br0,chassis_nr=1,shpc=off,addr=0x${BRIDGE_SLOT.toString(16)}`,
    '-device', 'edu,bus=dma-br0,addr=0x1',
    '-device', 'edu,bus=dma-br0,addr=0x2',
    '-device', 'virtio-rng-pci,bus=dma-br0,addr=0x3',
  ];
}

/** The BDF of edu device i (0-based). */
export function eduBdf(i: number): string {
  return `0000:00:${(EDU_FIRST_SLOT + i).toString(16).padStart(2, '0')}.0`;
}

export function socketPath(socketDir: string, channel: Channel): string {
  return join(socketDir, `${channel}.sock`);
}

/** Escape a value for QEMU's comma-separated option syntax. */
function q(value: string): string {
  return value.replace(/,/g, ',,');
}

export function kernelCommandLine(m: GuestMachine): string {
  // no_timer_check: the boot-time check that the IO-APIC timer ticks is a timing test; on a loaded
  // host under TCG it fails and panics ("timer doesn't work through Interrupt-remapped IO-APIC").
  const iommu = IOMMU_MODEL_RECORDS[m.iommu ?? 'vtd'];
  return ['console=ttyS0', ...iommu.kernelArgs, 'panic=-1', 'quiet', 'no_timer_check', 'dma_iommu_vm=1', m.append ?? ''].join(' ').trim();
}

export function qemuArgs(m: GuestMachine): string[] {
  if (m.iommu === 'smmuv3') return arm64QemuArgs(m);
  const iommu = IOMMU_MODEL_RECORDS[m.iommu ?? 'vtd'];
  const a: string[] = ['-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot'];
  if (m.accel === 'kvm') a.push('-accel', 'kvm', '-cpu', 'host', '-machine', 'q35,kernel-irqchip=split');
  // thread=single: one host thread runs every vCPU in turn. With multi-threaded TCG, guests on a
  // loaded host sometimes crashed while the kernel patched its own code during SMP bring-up
  // ("Fatal exception in interrupt" at a just-patched instruction); the suite's work is
  // single-threaded, so serialising the vCPUs costs it little.
  else a.push('-accel', 'tcg,thread=single', '-cpu', 'max', '-machine', iommu.machineProps ? `q35,${iommu.machineProps}` : 'q35');
  a.push('-m', String(m.memoryMiB), '-smp', String(m.cpus));
  // The IOMMU must come before the devices it translates.
  a.push(...iommu.qemuDevice);
  if (m.hotplug) a.push(...hotplugDeviceArgs(m.devices));
  else for (let i = 0; i < m.devices; i++) a.push('-device', `edu,addr=0x${(EDU_FIRST_SLOT + i).toString(16)}`);
  a.push(...topologyArgs(m.topology ?? 'flat'));
  a.push('-kernel', m.kernel.image, '-initrd', m.initrd, '-append', kernelCommandLine(m));
  a.push(...channelAndShareArgs(m));
  return a;
}

/** The guest's I/O, the same on every machine: console, virtio-serial ports and the three 9p shares. */
export function channelAndShareArgs(m: GuestMachine): string[] {
  const a: string[] = [];
  for (const c of channelsOf(m)) a.push('-chardev', `socket,id=ch-${c},path=${q(socketPath(m.socketDir, c))}`);
  if (m.hotplug) a.push('-mon', 'chardev=ch-qmp,mode=control');
  a.push('-serial', 'chardev:ch-console');
  a.push('-device', 'virtio-serial-pci,addr=0x18');
  for (const c of m.hotplug ? (['stdout', 'stderr', 'control', 'hotplug'] as const) : (['stdout', 'stderr', 'control'] as const)) a.push('-device', `virtserialport,chardev=ch-${c},name=dma.${c}`);
  const share = (id: string, path: string, tag: string, addr: string, readonly: boolean) => {
    a.push('-fsdev', `local,id=${id},path=${q(path)},security_model=none,multidevs=remap${readonly ? ',readonly=on' : ''}`);
    a.push('-device', `virtio-9p-pci,fsdev=${id},mount_tag=${tag},addr=${addr}`);
  };
  share('fs-root', m.hostRoot ?? '/', 'hostroot', '0x19', true);
  share('fs-cwd', m.cwd, 'dmacwd', '0x1a', false);
  share('fs-run', m.runShare, 'dmarun', '0x1b', false);
  return a;
}
