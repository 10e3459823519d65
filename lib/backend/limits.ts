/**
 * The limits users hit first on a real rig, as text every backend shares (the native backends read
 * the facts from /proc and /sys, the simulator models them as options): RLIMIT_MEMLOCK against
 * pinned memory, and VFIO type1's per-container mapping limit `dma_entry_limit`. Each message
 * names the limit, its value and the command that fixes it; `dma-iommu info` prints the same fixes.
 */

export const DMA_ENTRY_LIMIT_PARAM = '/sys/module/vfio_iommu_type1/parameters/dma_entry_limit';
/** The kernel's default dma_entry_limit (U16_MAX). */
export const DEFAULT_DMA_ENTRY_LIMIT = 65535;

/** The commands that lift RLIMIT_MEMLOCK for a Node.js process (or drop the need for it). */
export const MEMLOCK_FIX =
  'raise RLIMIT_MEMLOCK where node starts (`ulimit -l unlimited` in its shell as root; `prlimit --pid <pid> --memlock=unlimited` ' +
  'for a running process; `LimitMEMLOCK=infinity` in a systemd unit; `<user> - memlock unlimited` in /etc/security/limits.conf), ' +
  'or give node CAP_IPC_LOCK (`sudo setcap cap_ipc_lock+ep "$(readlink -f "$(command -v node)")"`), or run as root';

function bytes(n: bigint): string {
  const mib = Number(n) / (1024 * 1024);
  return `${n} bytes${n >= 1024n * 1024n ? ` (${Number.isInteger(mib) ? mib : mib.toFixed(1)} MiB)` : ''}`;
}

/** The message of a pin refused because RLIMIT_MEMLOCK is reached. */
export function memlockMessage(f: { limit: bigint; locked: bigint; request: bigint; what: string }): string {
  return (
    `RLIMIT_MEMLOCK reached: ${f.what} would pin ${bytes(f.request)} more, this process has ${bytes(f.locked)} locked or pinned already, ` +
    `and its RLIMIT_MEMLOCK is ${bytes(f.limit)} (no CAP_IPC_LOCK). Fix: ${MEMLOCK_FIX}`
  );
}

/** The commands that get more type1 mappings. */
export function entryLimitFix(limit: number): string {
  return (
    `map fewer, larger ranges (every map is one entry; a sub-range unmap splits one into two), raise the limit before the domain is created ` +
    `(\`echo ${Math.max(limit * 2, DEFAULT_DMA_ENTRY_LIMIT)} | sudo tee ${DMA_ENTRY_LIMIT_PARAM}\`; the kernel reads it when the container is opened), ` +
    `or use the iommufd backend (no per-domain mapping limit)`
  );
}

/** The message of the map after the last entry type1 allows in a container. */
export function entryLimitMessage(limit: number): string {
  return `VFIO type1 dma_entry_limit reached: this domain already holds ${limit} mappings, the limit per container (${DMA_ENTRY_LIMIT_PARAM} = ${limit}; DMA_AVAIL 0). Fix: ${entryLimitFix(limit)}`;
}
