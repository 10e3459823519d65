/**
 * Programmatic API of the VM harness (`dma-iommu vm`).
 */
export { runInVm, PASSED_ENV, type RunInVmOptions, type RunInVmResult } from './run.js';
export type { Outcome } from './boot.js';
export { liveQemuCount } from './boot.js';
export { prepare } from './prepare.js';
export { vmInfo, type VmInfo } from './info.js';
export { VmError, VM_EXIT } from './errors.js';
export { createLogger, silentLogger, type VmLogger } from './log.js';
export { eduBdf, type Accel } from './qemu-args.js';
export { KERNEL_FLAVORS, type KernelFlavor, type GuestKernel } from './kernel-types.js';
export { cacheRoot } from './paths.js';
export { hotplugEduBdf } from './hotplug-args.js';
export { unplug, plug, adoptDevice, hotplugAvailable, GuestControlError, type HotplugOutcome, type PlugOutcome, type UnplugOptions, type PlugOptions } from './guest-control.js';
