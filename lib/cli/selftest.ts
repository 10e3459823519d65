/**
 * `dma-iommu selftest [--backend NAME] [--device BDF] [--fault-timeout MS] [--json]`: the whole lifecycle
 * through the public interface. Exit code 0 only when every step passed.
 */
import type { BackendChoice } from '../backend/select.js';
import { runSelftest } from '../selftest.js';
import { UsageError, backendFlag, millisecondsFlag, parseArgs, table, toJson } from './args.js';

export async function selftestCommand(argv: string[]): Promise<number> {
  let flags: Record<string, string | boolean>;
  let backend: BackendChoice | undefined;
  let faultTimeoutMs: number | undefined;
  try {
    flags = parseArgs(
      argv,
      {
        json: { value: false },
        backend: { value: true },
        device: { value: true },
        'fault-timeout': { value: true },
      },
      'selftest',
    );
    if (flags.device && !/^([0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i.test(flags.device as string)) {
      throw new UsageError(`selftest: --device '${String(flags.device)}' is not a PCI address like 0000:00:03.0`);
    }
    backend = backendFlag(flags.backend, 'selftest');
    faultTimeoutMs = millisecondsFlag(flags['fault-timeout'], 'fault-timeout', 'selftest');
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`dma-iommu ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const report = await runSelftest({
    ...(backend ? { backend } : {}),
    ...(flags.device ? { device: flags.device as string } : {}),
    ...(faultTimeoutMs !== undefined ? { faultTimeoutMs } : {}),
  });
  if (flags.json) {
    process.stdout.write(toJson(report) + '\n');
  } else {
    process.stdout.write(`dma-iommu selftest on the ${report.backend} backend${report.device ? `, device ${report.device}` : ''}\n(${report.reason})\n\n`);
    process.stdout.write(table(['step', 'result', 'ms', 'detail'], report.steps.map((s) => [s.name, s.ok ? 'ok' : 'FAIL', String(s.ms), s.detail])));
    process.stdout.write(`\n${report.ok ? 'PASS' : 'FAIL'}: ${report.steps.filter((s) => s.ok).length}/${report.steps.length} steps passed\n`);
  }
  return report.ok ? 0 : 1;
}
