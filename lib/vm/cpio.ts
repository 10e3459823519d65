/**
 * A minimal writer for the "newc" cpio format the kernel unpacks as initramfs (no external `cpio` needed,
 * and device nodes can be written without root).
 */

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Buffer; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'chardev'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function header(fields: { ino: number; mode: number; nlink: number; size: number; rmajor?: number; rminor?: number; nameSize: number }): Buffer {
  const hex = (v: number) => v.toString(16).padStart(8, '0');
  const s =
    '070701' +
    hex(fields.ino) +
    hex(fields.mode) +
    hex(0) + // uid
    hex(0) + // gid
    hex(fields.nlink) +
    hex(0) + // mtime: fixed, so the archive is reproducible
    hex(fields.size) +
    hex(0) + // devmajor
    hex(0) + // devminor
    hex(fields.rmajor ?? 0) +
    hex(fields.rminor ?? 0) +
    hex(fields.nameSize) +
    hex(0); // check
  return Buffer.from(s, 'ascii');
}

function record(ino: number, name: string, mode: number, data: Buffer, nlink: number, rmajor = 0, rminor = 0): Buffer[] {
  const nameBuf = Buffer.from(`${name}\0`, 'utf8');
  const h = header({ ino, mode, nlink, size: data.length, rmajor, rminor, nameSize: nameBuf.length });
  const headLen = h.length + nameBuf.length;
  return [h, nameBuf, Buffer.alloc(pad4(headLen)), data, Buffer.alloc(pad4(data.length))];
}

/** Serialize entries (paths relative, without a leading slash) into one newc archive. */
export function writeCpio(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of entries) {
    const path = e.path.replace(/^\/+/, '');
    switch (e.type) {
      case 'dir':
        parts.push(...record(ino++, path, S_IFDIR | (e.mode ?? 0o755), Buffer.alloc(0), 2));
        break;
      case 'file':
        parts.push(...record(ino++, path, S_IFREG | (e.mode ?? 0o644), e.data, 1));
        break;
      case 'symlink':
        parts.push(...record(ino++, path, S_IFLNK | 0o777, Buffer.from(e.target, 'utf8'), 1));
        break;
      case 'chardev':
        parts.push(...record(ino++, path, S_IFCHR | (e.mode ?? 0o600), Buffer.alloc(0), 1, e.major, e.minor));
        break;
    }
  }
  parts.push(...record(0, 'TRAILER!!!', 0, Buffer.alloc(0), 1));
  const body = Buffer.concat(parts);
  // Pad the archive to a 512-byte multiple like GNU cpio does.
  return Buffer.concat([body, Buffer.alloc((512 - (body.length % 512)) % 512)]);
}
