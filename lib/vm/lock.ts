/**
 * A lock file so two concurrent runs do not build or download the same artefact twice.
 * The file holds the owner's pid; a lock whose owner is gone is taken over.
 */
import { mkdirSync, openSync, closeSync, readFileSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { VmLogger } from './log.js';

function ownerAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Wait for and take the lock at `path`; returns a release function. */
export async function acquireLock(path: string, what: string, log: VmLogger): Promise<() => void> {
  mkdirSync(dirname(path), { recursive: true });
  let announced = false;
  for (;;) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        rmSync(path, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let owner = NaN;
    try {
      owner = Number.parseInt(readFileSync(path, 'utf8'), 10);
    } catch {
      continue; // vanished between open and read: try again
    }
    if (!ownerAlive(owner)) {
      log.note(`taking over stale lock ${path} (pid ${owner} is gone)`);
      rmSync(path, { force: true });
      continue;
    }
    if (!announced) {
      log.stage(`waiting for another dma-iommu process (pid ${owner}) that is preparing ${what}`);
      announced = true;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/**
 * Remove work folders `<prefix>*.<pid>` left in `dir` by runs that were killed mid-way (their pid is gone).
 * Call while holding the lock that guards those folders.
 */
export function removeStaleWorkDirs(dir: string, prefix: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /\.(\d+)$/.exec(name);
    if (!name.startsWith(prefix) || !m || ownerAlive(Number(m[1]))) continue;
    rmSync(join(dir, name), { recursive: true, force: true });
  }
}
