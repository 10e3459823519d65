/**
 * The simulated backend: a model of a machine with an IOMMU (VT-d-like on x86_64, SMMUv3-like on
 * arm64), QEMU edu devices and a DMA engine, following the Linux kernel's iommufd rules.
 */
export {
  SimulatedBackend,
  SIM_SYSCALLS,
  type SimOpName,
  type DmaReadResult,
  type DmaWriteResult,
  type DmaOptions,
  type InspectOptions,
  type SimInspection,
} from './backend.js';
export { simulatorControls, type SimulatorTestControls } from './controls.js';
export type { SimRecordCounts } from './inspect.js';
export {
  DEFAULT_DEVICES,
  DEFAULT_PAGE_SIZES,
  GENERIC_DEVICE,
  GENERIC_VENDOR,
  X86_MSI_WINDOW,
  ARM64_SW_MSI_WINDOW,
  type SimDeviceSpec,
  type SimulatedBackendOptions,
} from './machine.js';
export { VTD, VTD_REASONS, SMMU, SMMU_EVENTS, type SimulatedFault } from './faults.js';
export { EDU_ID, EDU_VENDOR, EDU_DEVICE, EDU_DMA_START, EDU_DMA_SIZE } from './edu-model.js';
