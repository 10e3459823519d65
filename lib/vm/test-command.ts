/**
 * `dma-iommu vm test` (what `npm run test:vm` runs): make sure both kernels and the helper exist, run the
 * vm-host vitest project on the host (harness behaviour: exit codes, output separation, panic, hang,
 * unbootable kernel), then the vm-guest project inside a guest for each kernel (the kernel facts), and
 * the vm-guest-bridge project in a guest booted with `--topology bridge` (a shared IOMMU group), and
 * the hot-plug files (test/vm/guest/hotplug-*.test.ts) in a guest started with --hotplug (edu devices
 * in hot-pluggable slots, unplugged and plugged by the tests); then, on each further IOMMU model
 * (`--iommu virtio`, `--iommu amd`), the model's kernel facts, conformance and selftest files (MODEL_TESTS).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createLogger, formatDuration } from './log.js';
import { packageRoot } from './paths.js';
import { parseKernelSelection, prepare } from './prepare.js';
import { runInVm } from './run.js';
import { formatFailures, readVitestFailures, type TestFailure } from './vitest-report.js';
import { iommuModel, type IommuModelName } from './iommu-models.js';

function vitestEntry(root: string): string {
  const req = createRequire(join(root, 'package.json'));
  return join(dirname(req.resolve('vitest/package.json')), 'vitest.mjs');
}

/**
 * On the IOMMU models beyond VT-d (virtio, amd), each kernel runs only these guest files (the
 * model's kernel facts held against the simulator's profile, the conformance suite, and the
 * selftest as a user types it), to keep CI's added time small; VT-d runs the whole project.
 */
export const MODEL_TESTS = ['test/vm/guest/iommu-model-native.test.ts', 'test/vm/guest/conformance-native.test.ts', 'test/vm/guest/selftest-native.test.ts'];
/** The models `vm test` adds to VT-d by default. */
export const EXTRA_TEST_MODELS: readonly IommuModelName[] = ['virtio', 'amd', 'smmuv3'];

/** Why a model cannot run on a kernel flavour (undefined: it can). smmuv3 boots Debian's arm64 kernel, which has no IOMMUFD. */
export function modelKernelGap(iommu: IommuModelName, kernel: string): string | undefined {
  return iommu === 'smmuv3' && kernel !== 'type1' ? `not run: the arm64 guest has Debian's arm64 6.12 kernel only (CONFIG_IOMMUFD is not set); see README` : undefined;
}

/** `--iommu MODEL|all` of `vm test` (default all): the models beyond VT-d to run MODEL_TESTS on. */
export function parseTestModels(argv: string[]): readonly IommuModelName[] {
  let chosen: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--iommu') chosen = argv[++i] ?? '';
    else if (a.startsWith('--iommu=')) chosen = a.slice(8);
  }
  if (chosen === undefined || chosen === 'all') return EXTRA_TEST_MODELS;
  const m = iommuModel(chosen).name;
  return m === 'vtd' ? [] : [m];
}

export async function testCommand(argv: string[]): Promise<number> {
  const flavors = parseKernelSelection(argv);
  const models = parseTestModels(argv);
  const runHost = !argv.includes('--no-host');
  const log = createLogger({ verbose: argv.includes('--verbose') });
  const root = packageRoot();
  const vitest = vitestEntry(root);
  const summary: { name: string; ok: boolean; detail: string; failures?: TestFailure[] | undefined }[] = [];
  const began = Date.now();
  // Each vitest run also writes a JSON report here (under the package root: the guest can write there),
  // so the closing summary can name failed tests even when only the tail of a CI log is read.
  const reports = join(root, 'node_modules', '.cache', 'dma-iommu-vm-test');
  mkdirSync(reports, { recursive: true });
  const vitestArgs = (project: string, report: string) => {
    rmSync(report, { force: true });
    return [vitest, 'run', '--project', project, '--reporter=default', '--reporter=json', `--outputFile.json=${report}`];
  };

  let t = Date.now();
  await prepare(flavors, log);
  summary.push({ name: 'prepare (tools, kernels, helper)', ok: true, detail: formatDuration(Date.now() - t) });

  if (runHost) {
    t = Date.now();
    log.stage('== vm-host: harness tests on the host (each boots guests) ==');
    const report = join(reports, 'vm-host.json');
    const code = await new Promise<number>((resolveCode) => {
      const child = spawn(process.execPath, vitestArgs('vm-host', report), { cwd: root, stdio: 'inherit' });
      child.on('close', (c) => resolveCode(c ?? 1));
    });
    summary.push({
      name: 'vm-host',
      ok: code === 0,
      detail: `exit ${code}, ${formatDuration(Date.now() - t)}`,
      failures: code === 0 ? undefined : readVitestFailures(report, root),
    });
  }

  // Each kernel: the vm-guest project in a guest with the default layout, the vm-guest-bridge
  // project in one booted with `--topology bridge` (a shared IOMMU group), and the vm-guest-hotplug
  // project in one booted with `--hotplug` (vitest.config.ts keeps the three apart).
  const guestRuns: { project: string; topology: 'flat' | 'bridge'; hotplug: boolean; iommu: IommuModelName; args: string[]; label: string }[] = [
    { project: 'vm-guest', topology: 'flat', hotplug: false, iommu: 'vtd', args: [], label: '' },
    { project: 'vm-guest-bridge', topology: 'bridge', hotplug: false, iommu: 'vtd', args: [], label: ' (--topology bridge)' },
    { project: 'vm-guest-hotplug', topology: 'flat', hotplug: true, iommu: 'vtd', args: [], label: ' (--hotplug)' },
    ...models.map((iommu) => ({ project: 'vm-guest', topology: 'flat' as const, hotplug: false, iommu, args: MODEL_TESTS, label: ` (--iommu ${iommu})` })),
  ];
  for (const kernel of flavors) {
    for (const run of guestRuns) {
      const gap = modelKernelGap(run.iommu, kernel);
      if (gap) {
        log.stage(`== ${run.project} on the ${kernel} kernel${run.label}: ${gap} ==`);
        continue;
      }
      t = Date.now();
      log.stage(`== ${run.project}: kernel-facts suite inside a guest on the ${kernel} kernel${run.label} ==`);
      const report = join(reports, `${run.project}-${kernel}${run.hotplug ? '-hotplug' : ''}${run.iommu !== 'vtd' ? `-${run.iommu}` : ''}.json`);
      const r = await runInVm({
        command: [process.execPath, ...vitestArgs(run.project, report), ...run.args],
        kernel,
        topology: run.topology,
        hotplug: run.hotplug,
        iommu: run.iommu,
        cwd: root,
        // room for a loaded host: on a 2-core host shared by several jobs the type1 kernel's vm-guest
        // run hit the former 900 s limit under TCG with 5 of its 11 files done
        timeoutSeconds: 2400,
        logger: log,
        capture: false,
        env: {
          ...(process.stdout.isTTY ? { FORCE_COLOR: '1' } : { NO_COLOR: '1' }),
          // the further models on the iommufd kernel: conformance on the iommufd backend only (the
          // type1 kernel's run covers their type1 backend), to keep CI's added time small
          ...(run.iommu !== 'vtd' && kernel === 'iommufd' ? { DMA_IOMMU_VM_CONFORMANCE: 'iommufd' } : {}),
        },
        onStdout: (c) => void process.stdout.write(c),
        onStderr: (c) => void process.stderr.write(c),
      });
      if (r.outcome !== 'exited') {
        process.stderr.write(`dma-iommu vm: ${r.error}\n${r.consoleTail.split('\n').map((l) => `  | ${l}`).join('\n')}\n`);
      }
      summary.push({
        name: `${run.project} on ${kernel}${run.label}`,
        ok: r.exitCode === 0,
        detail: `exit ${r.exitCode}, boot ${r.bootMs !== undefined ? formatDuration(r.bootMs) : 'n/a'}, total ${formatDuration(Date.now() - t)}`,
        failures: r.exitCode === 0 ? undefined : r.outcome === 'exited' ? readVitestFailures(report, root) : [{ name: 'the guest', message: r.error ?? r.outcome }],
      });
    }
  }

  const ok = summary.every((s) => s.ok);
  process.stderr.write(
    `\ndma-iommu vm test summary (${formatDuration(Date.now() - began)}):\n` +
      summary
        .map((s) => {
          const head = `  ${s.ok ? 'PASS' : 'FAIL'}  ${s.name} (${s.detail})`;
          if (s.ok) return head;
          if (s.failures === undefined) return `${head}\n        (no test report was written; see the output above)`;
          if (s.failures.length === 0) return `${head}\n        (no failed test recorded; the run itself failed; see the output above)`;
          return `${head}\n${formatFailures(s.failures)}`;
        })
        .join('\n') +
      '\n',
  );
  return ok ? 0 : 1;
}
