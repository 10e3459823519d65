/**
 * `dma-iommu vm ...`: run, info, prepare, test.
 */
import { VmError, VM_EXIT } from './errors.js';
import { createLogger } from './log.js';
import { runInVm } from './run.js';
import { KERNEL_FLAVORS, type KernelFlavor } from './kernel-types.js';
import type { AccelChoice } from './accel.js';
import { TOPOLOGIES, type Topology } from './qemu-args.js';
import { iommuModel, type IommuModelName } from './iommu-models.js';

export const VM_USAGE = `Usage: dma-iommu vm <subcommand>

  vm run [options] -- COMMAND [ARG...]
      Boot a QEMU guest (q35, an emulated IOMMU (default Intel VT-d), edu DMA devices bound to
      vfio-pci), run COMMAND as root in the current directory with the host's root filesystem visible
      read-only and the current directory writable, power off, exit with COMMAND's exit code.
        --kernel type1|iommufd   guest kernel (default type1: Debian's packaged 6.12, legacy VFIO;
                                 iommufd: built once from linux-source-6.12, iommufd + VFIO cdev + type1)
        --iommu vtd|virtio|amd|smmuv3
                                 the emulated IOMMU (default vtd: intel-iommu with interrupt remapping;
                                 virtio: virtio-iommu-pci, no interrupt remapping, so the guest kernel
                                 allows unsafe interrupts for VFIO/iommufd; amd: amd-iommu, whose
                                 blocked DMA QEMU 7.2 does not log; smmuv3: an arm64 virt guest with
                                 Arm SMMUv3 under TCG, Debian's arm64 kernel (type1 only), an arm64
                                 root with Node instead of the host's, the addon cross-built)
        --devices N              edu devices, each in its own IOMMU group (default 2, max 16)
        --hotplug                edu devices in hot-pluggable slots (device i at 0000:0<i+1>:00.0);
                                 COMMAND unplugs/plugs them with lib/vm/guest-control.ts
        --topology flat|bridge   extra devices (default flat: none); bridge: a PCI bridge with two
                                 edu devices and a virtio-rng (left on virtio-pci) in ONE IOMMU group
        --timeout S              host-side limit for the whole run in seconds (default 600)
        --env K=V | --env K      set / pass through an environment variable (repeatable)
        --memory MIB             guest memory (default 2048)      --cpus N   guest CPUs (default 2)
        --accel auto|tcg|kvm     default auto (KVM only where a probe boot works; else TCG)
        --console FILE           write the whole guest kernel console to FILE
        --verbose                harness notes and the guest console (prefixed) on stderr
        --kernel-image PATH      boot PATH instead of the cached kernel (testing)
      Exit codes: COMMAND's own; 124 timeout; 125 harness error (missing tool, kernel build, QEMU
      failure, unbootable kernel, guest panic, guest setup failure, no exit code reported); 2 usage.

  vm info [--json]           What is cached and what would be used.
  vm prepare [--kernel type1|iommufd|all]
                             Install tools, fetch/build the kernels, build the helper (no boot).
  vm test [--kernel type1|iommufd|all] [--iommu MODEL|all] [--no-host]
                             The real-kernel suite: vm-host tests on the host, then the vm-guest
                             tests inside a guest for each kernel (what \`npm run test:vm\` runs);
                             on the other IOMMU models (virtio, amd) the kernel-facts, conformance
                             and selftest files (default all models; --iommu vtd: only VT-d).
`;

class UsageError extends VmError {
  constructor(message: string) {
    super(message, VM_EXIT.usage);
  }
}

function parseKernel(v: string | undefined, allowAll: false): KernelFlavor;
function parseKernel(v: string | undefined, allowAll: true): KernelFlavor | 'all';
function parseKernel(v: string | undefined, allowAll: boolean): KernelFlavor | 'all' {
  if (v === 'all' && allowAll) return 'all';
  if (v && (KERNEL_FLAVORS as readonly string[]).includes(v)) return v as KernelFlavor;
  throw new UsageError(`--kernel must be ${KERNEL_FLAVORS.join(' or ')}${allowAll ? ' or all' : ''} (got ${v ?? 'nothing'})`);
}

export function parseTopology(v: string | undefined): Topology {
  if (v && (TOPOLOGIES as readonly string[]).includes(v)) return v as Topology;
  throw new UsageError(`--topology must be ${TOPOLOGIES.join(' or ')} (got ${v ?? 'nothing'})`);
}

function parseInt10(name: string, v: string | undefined, min: number, max: number): number {
  const n = Number(v);
  if (!v || !Number.isInteger(n) || n < min || n > max) throw new UsageError(`${name} must be an integer in ${min}..${max}`);
  return n;
}

export function parseIommu(v: string | undefined): IommuModelName {
  return iommuModel(v).name;
}

export interface RunArgs {
  kernel: KernelFlavor;
  iommu?: IommuModelName;
  devices?: number;
  topology?: Topology;
  timeoutSeconds?: number;
  env: Record<string, string>;
  passEnv: string[];
  memoryMiB?: number;
  cpus?: number;
  accel?: AccelChoice;
  consoleLog?: string;
  verbose: boolean;
  kernelImage?: string;
  hotplug?: boolean;
  command: string[];
}

export function parseRunArgs(argv: string[]): RunArgs {
  const r: RunArgs = { kernel: 'type1', env: {}, passEnv: [], verbose: false, command: [] };
  let i = 0;
  const value = (flag: string) => {
    const v = argv[++i];
    if (v === undefined) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      r.command = argv.slice(i + 1);
      break;
    }
    const eqAt = a.indexOf('=');
    const [flag, inline] = a.startsWith('--') && eqAt > 0 ? [a.slice(0, eqAt), a.slice(eqAt + 1)] : [a, undefined];
    const val = (f: string) => inline ?? value(f);
    switch (flag) {
      case '--kernel': r.kernel = parseKernel(val(flag), false); break;
      case '--iommu': r.iommu = parseIommu(val(flag)); break;
      case '--devices': r.devices = parseInt10(flag, val(flag), 1, 16); break;
      case '--topology': r.topology = parseTopology(val(flag)); break;
      case '--timeout': r.timeoutSeconds = parseInt10(flag, val(flag), 1, 86_400); break;
      case '--memory': r.memoryMiB = parseInt10(flag, val(flag), 256, 65_536); break;
      case '--cpus': r.cpus = parseInt10(flag, val(flag), 1, 64); break;
      case '--accel': {
        const v = val(flag);
        if (v !== 'auto' && v !== 'tcg' && v !== 'kvm') throw new UsageError('--accel must be auto, tcg or kvm');
        r.accel = v;
        break;
      }
      case '--console': r.consoleLog = val(flag); break;
      case '--kernel-image': r.kernelImage = val(flag); break;
      case '--verbose': case '-v': r.verbose = true; break;
      case '--hotplug': r.hotplug = true; break;
      case '--env': {
        const v = val(flag);
        const eq = v.indexOf('=');
        if (eq > 0) r.env[v.slice(0, eq)] = v.slice(eq + 1);
        else if (eq < 0 && v) r.passEnv.push(v);
        else throw new UsageError(`--env ${v}: expected K=V or K`);
        break;
      }
      default:
        if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
        r.command = argv.slice(i); // COMMAND without a "--"
        i = argv.length;
    }
  }
  if (r.command.length === 0) throw new UsageError('no COMMAND given (vm run [options] -- COMMAND...)');
  return r;
}

function prefixer(write: (s: string) => void, prefix: string) {
  let pending = '';
  return (chunk: Buffer) => {
    pending += chunk.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const l of lines) write(`${prefix}${l.replace(/\r$/, '')}\n`);
  };
}

async function runCommand(argv: string[]): Promise<number> {
  const a = parseRunArgs(argv);
  const log = createLogger({ verbose: a.verbose });
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const r = await runInVm({
      command: a.command,
      kernel: a.kernel,
      iommu: a.iommu,
      devices: a.devices,
      topology: a.topology,
      timeoutSeconds: a.timeoutSeconds,
      env: a.env,
      passEnv: a.passEnv,
      memoryMiB: a.memoryMiB,
      cpus: a.cpus,
      accel: a.accel,
      kernelImage: a.kernelImage,
      hotplug: a.hotplug,
      consoleLog: a.consoleLog,
      logger: log,
      capture: false,
      signal: controller.signal,
      onStdout: (c) => void process.stdout.write(c),
      onStderr: (c) => void process.stderr.write(c),
      onConsole: a.verbose ? prefixer((s) => void process.stderr.write(s), '[guest console] ') : undefined,
    });
    if (r.outcome !== 'exited') {
      process.stderr.write(`dma-iommu vm: ${r.error}\n`);
      if (r.outcome !== 'aborted' && r.consoleTail) {
        process.stderr.write(`dma-iommu vm: last lines of the guest console:\n${r.consoleTail.split('\n').map((l) => `  | ${l.replace(/\r$/, '')}`).join('\n')}\n`);
      }
    }
    log.note(`boot ${r.bootMs !== undefined ? `${(r.bootMs / 1000).toFixed(1)}s` : 'n/a'}, total ${(r.durationMs / 1000).toFixed(1)}s, exit ${r.exitCode}`);
    return r.exitCode;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export async function vmCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    switch (sub) {
      case 'run':
        return await runCommand(rest);
      case 'info': {
        const extra = rest.find((a) => a !== '--json');
        if (extra !== undefined) throw new UsageError(`info: ${extra.startsWith('-') ? `unknown option ${extra}` : `unexpected argument '${extra}'`} (options: --json)`);
        const { infoCommand } = await import('./info.js');
        return await infoCommand(rest);
      }
      case 'prepare': {
        const { prepareCommand } = await import('./prepare.js');
        return await prepareCommand(rest);
      }
      case 'test': {
        const { testCommand } = await import('./test-command.js');
        return await testCommand(rest);
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(VM_USAGE);
        return sub === undefined ? VM_EXIT.usage : 0;
      default:
        throw new UsageError(`unknown subcommand '${sub}'`);
    }
  } catch (e) {
    if (e instanceof VmError) {
      process.stderr.write(`dma-iommu vm: ${e.message}\n`);
      if (e.exitCode === VM_EXIT.usage) process.stderr.write(`\n${VM_USAGE}`);
      return e.exitCode;
    }
    throw e;
  }
}
