/**
 * `dma-iommu info [--json] [--backend NAME]`: which backend and why, the devices, their
 * IOMMU groups (members, drivers, viability), the domain types each may use, the IOVA ranges and
 * width a domain gets once it is attached, the limits (RLIMIT_MEMLOCK and CAP_IPC_LOCK against what
 * is pinned, type1's dma_entry_limit and DMA_AVAIL), and every problem found with the command that
 * fixes it.
 */
import { groupsOf, unbindCommand, vfioBindCommand } from '../backend/groups.js';
import { DEFAULT_DMA_ENTRY_LIMIT, DMA_ENTRY_LIMIT_PARAM, MEMLOCK_FIX, entryLimitFix } from '../backend/limits.js';
import { memlockApplies, memlockFacts } from '../backend/native/limits.js';
import { DEFAULT_PATHS, dmaEntryLimit } from '../backend/native/sysfs.js';
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
    let dmaAvail: number | null = null;
    const pdos = platform.enumerateDevices();
    const groupFacts = groupsOf(pdos);
    const devices = pdos.map((pdo) => {
      const entry: Record<string, unknown> = { ...pdo.toJSON() };
      delete entry.pdo;
      const gv = pdo.iommuGroup === null ? undefined : groupFacts.get(pdo.iommuGroup);
      if (gv) entry.group = { group: gv.group, viable: gv.viable, members: gv.members };
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
              entry.iovaWidth = g.addressWidth;
              dmaAvail ??= lastDmaAvail(platform.backend.inspect());
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
    const limits = limitFacts(b.kind, dmaAvail);
    const problems = findProblems(devices, groupFacts, limits, selection.steps);
    const report = {
      ok: true,
      backend: b.kind,
      selectedBy: selection.by,
      why: b.reason,
      probe: selection.steps,
      capabilities: b.capabilities,
      memory: b.memoryInfo,
      devices,
      groups: [...groupFacts.values()].map((g) => ({ group: g.group, devices: g.members.map((m) => m.bdf), members: g.members, viable: g.viable, ...(g.problem ? { problem: g.problem } : {}) })),
      limits,
      problems,
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
    out += `\ncapabilities: domain types ${domainTypeNames(caps.domainTypes).join(', ')}; pass-through ${caps.passThrough}; faults ${caps.faultSource}${caps.iommu ? `; IOMMU ${caps.iommu}` : ''}; PASID ${caps.pasid ? 'yes' : 'no'}; arch ${caps.arch}; max areas/domain ${caps.maxAreasPerDomain ?? 'unbounded'}\n`;
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
    out += `\ngroups:\n` + table(['group', 'viable', 'members (driver)'], report.groups.map((g) => [String(g.group), g.viable ? 'yes' : 'NO', g.members.map((m) => `${m.bdf} (${m.driver ?? 'no driver'})`).join(', ')]));
    out += `\nlimits:\n${limitLines(limits).map((l) => `  ${l}\n`).join('')}`;
    out += problems.length === 0 ? '\nproblems: none\n' : `\nproblems:\n${problems.map((p) => `  - ${p.what}: ${p.problem}\n    fix: ${p.fix}\n`).join('')}`;
    process.stdout.write(out);
    return 0;
  } finally {
    platform.close();
  }
}

/** DMA_AVAIL as the type1 backend last read it (VFIO_IOMMU_GET_INFO's capability), if it did. */
function lastDmaAvail(inspection: unknown): number | null {
  const k = (inspection as { kernel?: { lastDmaAvail?: unknown } } | null)?.kernel;
  return typeof k?.lastDmaAvail === 'number' ? k.lastDmaAvail : null;
}

export interface LimitFacts {
  /** RLIMIT_MEMLOCK of this process against what it has locked and pinned (native backends; null on the simulator: nothing is pinned). */
  memlock: null | { limit: bigint | null; hardLimit: bigint | null; capIpcLock: boolean; locked: bigint; pinned: bigint; applies: boolean };
  /** VFIO type1's mapping limit per container (null when the backend is not type1). */
  dmaEntryLimit: null | { limit: number; param: string; default: number; dmaAvail: number | null };
}

export function limitFacts(kind: string, dmaAvail: number | null): LimitFacts {
  const native = kind === 'iommufd' || kind === 'vfio-type1';
  const m = native ? memlockFacts() : null;
  const limit = kind === 'vfio-type1' ? (dmaEntryLimit(DEFAULT_PATHS) ?? DEFAULT_DMA_ENTRY_LIMIT) : null;
  return {
    memlock: m ? { ...m, applies: memlockApplies(m) } : null,
    dmaEntryLimit: limit === null ? null : { limit, param: DMA_ENTRY_LIMIT_PARAM, default: DEFAULT_DMA_ENTRY_LIMIT, dmaAvail },
  };
}

export interface Problem {
  what: string;
  problem: string;
  fix: string;
}

export function findProblems(devices: Record<string, unknown>[], groups: ReturnType<typeof groupsOf>, limits: LimitFacts, steps: readonly { check: string; ok: boolean; detail: string }[] = []): Problem[] {
  const out: Problem[] = [];
  // probe steps that failed with a fix (a node that exists but is not accessible)
  for (const s of steps) {
    const fix = /\(fix: `([^`]+)`\)/.exec(s.detail)?.[1];
    if (!s.ok && fix) out.push({ what: s.check, problem: s.detail.replace(/ \(fix: `[^`]+`\)/, ''), fix });
  }
  for (const g of groups.values()) {
    // a group nobody means to use from user space (no member on vfio-pci) is the host's business
    if (g.viable || !g.members.some((m) => m.driver === 'vfio-pci' || m.driver === 'sim')) continue;
    out.push({
      what: `IOMMU group ${g.group}`,
      problem: `not viable: ${g.blockers.map((m) => `${m.bdf} is bound to the host driver ${m.driver}`).join(', ')}; no device of the group can be used`,
      fix: g.blockers.map((m) => `${unbindCommand(m.bdf)}   (or bind it to vfio-pci: ${vfioBindCommand(m.bdf)})`).join('; '),
    });
  }
  for (const d of devices) {
    const why = d.whyNotUsable as string | undefined;
    // only devices someone would use: bound to vfio-pci (or the simulator's), behind an IOMMU, not blocked by their group (listed above)
    if (d.usable || !why || d.iommuGroup === null || (d.driver !== 'vfio-pci' && d.driver !== 'sim')) continue;
    if ((d.group as { viable?: boolean } | undefined)?.viable === false) continue;
    const fix = /\((?:fix|bind it): `([^`]+)`/.exec(why)?.[1] ?? 'see the reason';
    out.push({ what: String(d.bdf), problem: why, fix });
  }
  const m = limits.memlock;
  if (m?.applies) {
    out.push({
      what: 'RLIMIT_MEMLOCK',
      problem: `${m.limit} bytes and no CAP_IPC_LOCK: DMA memory (mlocked, and every page pinned by a map) beyond it fails with STATUS_INSUFFICIENT_RESOURCES; this process has ${m.locked} bytes locked, ${m.pinned} pinned`,
      fix: MEMLOCK_FIX,
    });
  }
  const e = limits.dmaEntryLimit;
  if (e && e.limit < e.default) {
    out.push({ what: 'dma_entry_limit', problem: `${e.limit} mappings per type1 container (below the default ${e.default})`, fix: `echo ${e.default} | sudo tee ${e.param}` });
  }
  return out;
}

function limitLines(l: LimitFacts): string[] {
  const lines: string[] = [];
  const m = l.memlock;
  if (m) {
    const v = (x: bigint | null) => (x === null ? 'unlimited' : `${x} bytes`);
    lines.push(`RLIMIT_MEMLOCK: soft ${v(m.limit)}, hard ${v(m.hardLimit)}; CAP_IPC_LOCK ${m.capIpcLock ? 'yes (the limit does not apply)' : 'no'}; locked now ${m.locked} bytes, pinned now ${m.pinned} bytes`);
  } else {
    lines.push('RLIMIT_MEMLOCK: not used (simulated memory is not pinned)');
  }
  const e = l.dmaEntryLimit;
  if (e) lines.push(`dma_entry_limit: ${e.limit} mappings per domain (${e.param}; default ${e.default}); DMA_AVAIL ${e.dmaAvail ?? 'unknown (no device attached)'}; when it runs out: ${entryLimitFix(e.limit)}`);
  else lines.push('dma_entry_limit: none for this backend (iommufd and the simulator have no per-domain mapping limit)');
  return lines;
}
