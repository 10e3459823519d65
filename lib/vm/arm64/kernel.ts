/**
 * The arm64 guest's kernel: Debian's packaged linux-image 6.12 for arm64 (unsigned), fetched and reduced
 * exactly like the x86 type1 kernel (lib/vm/debian-kernel.ts), cached under kernels/arm64-debian-<release>/
 * (older arm64-debian-* entries go once a new one is cached).
 * Its config has ARM_SMMU_V3=y, VFIO/VFIO_IOMMU_TYPE1/VFIO_PCI=m and no IOMMUFD, so this guest is type1 only.
 */
import { ensureDebianKernel, type DebianKernelSpec } from '../debian-kernel.js';
import type { GuestKernel } from '../kernel-types.js';
import type { VmLogger } from '../log.js';
import { ARM64_DEB_ARCH } from './deps.js';

export const DEBIAN_ARM64: DebianKernelSpec = {
  meta: 'linux-image-6.12-arm64',
  arch: ARM64_DEB_ARCH,
  prefix: 'arm64-debian-',
  lock: 'arm64-debian-kernel.lock',
  pruneOlder: true,
};

export function ensureArm64Kernel(cache: string, log: VmLogger): Promise<GuestKernel> {
  return ensureDebianKernel(cache, log, DEBIAN_ARM64);
}
