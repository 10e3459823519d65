/**
 * `dma-iommu vm prepare`: everything a run needs, without booting (CI can time it separately).
 */
import { VmError, VM_EXIT } from './errors.js';
import { ensureRequirements, RUN_REQUIREMENTS } from './deps.js';
import { ensureHelper } from './helper.js';
import { ensureInitramfs } from './initramfs.js';
import { ensureKernel } from './kernels.js';
import { createLogger, formatDuration, type VmLogger } from './log.js';
import { cacheRoot } from './paths.js';
import { chooseAccel } from './run.js';
import { KERNEL_FLAVORS, type KernelFlavor } from './kernel-types.js';

export async function prepare(flavors: readonly KernelFlavor[], log: VmLogger, cache = cacheRoot()): Promise<void> {
  await ensureRequirements(RUN_REQUIREMENTS, { log });
  for (const f of flavors) {
    const started = Date.now();
    const k = await ensureKernel(f, cache, log);
    ensureInitramfs(cache, k);
    log.stage(`${f} kernel ready (${formatDuration(Date.now() - started)}): ${k.description}`);
  }
  const helper = await ensureHelper(cache);
  log.stage(`DMA helper ready: ${helper}`);
  const { accel, why } = await chooseAccel(undefined, cache, log, flavors.includes('type1') ? 'type1' : flavors[0]);
  log.stage(`accelerator: ${accel} (${why})`);
}

export function parseKernelSelection(argv: string[]): readonly KernelFlavor[] {
  let sel: readonly KernelFlavor[] = KERNEL_FLAVORS;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = a === '--kernel' ? argv[++i] : a.startsWith('--kernel=') ? a.slice(9) : undefined;
    if (v === undefined) continue;
    if (v === 'all') sel = KERNEL_FLAVORS;
    else if ((KERNEL_FLAVORS as readonly string[]).includes(v)) sel = [v as KernelFlavor];
    else throw new VmError(`--kernel must be type1, iommufd or all (got ${v})`, VM_EXIT.usage);
  }
  return sel;
}

export async function prepareCommand(argv: string[]): Promise<number> {
  await prepare(parseKernelSelection(argv), createLogger({ verbose: argv.includes('--verbose') }));
  return 0;
}
