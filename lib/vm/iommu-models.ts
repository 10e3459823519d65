/**
 * The emulated IOMMU of a guest (`dma-iommu vm run --iommu MODEL`). Each model is ONE record: the QEMU
 * arguments that create it, the kernel command-line words it needs, the guest modules a modular
 * kernel must load for it, and whether it can run at all yet. Nothing else in the harness branches
 * on the model's name.
 *
 * Facts (QEMU 7.2, Linux 6.12; measured in the guest, see README "IOMMU models"):
 *  - vtd: `intel-iommu` with interrupt remapping; the only model whose fault records carry a
 *    direction and a reason code.
 *  - virtio: `virtio-iommu-pci` (QEMU builds the ACPI VIOT table on q35). It has no interrupt
 *    remapping, so VFIO type1 and iommufd refuse to attach a device unless unsafe interrupts are
 *    allowed: the model sets `vfio_iommu_type1.allow_unsafe_interrupts=1` and
 *    `iommufd.allow_unsafe_interrupts=1`. A guest on this model does NOT isolate device MSIs:
 *    fine for emulated edu devices, never do it on a host you care about.
 *  - amd: `amd-iommu` (QEMU adds its AMDVI-PCI function in the first free slot, 00:01.0, beside the
 *    edu devices' 00:03.0...). QEMU 7.2's page walk blocks a DMA to an unmapped IOVA without
 *    logging an event, so no fault record reaches the kernel log.
 *  - smmuv3: Arm SMMUv3 on an arm64 `virt` guest (lib/vm/arm64/): `virt,iommu=smmuv3,gic-version=3`,
 *    Debian's arm64 6.12 (no IOMMUFD: type1 only), an arm64 root with Node; faults are logged as
 *    the multi-record `event 0x10 received:` dump (lib/backend/native/kmsg-smmu.ts).
 */
import { VmError, VM_EXIT } from './errors.js';

export const IOMMU_MODELS = ['vtd', 'virtio', 'amd', 'smmuv3'] as const;
export type IommuModelName = (typeof IOMMU_MODELS)[number];

export interface IommuModel {
  name: IommuModelName;
  /** One line for usage text and messages. */
  summary: string;
  /** Why the model cannot run yet; undefined when it can. */
  unavailable?: string;
  /** QEMU `-device` arguments creating the IOMMU (they come before the devices it translates). */
  qemuDevice: string[];
  /** Extra `-machine` properties (TCG). */
  machineProps?: string;
  /** Kernel command-line words enabling the IOMMU and whatever VFIO needs on it. */
  kernelArgs: string[];
  /** Modules a modular kernel (Debian's) must load for this model, before vfio. */
  guestModules: string[];
  /** A caveat the user must know (printed by `vm run --verbose` and shown in README). */
  caveat?: string;
}

const UNSAFE_INTERRUPTS = ['vfio_iommu_type1.allow_unsafe_interrupts=1', 'iommufd.allow_unsafe_interrupts=1'];

export const IOMMU_MODEL_RECORDS: Readonly<Record<IommuModelName, IommuModel>> = {
  vtd: {
    name: 'vtd',
    summary: 'emulated Intel VT-d with interrupt remapping (intel-iommu)',
    qemuDevice: ['-device', 'intel-iommu,intremap=on,caching-mode=on'],
    kernelArgs: ['intel_iommu=on'],
    guestModules: [],
  },
  virtio: {
    name: 'virtio',
    summary: 'virtio-iommu-pci (ACPI VIOT), no interrupt remapping',
    qemuDevice: ['-device', 'virtio-iommu-pci,addr=0x2'],
    kernelArgs: [...UNSAFE_INTERRUPTS],
    guestModules: ['virtio_iommu'],
    caveat: 'virtio-iommu has no interrupt remapping: the guest kernel allows unsafe interrupts (vfio_iommu_type1/iommufd allow_unsafe_interrupts=1)',
  },
  amd: {
    name: 'amd',
    summary: 'emulated AMD-Vi (amd-iommu, its PCI function at 00:01.0); blocked DMA is not logged by QEMU 7.2',
    qemuDevice: ['-device', 'amd-iommu,intremap=on'],
    // AMD-Vi is on by default (6.12 answers `amd_iommu=on` with "AMD-Vi: Unknown option - 'on'");
    // interrupt remapping works under TCG ("AMD-Vi: Interrupt remapping enabled")
    kernelArgs: [],
    guestModules: [],
  },
  smmuv3: {
    name: 'smmuv3',
    summary: 'Arm SMMUv3 (stage 1) on an arm64 virt guest, GICv3 + ITS, TCG; Debian arm64 kernel, type1 only',
    // a different machine altogether: its command line is lib/vm/arm64/qemu-args.ts
    qemuDevice: [],
    kernelArgs: [],
    guestModules: [],
  },
};

/** Every module any model needs from a modular kernel (cached with the kernel; loading one without its device is a no-op). */
export function allModelModules(): string[] {
  return [...new Set(Object.values(IOMMU_MODEL_RECORDS).flatMap((m) => m.guestModules))];
}

/** The record of `name`, or a usage error naming the option and the choices. */
export function iommuModel(name: string | undefined, option = '--iommu'): IommuModel {
  if (name !== undefined && (IOMMU_MODELS as readonly string[]).includes(name)) {
    const m = IOMMU_MODEL_RECORDS[name as IommuModelName];
    if (m.unavailable) throw new VmError(`${option} ${name}: ${m.unavailable}`, VM_EXIT.usage);
    return m;
  }
  throw new VmError(`${option} must be ${IOMMU_MODELS.join(', ')} (got ${name ?? 'nothing'})`, VM_EXIT.usage);
}
