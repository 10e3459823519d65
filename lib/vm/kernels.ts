/**
 * Choosing the guest kernel for a run: the packaged Debian kernel (type1), the self-built one (iommufd),
 * or an image the caller names (tests use that for "unbootable kernel").
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ensureDebianKernel } from './debian-kernel.js';
import { ensureIommufdKernel } from './kernel-build.js';
import { VmError } from './errors.js';
import type { VmLogger } from './log.js';
import type { GuestKernel, KernelFlavor } from './kernel-types.js';

export async function ensureKernel(
  flavor: KernelFlavor,
  cache: string,
  log: VmLogger,
  customImage?: string,
): Promise<GuestKernel> {
  if (customImage !== undefined) {
    const image = resolve(customImage);
    if (!existsSync(image)) throw new VmError(`kernel image ${image} does not exist`);
    // A custom image runs with the modules of the flavour it stands in for (none for iommufd).
    const base = flavor === 'type1' ? await ensureDebianKernel(cache, log) : undefined;
    return { flavor: 'custom', id: 'custom', image, modules: base?.modules ?? [], description: `custom image ${image}` };
  }
  return flavor === 'type1' ? ensureDebianKernel(cache, log) : ensureIommufdKernel(cache, log);
}
