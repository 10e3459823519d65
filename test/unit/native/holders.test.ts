/**
 * lib/backend/native/holders.ts: who holds a device node, from a /proc tree. Real char devices
 * (/dev/null, /dev/zero) stand in for the VFIO nodes; a fake /proc with fd symlinks to them stands
 * in for other processes, plus the real /proc for this process's own fds.
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BackendError } from '../../../lib/errors.js';
import { describeHolders, findHolders, heldElsewhere } from '../../../lib/backend/native/holders.js';

let dir: string | null = null;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

function fakeProc(procs: Record<string, { comm: string; fds: string[] }>): string {
  dir = mkdtempSync(join(tmpdir(), 'holders-'));
  for (const [pid, p] of Object.entries(procs)) {
    mkdirSync(join(dir, pid, 'fd'), { recursive: true });
    writeFileSync(join(dir, pid, 'comm'), `${p.comm}\n`);
    p.fds.forEach((target, i) => symlinkSync(target, join(dir!, pid, 'fd', String(i))));
  }
  mkdirSync(join(dir, 'self')); // not a pid: skipped
  return dir;
}

describe('findHolders', () => {
  it('finds the processes with a node open, by device number, each node once per process', () => {
    const proc = fakeProc({
      '101': { comm: 'qemu', fds: ['/dev/null', '/dev/null', '/dev/tty'] },
      '202': { comm: 'node', fds: ['/dev/zero'] },
      '303': { comm: 'bash', fds: ['/etc/hostname'] },
    });
    const h = findHolders(['/dev/null', '/dev/zero'], proc).sort((a, b) => a.pid - b.pid);
    expect(h).toEqual([
      { pid: 101, comm: 'qemu', node: '/dev/null' },
      { pid: 202, comm: 'node', node: '/dev/zero' },
    ]);
    expect(describeHolders(h)).toBe('pid 101 (qemu) has /dev/null open; pid 202 (node) has /dev/zero open');
  });

  it('nodes that are missing or not char devices match nothing; an unreadable /proc gives none', () => {
    const proc = fakeProc({ '7': { comm: 'x', fds: ['/dev/null'] } });
    expect(findHolders(['/nonexistent/vfio0', '/etc/hostname'], proc)).toEqual([]);
    expect(findHolders(['/dev/null'], join(proc, 'missing'))).toEqual([]);
    expect(describeHolders([])).toMatch(/no holder is visible/);
  });

  it('this process is found in the real /proc and named as such', () => {
    const fd = openSync('/dev/zero', 'r');
    try {
      const me = findHolders(['/dev/zero']).filter((h) => h.pid === process.pid);
      expect(me).toHaveLength(1);
      expect(describeHolders(me)).toMatch(new RegExp(`^this process, pid ${process.pid} \\(.+\\) has /dev/zero open$`));
    } finally {
      closeSync(fd);
    }
  });

  it('heldElsewhere is an EBUSY naming the device, the holders and the reason', () => {
    const e = heldElsewhere('0000:00:03.0', 'VFIO_DEVICE_BIND_IOMMUFD', ['/dev/null'], 'why', [{ pid: 9, comm: 'c', node: '/dev/null' }]);
    expect(e).toBeInstanceOf(BackendError);
    expect(e.errno).toBe(-16);
    expect(e.syscall).toBe('VFIO_DEVICE_BIND_IOMMUFD');
    expect(e.message).toBe('VFIO_DEVICE_BIND_IOMMUFD: EBUSY: 0000:00:03.0 is held by another open: pid 9 (c) has /dev/null open (why)');
  });
});
