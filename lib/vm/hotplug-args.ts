/**
 * The `--hotplug` layout of a guest: every edu device in a hot-pluggable slot of its own (a QEMU
 * `pcie-root-port` on the root complex, at the address the edu device has without `--hotplug`), a
 * QMP monitor the host uses for `device_del` / `device_add`, and a virtio-serial port (`dma.hotplug`)
 * on which the guest asks for them (lib/vm/hotplug.ts on the host, lib/vm/guest-control.ts in the
 * guest).
 *
 * QEMU 7.2's q35 hot-plugs PCIe root ports through ACPI by default (ICH9-LPC
 * acpi-pci-hotplug-with-bridge-support=on since 6.1): the guest kernel needs CONFIG_HOTPLUG_PCI_ACPI
 * (acpiphp). The edu device sits at 00.0 behind its port; the firmware numbers the ports' secondary
 * buses 1, 2, ... in slot order, so edu device i is 0000:0<i+1>:00.0 in the guest (checked by the
 * guest init, which counts the edu devices it binds, and by the hotplug guest tests).
 */
import { EDU_FIRST_SLOT } from './qemu-args.js';

/** QEMU id of the root port of hot-plug slot i (0-based). */
export function hotplugPortId(i: number): string {
  return `hp${i}`;
}

/** QEMU id of the edu device in hot-plug slot i. */
export function hotplugEduId(i: number): string {
  return `edu${i}`;
}

/** The guest BDF of the edu device in hot-plug slot i. */
export function hotplugEduBdf(i: number): string {
  return `0000:${(i + 1).toString(16).padStart(2, '0')}:00.0`;
}

/** The slot of a guest BDF, or -1 when it is none of the `devices` slots. */
export function hotplugSlotOf(bdf: string, devices: number): number {
  for (let i = 0; i < devices; i++) if (hotplugEduBdf(i) === bdf.toLowerCase()) return i;
  return -1;
}

/** `-device` arguments of the edu devices in hot-pluggable slots. */
export function hotplugDeviceArgs(devices: number): string[] {
  const a: string[] = [];
  for (let i = 0; i < devices; i++) {
    const addr = `0x${(EDU_FIRST_SLOT + i).toString(16)}`;
    a.push('-device', `pcie-root-port,id=${hotplugPortId(i)},bus=pcie.0,addr=${addr},chassis=${i + 1},slot=${i + 1}`);
    a.push('-device', eduDeviceSpec(i));
  }
  return a;
}

/** The device_add / -device spec of the edu device of slot i. */
export function eduDeviceSpec(i: number): string {
  return `edu,id=${hotplugEduId(i)},bus=${hotplugPortId(i)},addr=0x0`;
}
