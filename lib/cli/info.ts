/**
 * `dma-iommu info [--json] [--backend NAME]`: which backend and why, the devices, their
 * IOMMU groups, the domain types each may use and the IOVA ranges a domain gets once it is attached.
 */
import { type BackendChoice, selectBackend } from '../backend/select.js';
import { IommuPlatform } from '../core/platform.js';
import { IommuError } from '../errors.js';
import { DomainTypeTranslate } from '../wdk/constants.js';
import { UsageError, backendFlag, hex, parseArgs, table, toJson } from './args.js';

const DOMAIN_TYPE_NAMES = ['Translate', 'PassThrough', 'Unmanaged', 'TranslateS1'];

export function domainTypeNames(mask: number): string[] {
  return DOMAIN_TYPE_NAMES.filter((_n, i) => (mask & (1 << i)) !== 0);
}

/**
 * The contract of `info --json`: stdout always carries exactly one JSON object. `ok: true` with the
 * report (exit 0), or, when no report can be made (the backend named by `--backend` or
 * DMA_IOMMU_BACKEND cannot be had, or probing failed), `ok: false` with `error: { code, message,
 * argument }` (exit 1). Usage errors (unknown option, bad `--backend` name) exit 2 with a line on
 * stderr.
 */
export async function infoCommand(argv: string[]): Promise<number> {
  let flags: Record<string, string | boolean>;
  let backend: BackendChoice | undefined;
  try {
    flags = parseArgs(argv, { json: { value: false }, backend: { value: true } }, 'info');
    backend = backendFlag(flags.backend, 'info');
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`dma-iommu ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const requested = backend ?? (process.env.DMA_IOMMU_BACKEND ? process.env.DMA_IOMMU_BACKEND : 'auto');
  const requestedBy = backend ? 'option' : process.env.DMA_IOMMU_BACKEND ? 'env' : 'auto';
  try {
    return report(flags, backend);
  } catch (e) {
    const err = e instanceof IommuError ? e : new IommuError('STATUS_UNSUCCESSFUL', (e as Error)?.message ?? String(e), { operation: 'info', cause: e });
    if (flags.json) {
      const out = { ok: false, requested, requestedBy, error: { code: err.code, message: err.message, ...(err.argument ? { argument: err.argument } : {}) } };
      process.stdout.write(toJson(out) + '\n');
    }
    process.stderr.write(`dma-iommu info: ${err.message}\n`);
    return 1;
  }
}

function report(flags: Record<string, string | boolean>, backend: BackendChoice | undefined): number {
  const selection = selectBackend(backend ? { backend } : {});
  const platform = new IommuPlatform(selection.backend);
  try {
    const devices = platform.enumerateDevices().map((pdo) => {
      const entry: Record<string, unknown> = { ...pdo.toJSON() };
      delete entry.pdo;
      if (!pdo.usable || pdo.iommuGroup === null) return entry;
      try {
        const dev = platform.CreateDevice(pdo);
        try {
          const mask = platform.QueryAvailableDomainTypes(dev);
          entry.availableDomainTypes = domainTypeNames(mask);
          if (mask & (1 << DomainTypeTranslate)) {
            const dom = platform.CreateDomainEx(DomainTypeTranslate);
            try {
              platform.AttachDeviceEx(dom, dev);
              const g = platform.geometry(dom);
              entry.iovaRanges = g.ranges.map((r) => ({ start: r.start, last: r.last }));
              entry.iovaAlignment = g.alignment;
              entry.pageSizes = g.pageSizes;
              platform.DetachDeviceEx(dev);
            } finally {
              platform.DeleteDomain(dom);
            }
          }
        } finally {
          platform.DeleteDevice(dev);
        }
      } catch (e) {
        entry.error = e instanceof IommuError ? `${e.code}: ${e.message}` : String(e);
      }
      return entry;
    });
    const b = platform.backend;
    const groups = new Map<number, string[]>();
    for (const d of devices) {
      const g = d.iommuGroup as number | null;
      if (g !== null) groups.set(g, [...(groups.get(g) ?? []), d.bdf as string]);
    }
    const report = {
      ok: true,
      backend: b.kind,
      selectedBy: selection.by,
      why: b.reason,
      probe: selection.steps,
      capabilities: b.capabilities,
      memory: b.memoryInfo,
      devices,
      groups: [...groups].map(([group, members]) => ({ group, devices: members })),
    };
    if (flags.json) {
      process.stdout.write(toJson(report) + '\n');
      return 0;
    }
    let out = `backend: ${b.kind} (${selection.by})\nwhy:     ${b.reason}\n`;
    if (selection.steps.length) {
      out += '\nprobe:\n' + table(['check', 'ok', 'detail'], selection.steps.map((s) => [s.check, s.ok ? 'yes' : 'no', s.detail]));
    }
    const caps = b.capabilities;
    out += `\ncapabilities: domain types ${domainTypeNames(caps.domainTypes).join(', ')}; pass-through ${caps.passThrough}; faults ${caps.faultSource}; PASID ${caps.pasid ? 'yes' : 'no'}; arch ${caps.arch}; max areas/domain ${caps.maxAreasPerDomain ?? 'unbounded'}\n`;
    out += `physical addresses: ${b.memoryInfo.physicalIsReal ? 'real' : `synthetic (${b.memoryInfo.why ?? ''})`}\n\ndevices:\n`;
    out += table(
      ['bdf', 'id', 'group', 'driver', 'usable', 'domain types', 'IOVA ranges (after attach)'],
      devices.map((d) => [
        d.bdf as string,
        `${(d.vendorId as number).toString(16).padStart(4, '0')}:${(d.deviceId as number).toString(16).padStart(4, '0')}`,
        d.iommuGroup === null ? '-' : String(d.iommuGroup),
        (d.driver as string | null) ?? '-',
        d.usable ? 'yes' : `no: ${d.whyNotUsable ?? ''}`,
        d.error ? String(d.error) : ((d.availableDomainTypes as string[] | undefined) ?? []).join(','),
        ((d.iovaRanges as { start: bigint; last: bigint }[] | undefined) ?? []).map((r) => `${hex(r.start)}-${hex(r.last)}`).join(' '),
      ]),
    );
    process.stdout.write(out);
    return 0;
  } finally {
    platform.close();
  }
}
