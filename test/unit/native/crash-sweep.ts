/**
 * The addon crash sweep's runner (issue 9: no crash from JavaScript, ever). Each group of cases of
 * crash-sweep-child.mjs runs in its own child process (`node --expose-gc`, in a temporary cwd), so
 * a crash is observed instead of taking the test runner down. Used on the host
 * (test/unit/native/crash-sweep.test.ts: /dev/null stands in for every kind of handle) and inside
 * the VM guest (test/vm/guest/native-crash-sweep.test.ts: real iommufd, container, group and
 * device handles, some with kernel mappings).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SWEEP_GROUPS = ['exports-1', 'exports-2', 'raw-errors', 'wraps', 'memory', 'hot'] as const;
export type SweepGroup = (typeof SWEEP_GROUPS)[number];

/** Outcomes a case may have: it worked, or it threw one of the documented kinds. */
export const ALLOWED_OUTCOMES = new Set(['ok', 'TypeError', 'RangeError', 'KernelError']);

export interface SweepResult {
  readonly group: SweepGroup;
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The case that was running when the child died (the last name it announced). */
  readonly lastCase: string;
  readonly cases: { name: string; outcome: string }[];
  readonly stderrTail: string;
}

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'crash-sweep-child.mjs');

export function runSweepGroup(addonPath: string, group: SweepGroup, mode: 'host' | 'guest', bdfs: readonly string[] = []): SweepResult {
  const cwd = mkdtempSync(join(tmpdir(), 'dma-iommu-sweep-'));
  try {
    const r = spawnSync(process.execPath, ['--expose-gc', CHILD, addonPath, group, mode, ...bdfs], {
      cwd,
      encoding: 'utf8',
      maxBuffer: 256 << 20,
      timeout: mode === 'guest' ? 400_000 : 120_000,
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    const cases = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { name: string; outcome: string });
    const lines = r.stderr.split('\n').filter(Boolean);
    return {
      group,
      status: r.status,
      signal: r.signal,
      lastCase: lines.at(-1) ?? '',
      cases,
      stderrTail: lines.slice(-5).join('\n'),
    };
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

/** Cases whose outcome is not one of ALLOWED_OUTCOMES (e.g. a plain Error from a Node-API status). */
export function unexpected(r: SweepResult): { name: string; outcome: string }[] {
  return r.cases.filter((c) => !ALLOWED_OUTCOMES.has(c.outcome));
}
