/**
 * Small child-process helpers for the harness's host-side tools (apt, dpkg, make, gcc, xz).
 */
import { spawn, type SpawnOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { VmError } from './errors.js';

export interface CaptureResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command to completion and capture its output (never throws for a non-zero exit). */
export function capture(command: string, args: string[], options: SpawnOptions = {}): Promise<CaptureResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolvePromise({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
  });
}

/** Run a command, throw a VmError with the tail of its output if it fails. */
export async function mustRun(command: string, args: string[], options: SpawnOptions = {}): Promise<string> {
  const r = await capture(command, args, options);
  if (r.code !== 0) {
    const tail = (r.stderr || r.stdout).trim().split('\n').slice(-15).join('\n');
    throw new VmError(`\`${[command, ...args].join(' ')}\` failed with exit code ${r.code}:\n${tail}`);
  }
  return r.stdout;
}

/**
 * Run a command and hand every output line (stdout and stderr) to `onLine`; resolve with the exit code
 * and the last lines (for error messages).
 */
export function runLines(
  command: string,
  args: string[],
  onLine: (line: string) => void,
  options: SpawnOptions = {},
): Promise<{ code: number; tail: string[] }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const feed = () => {
      let pending = '';
      return (b: Buffer) => {
        pending += b.toString('utf8');
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          tail.push(line);
          if (tail.length > 40) tail.shift();
          onLine(line);
        }
      };
    };
    child.stdout!.on('data', feed());
    child.stderr!.on('data', feed());
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise({ code: code ?? (signal ? 128 : 1), tail }));
  });
}

/** Full path of an executable on PATH (plus the sbin folders apt tools live in), or undefined. */
export function which(command: string, path = process.env.PATH ?? ''): string | undefined {
  const dirs = [...path.split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'].filter(Boolean);
  for (const dir of dirs) {
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}
