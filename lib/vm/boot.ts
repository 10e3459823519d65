/**
 * One guest boot: listen on the channel sockets, start QEMU, route COMMAND's stdout/stderr, watch the
 * console for panics, enforce the timeout, and decide how the run ended. QEMU never outlives the harness:
 * it is killed on timeout/abort/exit, and started under `setpriv --pdeathsig SIGKILL` where available.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { channelsOf, qemuArgs, socketPath, type Channel, type GuestMachine } from './qemu-args.js';
import { HotplugHost } from './hotplug.js';
import { QmpClient } from './qmp.js';
import { which } from './exec.js';
import { VM_EXIT } from './errors.js';

export type Outcome =
  /** COMMAND ran and its exit code was reported. */
  | 'exited'
  /** The host-side timeout killed the guest. */
  | 'timeout'
  /** The guest kernel panicked. */
  | 'panic'
  /** The guest init reported an error before COMMAND (e.g. a device did not bind). */
  | 'guest-error'
  /** QEMU failed (bad kernel image, bad option, device abort). */
  | 'qemu-error'
  /** QEMU ended cleanly but no exit code was reported. */
  | 'no-exit-code'
  /** Aborted by the caller (signal). */
  | 'aborted';

export interface BootHandlers {
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  onConsole?: (chunk: Buffer) => void;
  /** Guest init stages ("init", "modules", "mount", "vfio", "run"). */
  onStage?: (stage: string) => void;
}

export interface BootResult {
  outcome: Outcome;
  exitCode: number;
  /** Why the run ended, for anything but 'exited'. */
  message?: string;
  console: string;
  lastStage?: string;
  qemuStderr: string;
  /** Milliseconds from QEMU start to the "run" stage (COMMAND started), if reached. */
  bootMs?: number;
  durationMs: number;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** QEMU processes still running (for tests that check nothing is left behind). */
export function liveQemuCount(): number {
  return live.size;
}

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

const CONSOLE_KEEP = 2 << 20;
const PANIC_RE = /Kernel panic - not syncing[^\n]*/;

export interface BootOptions extends BootHandlers {
  qemu: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

export async function bootGuest(machine: GuestMachine, options: BootOptions): Promise<BootResult> {
  installExitHook();
  const started = Date.now();
  const servers: Server[] = [];
  const sockets = new Map<Channel, Socket>();
  const closed: Promise<void>[] = [];
  let consoleText = '';
  let consolePending = '';
  let qemuStderr = '';
  let exitCode: number | undefined;
  let guestError: string | undefined;
  let panicLine: string | undefined;
  let lastStage: string | undefined;
  let bootMs: number | undefined;
  let timedOut = false;
  let aborted = false;
  let qemuFault: string | undefined;
  let child: ChildProcess | undefined;
  let killTimer: NodeJS.Timeout | undefined;

  const kill = () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    killTimer ??= setTimeout(() => child?.kill('SIGKILL'), 3000);
  };

  let controlPending = '';
  const onControl = (chunk: Buffer) => {
    controlPending += chunk.toString('utf8');
    let nl: number;
    while ((nl = controlPending.indexOf('\n')) >= 0) {
      const line = controlPending.slice(0, nl).trim();
      controlPending = controlPending.slice(nl + 1);
      const [word, ...rest] = line.split(' ');
      const arg = rest.join(' ');
      if (word === 'stage') {
        lastStage = arg;
        if (arg === 'run') bootMs = Date.now() - started;
        options.onStage?.(arg);
      } else if (word === 'exit') exitCode = Number.parseInt(arg, 10);
      else if (word === 'error') guestError ??= arg;
    }
  };
  const onConsoleData = (chunk: Buffer) => {
    options.onConsole?.(chunk);
    const text = chunk.toString('utf8');
    consoleText += text;
    if (consoleText.length > CONSOLE_KEEP) consoleText = consoleText.slice(consoleText.length - CONSOLE_KEEP);
    consolePending = (consolePending + text).slice(-4096);
    if (panicLine === undefined) {
      const m = PANIC_RE.exec(consolePending);
      if (m && consolePending.indexOf('\n', m.index) >= 0) {
        panicLine = m[0].trim();
        // panic=-1 + -no-reboot normally ends QEMU at once; make sure it does.
        setTimeout(kill, 10_000).unref();
      }
    }
  };
  const route: Partial<Record<Channel, (chunk: Buffer) => void>> = {
    console: onConsoleData,
    stdout: (c) => options.onStdout?.(c),
    stderr: (c) => options.onStderr?.(c),
    control: onControl,
  };
  const hotplug = machine.hotplug ? new HotplugHost(machine.devices) : undefined;

  for (const channel of channelsOf(machine)) {
    const server = createServer((socket) => {
      sockets.set(channel, socket);
      if (channel === 'qmp') hotplug?.attachQmp(new QmpClient(socket));
      else if (channel === 'hotplug') hotplug?.attachPort(socket);
      else socket.on('data', route[channel]!);
      closed.push(new Promise((r) => socket.on('close', () => r())));
      socket.on('error', () => {});
    });
    servers.push(server);
    await new Promise<void>((resolveListen, reject) => {
      server.once('error', reject);
      server.listen(socketPath(machine.socketDir, channel), () => resolveListen());
    });
  }

  const args = qemuArgs(machine);
  const setpriv = which('setpriv');
  const [cmd, argv] = setpriv
    ? [setpriv, ['--pdeathsig', 'SIGKILL', '--', options.qemu, ...args]]
    : [options.qemu, args];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
    child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    child.stdout!.on('data', (b: Buffer) => (qemuStderr += b.toString('utf8')));
    child.stderr!.on('data', (b: Buffer) => {
      qemuStderr += b.toString('utf8');
      if (qemuStderr.length > 65536) qemuStderr = qemuStderr.slice(-65536);
      const fault = /KVM internal error[^\n]*/.exec(qemuStderr);
      if (fault && qemuFault === undefined) {
        qemuFault = fault[0];
        kill();
      }
    });
    child.on('error', (e) => {
      qemuStderr += `\n${String(e)}`;
      resolveExit({ code: 127, signal: null });
    });
    child.on('exit', (code, signal) => {
      live.delete(child!);
      resolveExit({ code, signal });
    });
  });

  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, options.timeoutMs);
  const onAbort = () => {
    aborted = true;
    kill();
  };
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort);

  const { code, signal } = await exited;
  clearTimeout(timer);
  if (killTimer) clearTimeout(killTimer);
  options.signal?.removeEventListener('abort', onAbort);
  // Drain what QEMU wrote before it exited; sockets close when QEMU's end closes.
  await Promise.race([Promise.all(closed), new Promise((r) => setTimeout(r, 3000))]);
  for (const s of sockets.values()) s.destroy();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(() => r(undefined)))));

  const tail = (text: string, lines = 25) => text.trimEnd().split('\n').slice(-lines).join('\n');
  const base = { console: consoleText, lastStage, qemuStderr, bootMs, durationMs: Date.now() - started };
  const stageNote = lastStage ? ` (last guest stage: ${lastStage})` : ' (the guest init never started)';
  if (aborted) return { ...base, outcome: 'aborted', exitCode: 130, message: 'aborted' };
  if (timedOut) {
    return { ...base, outcome: 'timeout', exitCode: VM_EXIT.timeout, message: `timed out after ${Math.round(options.timeoutMs / 1000)}s${stageNote}` };
  }
  if (exitCode !== undefined && Number.isInteger(exitCode)) return { ...base, outcome: 'exited', exitCode };
  if (qemuFault !== undefined) {
    return { ...base, outcome: 'qemu-error', exitCode: VM_EXIT.harness, message: `QEMU stopped the guest: ${qemuFault}${stageNote}` };
  }
  if (guestError !== undefined) return { ...base, outcome: 'guest-error', exitCode: VM_EXIT.harness, message: `guest setup failed: ${guestError}` };
  if (panicLine !== undefined) return { ...base, outcome: 'panic', exitCode: VM_EXIT.harness, message: `guest kernel panicked: ${panicLine}${stageNote}` };
  if (code !== 0) {
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const err = tail(qemuStderr, 10);
    return {
      ...base,
      outcome: 'qemu-error',
      exitCode: VM_EXIT.harness,
      message: `QEMU ${how}${lastStage ? stageNote : ' before the guest booted'}${err ? `:\n${err}` : ''}`,
    };
  }
  return { ...base, outcome: 'no-exit-code', exitCode: VM_EXIT.harness, message: `guest ended without reporting an exit code${stageNote}` };
}
