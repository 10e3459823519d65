/**
 * The QEMU command line of the arm64 guest: `virt` with QEMU's SMMUv3 in front of the PCIe root complex
 * (`iommu=smmuv3`; stage 1 only in QEMU 7.2), GICv3 with its ITS so MSIs are isolated (VFIO type1 then
 * needs no allow_unsafe_interrupts), TCG (an aarch64 guest on an x86 host), the edu devices at the same
 * slots as on q35, and the same I/O as every guest (lib/vm/qemu-args.ts channelAndShareArgs). The kernel
 * console is the virt board's PL011 (ttyAMA0). No firmware: QEMU loads the Image with -kernel.
 */
import { channelAndShareArgs, EDU_FIRST_SLOT, type GuestMachine } from '../qemu-args.js';

export function arm64KernelCommandLine(m: GuestMachine): string {
  return ['console=ttyAMA0', 'panic=-1', 'quiet', 'dma_iommu_vm=1', m.append ?? ''].join(' ').trim();
}

export function arm64QemuArgs(m: GuestMachine): string[] {
  const a: string[] = ['-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot'];
  // cortex-a72 (Armv8.0), not 'max': under QEMU 7.2 TCG the guest's Node crashed with SIGSEGV on -cpu max
  // (tsc under npx, a vitest worker), and max emulates pointer authentication in software (slow).
  a.push('-accel', 'tcg', '-cpu', 'cortex-a72', '-machine', 'virt,iommu=smmuv3,gic-version=3');
  a.push('-m', String(m.memoryMiB), '-smp', String(m.cpus));
  for (let i = 0; i < m.devices; i++) a.push('-device', `edu,addr=0x${(EDU_FIRST_SLOT + i).toString(16)}`);
  a.push('-kernel', m.kernel.image, '-initrd', m.initrd, '-append', arm64KernelCommandLine(m));
  a.push(...channelAndShareArgs(m));
  return a;
}
