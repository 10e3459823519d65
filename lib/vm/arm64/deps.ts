/**
 * Host tools the arm64 guest needs (QEMU's aarch64 system emulator, the aarch64 cross compiler for the
 * addon and the C helper, npm for the Node packages) and Debian's arm64 package lists (apt only
 * downloads `pkg:arm64` once arm64 is a foreign architecture of dpkg).
 */
import { existsSync } from 'node:fs';
import { capture, isRoot, mustRun, which } from '../exec.js';
import { aptUpdate, ensureRequirements, type Requirement } from '../deps.js';
import { VmError, VM_EXIT } from '../errors.js';
import type { VmLogger } from '../log.js';

/** Debian's architecture name of the guest. */
export const ARM64_DEB_ARCH = 'arm64';

const cmd = (name: string): (() => boolean) => () => which(name) !== undefined;

export const ARM64_REQUIREMENTS: Requirement[] = [
  { check: cmd('qemu-system-aarch64'), pkg: 'qemu-system-arm', what: 'qemu-system-aarch64' },
  // -kernel boots the Image directly: no UEFI firmware (qemu-efi-aarch64) is needed.
  { check: cmd('aarch64-linux-gnu-g++'), pkg: 'g++-aarch64-linux-gnu', what: 'aarch64-linux-gnu-g++ (the addon for the guest)' },
  { check: cmd('aarch64-linux-gnu-gcc'), pkg: 'gcc-aarch64-linux-gnu', what: 'aarch64-linux-gnu-gcc (the C helper for the guest)' },
  { check: cmd('dpkg-deb'), pkg: 'dpkg', what: 'dpkg-deb' },
  { check: cmd('npm'), pkg: 'npm', what: 'npm (fetches Node for linux-arm64)' },
  { check: () => existsSync('/usr/bin/tar') || which('tar') !== undefined, pkg: 'tar', what: 'tar' },
];

/** Make `arm64` a foreign dpkg architecture (once per machine) so `apt-get download pkg:arm64` works. */
export async function ensureArm64Apt(log: VmLogger, install = true): Promise<void> {
  await ensureRequirements(ARM64_REQUIREMENTS, { log, install });
  const r = await capture('dpkg', ['--print-foreign-architectures']);
  if (r.stdout.split(/\s+/).includes(ARM64_DEB_ARCH)) return;
  if (!isRoot() || !install) {
    throw new VmError(
      `apt cannot fetch arm64 packages for the smmuv3 guest.\nEnable them with:\n  sudo dpkg --add-architecture arm64 && sudo apt-get update\n` +
        `(dma-iommu does this itself when it runs as root.)`,
      VM_EXIT.harness,
    );
  }
  log.stage('adding arm64 as a foreign dpkg architecture (dpkg --add-architecture arm64) for the guest packages');
  await mustRun('dpkg', ['--add-architecture', ARM64_DEB_ARCH]);
  await aptUpdate(log, true);
}
