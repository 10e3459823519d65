/**
 * What the rest of the harness needs to know about a guest kernel.
 */

/** `type1`: Debian's packaged 6.12 (legacy VFIO container/group). `iommufd`: built from linux-source with
 *  vm/kernel/iommufd.config (iommufd + VFIO device cdev + the legacy container). */
export type KernelFlavor = 'type1' | 'iommufd';

export const KERNEL_FLAVORS: readonly KernelFlavor[] = ['type1', 'iommufd'];

export interface GuestKernel {
  flavor: KernelFlavor | 'custom';
  /** Cache entry name, e.g. `debian-6.12.117+deb12-amd64` or `iommufd-6.12.117-1~deb12u1-3f2a9c0d1e2b`. */
  id: string;
  /** The kernel image given to QEMU's -kernel. */
  image: string;
  /** Decompressed modules to insmod, in load order (empty when everything is built in). */
  modules: string[];
  /** One line for `vm info` and messages. */
  description: string;
}
