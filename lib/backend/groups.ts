/**
 * IOMMU group viability, one rule for every backend (the kernel's, Linux 6.12
 * `iommu_group_claim_dma_owner` / `iommu_device_claim_dma_owner`): user space may own a group's
 * DMA only when no device of the group is bound to a driver that uses the kernel's DMA API. A
 * function bound to such a "host driver" (virtio-pci, e1000e, nvme, ...) makes the whole group not
 * viable: `VFIO_DEVICE_BIND_IOMMUFD` (iommufd) and `VFIO_GROUP_SET_CONTAINER` (type1) fail with
 * EPERM, and type1's `VFIO_GROUP_GET_STATUS` clears `VFIO_GROUP_FLAGS_VIABLE`. Unbound functions
 * and drivers that manage DMA themselves (`driver_managed_dma`: vfio-pci, pci-stub, pcieport; the
 * simulator's 'sim') leave it viable. A host driver cannot bind while user space owns the group
 * (the kernel refuses its probe), so the state is decided at device creation.
 *
 * Used by the native backends (sysfs) and the simulator (its machine), so both refuse the same
 * device with the same errno, syscall and message, at the same point of `openDevice`.
 */
import type { PciDeviceInfo } from './contract.js';

/** A function of an IOMMU group and the driver it is bound to (null: unbound). */
export interface GroupMember {
  readonly bdf: string;
  readonly driver: string | null;
}

/** Drivers that leave a group viable (the kernel's `driver_managed_dma` ones, and the simulator's stand-in for vfio-pci). */
export const GROUP_SAFE_DRIVERS: readonly string[] = ['vfio-pci', 'pci-stub', 'pcieport', 'sim'];

/** Whether a member bound to `driver` makes its group not viable. */
export function blocksGroup(driver: string | null): boolean {
  return driver !== null && !GROUP_SAFE_DRIVERS.includes(driver);
}

/** The shell command that releases `bdf` from its host driver (leaves it unbound: the group becomes viable). */
export function unbindCommand(bdf: string): string {
  return `echo ${bdf} > /sys/bus/pci/devices/${bdf}/driver/unbind`;
}

/** The shell commands that bind `bdf` to vfio-pci (as root). */
export function vfioBindCommand(bdf: string): string {
  return `echo vfio-pci > /sys/bus/pci/devices/${bdf}/driver_override; ${unbindCommand(bdf)}; echo ${bdf} > /sys/bus/pci/drivers_probe`;
}

/** The viability of one group, with the members that block it. */
export interface GroupViability {
  readonly group: number;
  readonly members: readonly GroupMember[];
  readonly viable: boolean;
  /** Members bound to a host driver. */
  readonly blockers: readonly GroupMember[];
  /** Why not viable and the commands that fix it (absent when viable). */
  readonly problem?: string;
}

export function groupViability(group: number, members: readonly GroupMember[]): GroupViability {
  const sorted = [...members].sort((a, b) => (a.bdf < b.bdf ? -1 : a.bdf > b.bdf ? 1 : 0));
  const blockers = sorted.filter((m) => blocksGroup(m.driver));
  if (blockers.length === 0) return { group, members: sorted, viable: true, blockers };
  return { group, members: sorted, viable: false, blockers, problem: notViableMessage(group, blockers) };
}

/**
 * "IOMMU group 7 is not viable: 0000:01:03.0 is bound to the host driver virtio-pci (...). Fix: ..."
 * Names every blocking member, its driver, and the commands that fix it.
 */
export function notViableMessage(group: number, blockers: readonly GroupMember[]): string {
  const who = blockers.map((b) => `${b.bdf} is bound to the host driver ${b.driver}`).join(', ');
  const fix = blockers.map((b) => `\`${unbindCommand(b.bdf)}\``).join(' and ');
  const toVfio = blockers.map((b) => `\`${vfioBindCommand(b.bdf)}\``).join(' and ');
  return (
    `IOMMU group ${group} is not viable: ${who} (every device of an IOMMU group must be bound to vfio-pci or to no driver ` +
    `before user space may own the group's DMA). Fix (as root, after stopping what uses it): ${fix}, or bind it to vfio-pci too: ${toVfio}`
  );
}


/** Every group of a device list (functions not behind an IOMMU are left out). */
export function groupsOf(devices: readonly { readonly bdf: string; readonly driver: string | null; readonly iommuGroup: number | null }[]): Map<number, GroupViability> {
  const byGroup = new Map<number, GroupMember[]>();
  for (const d of devices) {
    if (d.iommuGroup === null) continue;
    const list = byGroup.get(d.iommuGroup) ?? [];
    list.push({ bdf: d.bdf, driver: d.driver });
    byGroup.set(d.iommuGroup, list);
  }
  return new Map([...byGroup].map(([g, members]) => [g, groupViability(g, members)]));
}

/** The list with every otherwise usable device of a non-viable group marked unusable, the group's problem as the reason. */
export function withGroupViability(infos: readonly PciDeviceInfo[]): PciDeviceInfo[] {
  const groups = groupsOf(infos);
  return infos.map((d) => {
    const g = d.iommuGroup === null ? undefined : groups.get(d.iommuGroup);
    return d.usable && g && !g.viable ? { ...d, usable: false, whyNotUsable: g.problem! } : d;
  });
}
