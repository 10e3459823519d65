/**
 * `--iommu smmuv3`: everything an arm64 guest with QEMU's SMMUv3 needs before the boot (tools, Debian's
 * arm64 kernel, the arm64 root with Node and npm, the initramfs with the arm64 busybox, the addon and
 * the C helper cross-built), as run.ts consumes it.
 */
import { ensureInitramfs } from '../initramfs.js';
import { VmError, VM_EXIT } from '../errors.js';
import { which } from '../exec.js';
import type { GuestKernel, KernelFlavor } from '../kernel-types.js';
import type { VmLogger } from '../log.js';
import { ensureArm64Apt } from './deps.js';
import { ensureArm64Kernel } from './kernel.js';
import { ensureArm64Root, ensureMountPoint, type Arm64Root } from './rootfs.js';
import { ensureArm64Addon, ensureArm64Helper } from './addon.js';
import { ensureArm64PlatformPackages } from './native-deps.js';
import { packageRoot } from '../paths.js';

export interface Arm64Guest {
  kernel: GuestKernel;
  initrd: string;
  root: Arm64Root;
  /** The C helper's path inside the guest. */
  helper: string;
  /** The addon installed into the package for the guest's loader. */
  addon: string;
  qemu: string;
}

export interface Arm64Options {
  flavor: KernelFlavor;
  cwd: string;
  install?: boolean;
  kernelImage?: string;
  hotplug?: boolean;
  topology?: string;
  accel?: string;
}

/** Why an option cannot be combined with `--iommu smmuv3` (undefined: it can). */
export function arm64Refusal(o: Arm64Options): string | undefined {
  if (o.flavor !== 'type1') {
    return `--iommu smmuv3 runs Debian's arm64 6.12 kernel, which has no IOMMUFD (CONFIG_IOMMUFD is not set); use --kernel type1`;
  }
  if (o.hotplug) return '--iommu smmuv3 has no --hotplug layout (the hot-plug root ports are the q35 layout)';
  if (o.topology !== undefined && o.topology !== 'flat') return '--iommu smmuv3 has only the flat topology';
  if (o.kernelImage !== undefined) return '--iommu smmuv3 does not take --kernel-image';
  if (o.accel === 'kvm') return '--iommu smmuv3 boots an aarch64 guest: TCG only on this host (no --accel kvm)';
  return undefined;
}

export async function prepareArm64Guest(cache: string, log: VmLogger, o: Arm64Options): Promise<Arm64Guest> {
  const refusal = arm64Refusal(o);
  if (refusal) throw new VmError(refusal, VM_EXIT.usage);
  await ensureArm64Apt(log, o.install);
  const kernel = await ensureArm64Kernel(cache, log);
  const root = await ensureArm64Root(cache, log);
  ensureMountPoint(root, o.cwd);
  const initrd = ensureInitramfs(cache, kernel, root.busybox);
  const addon = await ensureArm64Addon(cache, root, log);
  const helper = await ensureArm64Helper(root);
  await ensureArm64PlatformPackages(root, packageRoot(), log);
  return { kernel, initrd, root, helper, addon, qemu: which('qemu-system-aarch64')! };
}
