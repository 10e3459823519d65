/**
 * The guest's initramfs: static busybox, the init script (vm/guest/init.sh) and the kernel's modules in load
 * order. Everything per run (COMMAND, environment, cwd) travels over a 9p share instead, so one archive per
 * kernel is cached under initramfs/<hash>.cpio.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { assetPath, cacheDirs } from './paths.js';
import { BUSYBOX } from './deps.js';
import { writeCpio, type CpioEntry } from './cpio.js';
import type { GuestKernel } from './kernel-types.js';

export function initScriptPath(): string {
  return assetPath('guest', 'init.sh');
}

/** Build (or reuse) the initramfs for `kernel`; returns its path. `busyboxPath`: a static busybox of the guest's architecture. */
export function ensureInitramfs(cache: string, kernel: GuestKernel, busyboxPath: string = BUSYBOX): string {
  const init = readFileSync(initScriptPath());
  const busybox = readFileSync(busyboxPath);
  const modules = kernel.modules.map((p) => ({ name: basename(p), data: readFileSync(p) }));
  const h = createHash('sha256');
  h.update('initramfs v1\n');
  for (const part of [init, busybox, ...modules.flatMap((m) => [Buffer.from(m.name), m.data])]) {
    h.update(createHash('sha256').update(part).digest());
  }
  const path = join(cacheDirs.initramfs(cache), `${h.digest('hex').slice(0, 16)}.cpio`);
  if (existsSync(path)) return path;

  const entries: CpioEntry[] = [
    { type: 'dir', path: 'bin' },
    { type: 'dir', path: 'dev' },
    { type: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { type: 'chardev', path: 'dev/null', major: 1, minor: 3, mode: 0o666 },
    { type: 'dir', path: 'proc' },
    { type: 'dir', path: 'sys' },
    { type: 'dir', path: 'newroot' },
    { type: 'dir', path: 'hostview' },
    { type: 'dir', path: 'run-share' },
    { type: 'dir', path: 'modules' },
    { type: 'file', path: 'bin/busybox', data: busybox, mode: 0o755 },
    { type: 'file', path: 'init', data: init, mode: 0o755 },
    ...modules.map((m): CpioEntry => ({ type: 'file', path: `modules/${m.name}`, data: m.data })),
    { type: 'file', path: 'modules/order', data: Buffer.from(modules.map((m) => m.name).join('\n') + '\n') },
  ];
  mkdirSync(cacheDirs.initramfs(cache), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, writeCpio(entries));
  renameSync(tmp, path);
  return path;
}
