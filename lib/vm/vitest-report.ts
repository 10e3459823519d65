/**
 * Reads the JSON report vitest writes (`--reporter=json --outputFile=...`) and condenses its failures to a
 * few lines each, so that `dma-iommu vm test` can repeat them in its closing summary. A CI log is often
 * read from its tail only; the summary must say which test failed and why, not just "exit 1".
 */
import { existsSync, readFileSync } from 'node:fs';

export interface TestFailure {
  /** `file > describe > test`, or the file alone when the file itself failed (import error, hook). */
  name: string;
  /** The first lines of the first failure message, ANSI colours removed. */
  message: string;
}

interface JsonAssertion {
  fullName?: string;
  title?: string;
  status?: string;
  failureMessages?: string[];
}

interface JsonFile {
  name?: string;
  status?: string;
  message?: string;
  assertionResults?: JsonAssertion[];
}

const ANSI = /\u001b\[[0-9;]*m/g;

function firstLines(text: string, lines: number): string {
  return text
    .replace(ANSI, '')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(0, lines)
    .join('\n');
}

function relative(file: string, root: string): string {
  return file.startsWith(root + '/') ? file.slice(root.length + 1) : file;
}

/**
 * The failures recorded in a vitest JSON report. Returns undefined when the report is missing or not
 * JSON (vitest never got as far as writing it), so the caller can say that instead of "no failures".
 */
export function readVitestFailures(path: string, root: string, linesPerFailure = 12): TestFailure[] | undefined {
  if (!existsSync(path)) return undefined;
  let report: { testResults?: JsonFile[] };
  try {
    report = JSON.parse(readFileSync(path, 'utf8')) as { testResults?: JsonFile[] };
  } catch {
    return undefined;
  }
  const failures: TestFailure[] = [];
  for (const file of report.testResults ?? []) {
    const fileName = relative(file.name ?? '(unknown file)', root);
    const failed = (file.assertionResults ?? []).filter((a) => a.status === 'failed');
    for (const a of failed) {
      failures.push({
        name: `${fileName} > ${a.fullName ?? a.title ?? '(unnamed test)'}`,
        message: firstLines((a.failureMessages ?? []).join('\n') || '(no message)', linesPerFailure),
      });
    }
    if (failed.length === 0 && file.status === 'failed') {
      failures.push({ name: fileName, message: firstLines(file.message || '(the file failed to run)', linesPerFailure) });
    }
  }
  return failures;
}

/** The failures as indented summary lines. */
export function formatFailures(failures: readonly TestFailure[]): string {
  return failures
    .map((f) => `        ✗ ${f.name}\n${f.message.split('\n').map((l) => `            ${l}`).join('\n')}`)
    .join('\n');
}
