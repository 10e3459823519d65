/**
 * `runInVm`: prepare everything (tools, kernel, initramfs, helper), write the per-run share, boot the
 * guest, and return COMMAND's exit code and output (or why the guest ended otherwise).
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, createWriteStream, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { bootGuest, type Outcome } from './boot.js';
import { resolveAccel, type AccelChoice } from './accel.js';
import { ensureRequirements, RUN_REQUIREMENTS } from './deps.js';
import { VmError, VM_EXIT } from './errors.js';
import { which } from './exec.js';
import { ensureHelper } from './helper.js';
import { ensureInitramfs } from './initramfs.js';
import { ensureKernel } from './kernels.js';
import { silentLogger, type VmLogger } from './log.js';
import { cacheRoot } from './paths.js';
import { eduBdf, MAX_EDU_DEVICES, TOPOLOGIES, topologyEduCount, type Accel, type Topology } from './qemu-args.js';
import { hotplugEduBdf } from './hotplug-args.js';
import type { KernelFlavor } from './kernel-types.js';
import { iommuModel, type IommuModelName } from './iommu-models.js';
import { prepareArm64Guest, type Arm64Guest } from './arm64/index.js';

export interface RunInVmOptions {
  /** COMMAND and its arguments (run with the guest's PATH, no shell). */
  command: string[];
  /** Guest kernel (default 'type1'). */
  kernel?: KernelFlavor;
  /** Number of edu devices on the root complex, 1..16 (default 2). */
  devices?: number;
  /**
   * Put every edu device in a hot-pluggable slot (a PCIe root port; device i is 0000:0<i+1>:00.0)
   * and let COMMAND unplug and plug them (lib/vm/guest-control.ts, over QMP on the host).
   */
  hotplug?: boolean;
  /** The emulated IOMMU: 'vtd' (default), 'virtio', 'amd' (lib/vm/iommu-models.ts; 'smmuv3' is the arm64 guest). */
  iommu?: IommuModelName;
  /** Extra devices: 'flat' (default, none) or 'bridge' (two edu devices sharing one IOMMU group; see qemu-args.ts). */
  topology?: Topology;
  /** Host-side limit for boot + COMMAND + power-off, seconds (default 600). */
  timeoutSeconds?: number;
  /** Working directory, shared writable into the guest at the same path (default process.cwd()). */
  cwd?: string;
  /** Extra environment for COMMAND (added to the passed-through variables). */
  env?: Record<string, string>;
  /** Names of further host variables to pass through. */
  passEnv?: string[];
  /** Guest memory in MiB (default 2048). */
  memoryMiB?: number;
  /** Guest CPUs (default 2). */
  cpus?: number;
  /** 'auto' (default; $DMA_IOMMU_VM_ACCEL overrides), 'tcg' or 'kvm'. */
  accel?: AccelChoice;
  /** Boot this image instead of the cached kernel of `kernel` (tests). */
  kernelImage?: string;
  /** Extra guest kernel command-line words. */
  kernelArgs?: string;
  /** Cache folder (default $DMA_IOMMU_CACHE or ~/.cache/dma-iommu). */
  cacheDir?: string;
  /** Progress and notes (default: silent). */
  logger?: VmLogger;
  /** Streaming of COMMAND's output and the guest console as it arrives. */
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  onConsole?: (chunk: Buffer) => void;
  /** Write the whole guest console to this file. */
  consoleLog?: string;
  /** Keep stdout/stderr in the result (default true). */
  capture?: boolean;
  /** Install missing Debian packages when root (default true). */
  install?: boolean;
  signal?: AbortSignal;
}

export interface RunInVmResult {
  /** COMMAND's exit code, or 124 (timeout) / 125 (harness) / 130 (aborted). */
  exitCode: number;
  outcome: Outcome;
  /** Why the run did not end with COMMAND's exit code. */
  error?: string;
  stdout: string;
  stderr: string;
  /** The last 40 lines of the guest kernel console. */
  consoleTail: string;
  /** The guest console (last 2 MiB). */
  console: string;
  kernel: string;
  accel: Accel;
  accelReason: string;
  /** QEMU start to COMMAND start. */
  bootMs?: number;
  durationMs: number;
}

/** Host variables COMMAND sees by default (plus every DMA_IOMMU_* and LC_*). */
export const PASSED_ENV = ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LANGUAGE', 'TZ', 'TERM', 'CI', 'NO_COLOR', 'FORCE_COLOR', 'NODE_OPTIONS'];

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * npm inside the guest. The host root (and so $HOME/.npm) is read-only there, and every `npm` / `npx`
 * call writes its cache, logs and npx locks, so they go to the guest's own tmpfs /tmp: writable, gone
 * at power-off, never written to the host. The guest has no network: npm never asks the registry
 * (offline; a missing package fails at once with ENOTCACHED instead of after retries), and no update
 * check. No lifecycle scripts: `npx <bin>` in a package's own checkout links that package into the
 * (fresh, empty) npx cache, which would otherwise run its prepare/install scripts (a TypeScript and
 * node-gyp rebuild of the shared checkout, minutes under TCG) on every run; the price is that `npm run X`
 * skips preX/postX. Defaults only: `--env` and passed-through host variables win.
 */
export const GUEST_NPM_ENV: Readonly<Record<string, string>> = {
  npm_config_cache: '/tmp/.npm',
  npm_config_offline: 'true',
  npm_config_update_notifier: 'false',
  npm_config_ignore_scripts: 'true',
};

/** The environment COMMAND gets. */
export function guestEnvironment(options: RunInVmOptions, extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { ...GUEST_NPM_ENV };
  const names = new Set([...PASSED_ENV, ...(options.passEnv ?? [])]);
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (names.has(k) || k.startsWith('DMA_IOMMU_') || k.startsWith('LC_')) env[k] = v;
  }
  env.PATH ??= '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  Object.assign(env, extra, options.env ?? {});
  return env;
}

function writeRunShare(dir: string, cwd: string, command: string[], env: Record<string, string>, devices: number, keep: string[], deadline: number) {
  const config = [
    `DMA_CWD=${shellQuote(cwd)}`,
    `DMA_DEVICES=${devices}`,
    `DMA_KEEP=${shellQuote(keep.join(' '))}`,
    `DMA_DEADLINE=${deadline}`,
    `DMA_CWD_CACHE=${shellQuote(process.env.DMA_IOMMU_VM_CWD_CACHE ?? '')}`,
  ];
  writeFileSync(join(dir, 'config.sh'), config.join('\n') + '\n');
  const lines = ['# COMMAND of one `dma-iommu vm run` (generated)'];
  for (const [k, v] of Object.entries(env)) {
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) lines.push(`export ${k}=${shellQuote(v)}`);
  }
  lines.push(`cd ${shellQuote(cwd)} || { echo "dma-iommu vm: cannot enter ${cwd.replace(/["$`\\]/g, '')} in the guest" >&2; exit 125; }`);
  lines.push(`exec ${command.map(shellQuote).join(' ')}`);
  writeFileSync(join(dir, 'cmd.sh'), lines.join('\n') + '\n');
}

/**
 * Resolve the accelerator: explicit choice, else $DMA_IOMMU_VM_ACCEL, else 'auto' (KVM only if a probe
 * boot of `true` under KVM works on this host; the result is cached).
 */
export async function chooseAccel(
  requested: AccelChoice | undefined,
  cache: string,
  log: VmLogger,
  flavor: KernelFlavor = 'type1',
): Promise<{ accel: Accel; why: string }> {
  const fromEnv = process.env.DMA_IOMMU_VM_ACCEL;
  if (requested === undefined && fromEnv && !['auto', 'tcg', 'kvm'].includes(fromEnv)) {
    throw new VmError(`DMA_IOMMU_VM_ACCEL must be auto, tcg or kvm (got ${fromEnv})`, VM_EXIT.usage);
  }
  const choice = requested ?? ((fromEnv as AccelChoice | undefined) || 'auto');
  return resolveAccel(choice, cache, which('qemu-system-x86_64')!, async () => {
    log.stage('probing whether KVM works on this host (one short boot; the answer is cached)');
    const r = await runInVm({ command: ['true'], kernel: flavor, cacheDir: cache, accel: 'kvm', timeoutSeconds: 90, logger: log });
    return { ok: r.exitCode === 0 && r.outcome === 'exited', detail: r.error?.split('\n')[0] ?? `exit ${r.exitCode}` };
  });
}

/** Run COMMAND in a fresh guest. Throws VmError only when the run cannot be prepared (tools, kernel). */
export async function runInVm(options: RunInVmOptions): Promise<RunInVmResult> {
  const log = options.logger ?? silentLogger;
  if (!options.command.length) throw new VmError('no COMMAND given', VM_EXIT.usage);
  const flavor = options.kernel ?? 'type1';
  const devices = options.devices ?? 2;
  if (!Number.isInteger(devices) || devices < 1 || devices > MAX_EDU_DEVICES) {
    throw new VmError(`--devices must be 1..${MAX_EDU_DEVICES}`, VM_EXIT.usage);
  }
  const topology = options.topology ?? 'flat';
  if (!(TOPOLOGIES as readonly string[]).includes(topology)) throw new VmError(`--topology must be ${TOPOLOGIES.join(' or ')} (got ${String(topology)})`, VM_EXIT.usage);
  // the hot-plug root ports take the buses the bridge's devices are numbered on (01:…): one layout at a time
  if (options.hotplug && topology !== 'flat') throw new VmError('--hotplug and --topology bridge cannot be combined (one layout per guest)', VM_EXIT.usage);
  const iommu = iommuModel(options.iommu ?? 'vtd', 'iommu');
  const timeoutSeconds = options.timeoutSeconds ?? 600;
  const cwd = resolve(options.cwd ?? process.cwd());
  if (!existsSync(cwd) || !statSync(cwd).isDirectory()) throw new VmError(`working directory ${cwd} does not exist`);
  const cache = options.cacheDir ? resolve(options.cacheDir) : cacheRoot();

  // smmuv3: an arm64 guest; its kernel, root, initramfs, addon and helper come from lib/vm/arm64.
  const arm: Arm64Guest | undefined =
    iommu.name === 'smmuv3'
      ? await prepareArm64Guest(cache, log, { flavor, cwd, install: options.install, kernelImage: options.kernelImage, hotplug: options.hotplug, topology: options.topology, accel: options.accel })
      : undefined;
  if (!arm) await ensureRequirements(RUN_REQUIREMENTS, { log, install: options.install });
  const kernel = arm?.kernel ?? (await ensureKernel(flavor, cache, log, options.kernelImage));
  const initrd = arm?.initrd ?? ensureInitramfs(cache, kernel);
  const helper = arm?.helper ?? (await ensureHelper(cache));
  const { accel, why } = arm ? { accel: 'tcg' as const, why: 'aarch64 guest: TCG' } : await chooseAccel(options.accel, cache, log, flavor);
  log.note(`kernel: ${kernel.description}; accel: ${accel} (${why}); IOMMU: ${iommu.summary}`);
  if (iommu.caveat) log.note(iommu.caveat);

  const runDir = mkdtempSync(join(tmpdir(), 'dma-iommu-run-'));
  const share = join(runDir, 'share');
  const socketDir = join(runDir, 'sock');
  mkdirSync(share);
  mkdirSync(socketDir);
  const env = guestEnvironment(options, {
    DMA_IOMMU_VM: '1',
    DMA_IOMMU_VM_KERNEL: flavor,
    DMA_IOMMU_VM_IOMMU: iommu.name,
    DMA_IOMMU_VM_HELPER: helper,
    DMA_IOMMU_VM_EDU: Array.from({ length: devices }, (_, i) => (options.hotplug ? hotplugEduBdf(i) : eduBdf(i))).join(' '),
    ...(options.hotplug ? { DMA_IOMMU_VM_HOTPLUG: '1' } : {}),
    DMA_IOMMU_VM_TOPOLOGY: topology,
  });
  writeRunShare(share, cwd, options.command, env, devices + topologyEduCount(topology), [cache], timeoutSeconds + 60);

  const keep = options.capture ?? true;
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const consoleFile = options.consoleLog ? createWriteStream(options.consoleLog) : undefined;
  try {
    const r = await bootGuest(
      {
        kernel,
        initrd,
        accel,
        memoryMiB: options.memoryMiB ?? 2048,
        cpus: options.cpus ?? 2,
        devices,
        topology,
        iommu: iommu.name,
        hostRoot: arm?.root.dir,
        cwd,
        runShare: share,
        socketDir,
        append: options.kernelArgs,
        hotplug: options.hotplug === true,
      },
      {
        qemu: arm?.qemu ?? which('qemu-system-x86_64')!,
        timeoutMs: timeoutSeconds * 1000,
        signal: options.signal,
        onStdout: (c) => {
          if (keep) out.push(c);
          options.onStdout?.(c);
        },
        onStderr: (c) => {
          if (keep) err.push(c);
          options.onStderr?.(c);
        },
        onConsole: (c) => {
          consoleFile?.write(c);
          options.onConsole?.(c);
        },
        onStage: (s) => log.note(`guest stage: ${s}`),
      },
    );
    const consoleTail = r.console.trimEnd().split('\n').slice(-40).join('\n');
    return {
      exitCode: r.exitCode,
      outcome: r.outcome,
      error: r.message,
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
      consoleTail,
      console: r.console,
      kernel: kernel.description,
      accel,
      accelReason: why,
      bootMs: r.bootMs,
      durationMs: r.durationMs,
    };
  } finally {
    if (consoleFile) await new Promise((r) => consoleFile.end(r));
    rmSync(runDir, { recursive: true, force: true });
  }
}
