/**
 * Device ownership across processes for a NAMED simulated machine: the kernel's rule that a device
 * opened by one process is busy for every other (VFIO type1: EBUSY on the group open →
 * STATUS_DEVICE_BUSY), for processes (and backends) that say they simulate the same rig.
 *
 * Identity. A simulated machine is private by default: each `SimulatedBackend` is its own machine
 * (its own RAM, page tables and devices), so independent machines never collide — this project's
 * test files running in parallel processes, or a user's parallel CI workers. A machine gets a name
 * with the `machine` option (`simulator: { machine: 'rig-a' }`) or, when the option is absent, the
 * `DMA_IOMMU_SIM_MACHINE` environment variable; `machine: null` forces a private machine. Every
 * backend of the same user that names the same machine is the same rig as far as device ownership
 * goes: a device open in one is busy (EBUSY) in all others, in this process or another.
 *
 * Mechanism (synchronous, no addon): one lock file per open device,
 * `<tmpdir>/dma-iommu-sim-<uid>/<machine>/<bdf>.lock`, created with O_CREAT|O_EXCL and holding the
 * owner's pid and process start time (/proc/<pid>/stat field 22 on Linux, so a reused pid is not
 * mistaken for the owner). It is removed on closeDevice, on the backend's close() and at process
 * exit; an owner that died without removing it (SIGKILL, a crash) is detected as stale by the next
 * opener (kill(pid, 0) = ESRCH, or another start time) and taken over atomically (rename, then
 * check that what was moved is the stale lock; a live lock moved by a racing opener is put back).
 */
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackendError } from '../../errors.js';
import { describe, ERR } from './util.js';

/** The environment variable naming the simulated machine when the `machine` option is absent. */
export const MACHINE_ENV = 'DMA_IOMMU_SIM_MACHINE';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** A lock file still empty after this long belongs to an opener that died between create and write. */
const EMPTY_STALE_MS = 2000;

/**
 * The machine's name from the option (`undefined`: the environment variable, else private), or
 * null for a private machine. RangeError naming the option or the variable for a bad name.
 */
export function machineName(option: string | null | undefined, env: NodeJS.ProcessEnv = process.env): string | null {
  if (option === null) return null;
  if (option === undefined) {
    const v = env[MACHINE_ENV];
    if (v === undefined || v === '') return null;
    if (!NAME.test(v)) throw new RangeError(`${MACHINE_ENV} must be 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit, got ${describe(v)}`);
    return v;
  }
  if (typeof option !== 'string' || !NAME.test(option)) {
    throw new RangeError(`machine must be null or a name of 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit, got ${describe(option)}`);
  }
  return option;
}

/** The directory holding the lock files of every named machine of this user. */
export function lockRoot(): string {
  const uid = typeof process.getuid === 'function' ? String(process.getuid()) : 'user';
  return join(tmpdir(), `dma-iommu-sim-${uid}`);
}

/** The start time of process `pid` in clock ticks since boot (Linux), or '' where unknown. */
function startTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // the command name (field 2) is in parentheses and may contain spaces: split after its end
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

interface Owner {
  readonly pid: number;
  readonly start: string;
}

const SELF: Owner = { pid: process.pid, start: startTime(process.pid) };

/** Lock files this process holds (removed at exit). */
const held = new Set<string>();
let exitHook = false;

function readOwner(path: string): Owner | 'empty' | null {
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  const m = /^(\d+) (\d*)\n$/.exec(text);
  if (m === null) return 'empty';
  return { pid: Number(m[1]), start: m[2] };
}

function alive(o: Owner): boolean {
  try {
    process.kill(o.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    // EPERM: it exists (another user's process cannot hold a lock in this user's directory, but be safe)
  }
  if (o.start === '') return true;
  const now = startTime(o.pid);
  return now === '' || now === o.start;
}

function fsError(e: unknown, syscall: string, path: string): BackendError {
  const err = e as NodeJS.ErrnoException;
  const errno = typeof err.errno === 'number' ? -Math.abs(err.errno) : ERR.EIO;
  return new BackendError(errno, syscall, `simulated machine device lock ${path}: ${err.message}`);
}

/** The device locks of one named machine. */
export class DeviceLocks {
  readonly machine: string;
  readonly #dir: string;
  readonly #mine = new Set<string>();
  #seq = 0;

  constructor(machine: string, root: string = lockRoot()) {
    this.machine = machine;
    this.#dir = join(root, machine);
  }

  #path(bdf: string): string {
    return join(this.#dir, `${bdf.replace(/:/g, '_')}.lock`);
  }

  /** Take `bdf`'s lock: null when taken, else the pid of the live process holding it (0 when unknown). */
  acquire(bdf: string): number | null {
    const path = this.#path(bdf);
    try {
      mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw fsError(e, 'mkdir', this.#dir);
    }
    for (let attempt = 0; attempt < 8; attempt++) {
      let fd: number;
      try {
        fd = openSync(path, 'wx', 0o600);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(e, 'open', path);
        const owner = readOwner(path);
        if (owner === null) continue; // released meanwhile
        if (owner === 'empty') {
          // its creator is between create and write, or died there
          if (!this.#olderThan(path, EMPTY_STALE_MS)) return 0;
        } else if (alive(owner)) {
          return owner.pid;
        }
        this.#takeOver(path, owner);
        continue;
      }
      try {
        writeSync(fd, `${SELF.pid} ${SELF.start}\n`);
      } finally {
        closeSync(fd);
      }
      this.#mine.add(path);
      held.add(path);
      if (!exitHook) {
        exitHook = true;
        process.once('exit', releaseHeld);
      }
      return null;
    }
    return 0; // contended throughout: busy
  }

  /** Give `bdf`'s lock back (no-op when this backend does not hold it). */
  release(bdf: string): void {
    const path = this.#path(bdf);
    if (!this.#mine.delete(path)) return;
    held.delete(path);
    try {
      unlinkSync(path);
    } catch {
      /* gone already */
    }
  }

  /** Give every lock of this backend back. */
  releaseAll(): void {
    for (const path of this.#mine) {
      held.delete(path);
      try {
        unlinkSync(path);
      } catch {
        /* gone already */
      }
    }
    this.#mine.clear();
  }

  #olderThan(path: string, ms: number): boolean {
    try {
      return Date.now() - statSync(path).mtimeMs > ms;
    } catch {
      return false;
    }
  }

  /** Remove a stale lock without removing a live one that replaced it meanwhile. */
  #takeOver(path: string, stale: Owner | 'empty'): void {
    const grave = `${path}.stale-${SELF.pid}-${++this.#seq}`;
    try {
      renameSync(path, grave);
    } catch {
      return; // someone else moved it first
    }
    const moved = readOwner(grave);
    const same = stale === 'empty' ? moved === 'empty' : moved !== null && moved !== 'empty' && moved.pid === stale.pid && moved.start === stale.start;
    if (!same) {
      // a racing opener's fresh lock: put it back (fails only if yet another lock exists there)
      try {
        linkSync(grave, path);
      } catch {
        /* the path is taken again: that lock wins */
      }
    }
    try {
      unlinkSync(grave);
    } catch {
      /* gone */
    }
  }
}

function releaseHeld(): void {
  for (const path of held) {
    try {
      unlinkSync(path);
    } catch {
      /* gone already */
    }
  }
  held.clear();
}
