/**
 * Every command the README shows in a shell block, and where a test runs it exactly as written.
 *
 * `readmeCommands` extracts the commands of README.md's fenced shell blocks (one per line; a line's
 * `a && b` are two commands; trailing `# comments` dropped). `README_COMMANDS` says, for each command
 * text, who runs it: the unit suite on the host (`test/unit/readme-commands.test.ts`), the VM suite
 * (`test/vm/host/readme.test.ts`, which boots guests), or nobody, with the reason. A command that is not
 * in the table fails `npm test`: a README edit that adds a command must make it run somewhere (or say
 * why it cannot), and an entry whose command left the README fails too.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { GUEST_NPM_ENV } from '../../lib/vm/run.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface ReadmeCommand {
  /** The command exactly as the README shows it (comment and surrounding `&&` removed). */
  text: string;
  /** 1-based line of README.md. */
  line: number;
}

/** Fence languages that hold shell commands; any other language must be in NOT_SHELL. */
const SHELL = new Set(['sh', 'bash', 'shell', 'console']);
const NOT_SHELL = new Set(['js', 'ts', 'javascript', 'typescript', 'json', 'text']);

/** Split `s` at top-level (unquoted) occurrences found by `at(s, i)` (returns the separator length or 0). */
function scanUnquoted(s: string, at: (s: string, i: number) => number): { parts: string[]; cut: number } {
  const parts: string[] = [];
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      continue;
    }
    const n = at(s, i);
    if (n < 0) return { parts: [...parts, s.slice(start, i)], cut: i };
    if (n > 0) {
      parts.push(s.slice(start, i));
      start = i + n;
      i += n - 1;
    }
  }
  if (quote) throw new Error(`unterminated ${quote} quote in README command: ${s}`);
  return { parts: [...parts, s.slice(start)], cut: s.length };
}

/** One shell line → its commands: the comment (an unquoted `#` at a word start) dropped, split at `&&`. */
export function splitShellLine(line: string): string[] {
  const { cut } = scanUnquoted(line, (s, i) => (s[i] === '#' && (i === 0 || /\s/.test(s[i - 1]!)) ? -1 : 0));
  const code = line.slice(0, cut);
  return scanUnquoted(code, (s, i) => (s.startsWith('&&', i) ? 2 : 0))
    .parts.map((p) => p.trim())
    .filter((p, i, all) => {
      if (!p && all.length > 1) throw new Error(`empty command around && in README line: ${line}`);
      return p.length > 0;
    });
}

/** The commands of every fenced shell block of a README, in order. Throws on a fence language it does not know. */
export function readmeCommands(readme: string): ReadmeCommand[] {
  const lines = readme.split('\n');
  const out: ReadmeCommand[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^\s*(```+|~~~+)\s*([\w+-]*)/.exec(lines[i]!);
    if (!open) continue;
    const [, fence, lang] = open;
    const language = lang!.toLowerCase();
    if (!SHELL.has(language) && !NOT_SHELL.has(language)) {
      throw new Error(
        `README.md:${i + 1}: fenced block with language '${lang}': use sh for commands (they are run by tests) ` +
          `or one of ${[...NOT_SHELL].join(', ')}`,
      );
    }
    let j = i + 1;
    let pending = '';
    let pendingLine = 0;
    for (; j < lines.length && !lines[j]!.trim().startsWith(fence!); j++) {
      if (!SHELL.has(language)) continue;
      let text = lines[j]!;
      if (language === 'console') {
        if (!text.startsWith('$ ')) continue; // output lines of a transcript
        text = text.slice(2);
      }
      if (!pending) pendingLine = j + 1;
      if (text.endsWith('\\')) {
        pending += text.slice(0, -1);
        continue;
      }
      for (const cmd of splitShellLine(pending + text)) out.push({ text: cmd, line: pendingLine });
      pending = '';
    }
    if (j === lines.length) throw new Error(`README.md:${i + 1}: fenced block is never closed`);
    if (pending) throw new Error(`README.md:${pendingLine}: shell line continues past the end of its block`);
    i = j;
  }
  return out;
}

export function readReadme(): string {
  return readFileSync(join(repoRoot, 'README.md'), 'utf8');
}

export interface CommandResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** What a README command promises, checked after it ran (exit status 0 is always required). */
export type Check = (r: CommandResult, text: string) => void;

export type Placement =
  /** Run by `npm test` on the host. */
  | { run: 'host'; check?: Check }
  /**
   * Run by the VM suite (`npm run test:vm`): commands that boot a guest or need the VM's tools.
   * `variants`: further runs with a substitution the README itself states next to the command.
   */
  | { run: 'vm'; check?: Check; variants?: [from: string, to: string][] }
  /** Not run by any test, and why. */
  | { run: 'no'; why: string };

const selftestPassed: Check = (r) => {
  const m = /^PASS: (\d+)\/(\d+) steps passed$/m.exec(r.stdout);
  expect(m, `no PASS line in:\n${r.stdout}`).not.toBeNull();
  expect(m![1]).toBe(m![2]);
};

/** The kernel a `vm run` line asks for (the harness's default is type1). */
export function vmKernelOf(text: string): 'type1' | 'iommufd' {
  return /--kernel[= ]iommufd\b/.test(text.split(' -- ')[0]!) ? 'iommufd' : 'type1';
}

const NATIVE_BACKEND = { type1: 'vfio-type1', iommufd: 'iommufd' } as const;

/**
 * Keyed by the command text exactly as in README.md. Keep it small: every `no` needs a reason that
 * would convince a reviewer the command is exercised elsewhere or cannot be run by a test.
 */
export const README_COMMANDS: Record<string, Placement> = {
  // Quick start
  'npm install': {
    run: 'no',
    why: 'the install step itself: CI installs with `npm ci`, which runs the same prepare (tsc) and install (node-gyp) scripts before any test; running it inside a test would rebuild node_modules and the addon under the running suite',
  },
  'npx dma-iommu selftest': { run: 'host', check: selftestPassed },
  'npx dma-iommu info': {
    run: 'host',
    check: (r) => expect(r.stdout).toMatch(/^backend: /m),
  },
  'npm test': { run: 'no', why: 'the unit suite itself: this test is one of its files (recursion)' },
  // Real kernel in a VM
  [`npx dma-iommu vm run -- node -e "console.log(require('fs').readdirSync('/dev/vfio'))"`]: {
    run: 'vm',
    // The default (type1) kernel: the container node and one group node per edu device (2 by default).
    check: (r) => expect(r.stdout).toMatch(/^\[ '\d+', '\d+', 'vfio' \]\n$/),
  },
  'npx dma-iommu vm run --kernel iommufd -- npx dma-iommu selftest --backend native --device 0000:00:03.0 --json': {
    run: 'vm',
    variants: [['--kernel iommufd', '--kernel type1']],
    check: (r, text) => {
      const report = JSON.parse(r.stdout) as { ok: boolean; backend: string; steps: { name: string; ok: boolean }[] };
      expect(report.ok, r.stdout).toBe(true);
      expect(report.backend).toBe(NATIVE_BACKEND[vmKernelOf(text)]);
      expect(report.steps.find((s) => s.name === 'dma-blocked-fault')?.ok).toBe(true);
    },
  },
  'npx dma-iommu vm run -- npm run selftest -- --backend native --device 0000:00:03.0': {
    run: 'vm',
    check: (r) => {
      expect(r.stdout).toMatch(/^> dma-iommu@[\d.]+ selftest\n/m);
      expect(r.stdout).toMatch(/^dma-iommu selftest on the vfio-type1 backend, device 0000:00:03\.0$/m);
      selftestPassed(r, '');
    },
  },
  'npx dma-iommu vm info': {
    run: 'host',
    check: (r) => {
      expect(r.stdout).toMatch(/^kernel type1 /m);
      expect(r.stdout).toMatch(/^kernel iommufd /m);
    },
  },
  'npx dma-iommu vm prepare': {
    run: 'vm',
    check: (r) => expect(r.stderr).toMatch(/iommufd kernel ready/),
  },
  'npm run test:vm': {
    run: 'no',
    why: 'the VM suite itself: the test that runs the README\'s VM commands is one of its files (recursion)',
  },
};

/** The README's commands with their placement; throws listing every command the table does not know. */
export function placedReadmeCommands(readme: string): (ReadmeCommand & { placement: Placement })[] {
  const cmds = readmeCommands(readme);
  const unknown = cmds.filter((c) => !(c.text in README_COMMANDS));
  if (unknown.length) {
    throw new Error(
      `README.md shows commands that no test runs:\n${unknown.map((c) => `  line ${c.line}: ${c.text}`).join('\n')}\n` +
        'Each must run in a test exactly as written: add it to README_COMMANDS in test/support/readme-commands.ts ' +
        "as { run: 'host' } (npm test), { run: 'vm' } (npm run test:vm), or { run: 'no', why } with the reason.",
    );
  }
  return cmds.map((c) => ({ ...c, placement: README_COMMANDS[c.text]! }));
}

/**
 * Run one README command as a user would, with `sh -c` in the checkout. npm's state (cache, logs, npx
 * links) goes to a fresh temporary folder with the same settings the VM guest uses (GUEST_NPM_ENV): no
 * registry, no lifecycle scripts. Without that, the first `npx dma-iommu` of a checkout would run the
 * package's prepare/install scripts (a tsc and node-gyp rebuild) under the other test files that are
 * loading dist/ and the addon, and the result would depend on this machine's ~/.npm.
 */
export function runReadmeCommand(text: string, options: { timeoutMs: number }): Promise<CommandResult> {
  const npmCache = mkdtempSync(join(tmpdir(), 'dma-iommu-readme-npm-'));
  return new Promise<CommandResult>((resolve, reject) => {
    const child = spawn('sh', ['-c', text], {
      cwd: repoRoot,
      env: { ...process.env, ...GUEST_NPM_ENV, npm_config_cache: npmCache },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: a timeout ends npx, node and QEMU below it too
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        /* already gone */
      }
      reject(new Error(`README command did not finish within ${options.timeoutMs / 1000} s: ${text}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, options.timeoutMs);
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  }).finally(() => rmSync(npmCache, { recursive: true, force: true }));
}

/** Run a placed command and apply its checks: exit status 0, then the command's own promise. */
export async function runAndCheck(text: string, placement: Placement, timeoutMs: number): Promise<void> {
  const r = await runReadmeCommand(text, { timeoutMs });
  expect(r.status, `exit status of: ${text}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(0);
  if (placement.run !== 'no') placement.check?.(r, text);
}
