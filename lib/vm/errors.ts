/**
 * Errors of the VM harness and its exit codes.
 */

/** Exit codes of `dma-iommu vm run` that are not COMMAND's own. */
export const VM_EXIT = {
  /** Bad command line. */
  usage: 2,
  /** The host-side timeout ended the guest. */
  timeout: 124,
  /** Harness error: missing dependency, kernel build failed, QEMU failed, guest cannot boot, guest panicked,
   *  guest setup failed, guest ended without reporting an exit code. */
  harness: 125,
} as const;

/** A harness failure with a message meant for the user (no stack needed). */
export class VmError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = VM_EXIT.harness,
  ) {
    super(message);
    this.name = 'VmError';
  }
}
