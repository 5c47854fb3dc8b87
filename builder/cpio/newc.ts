/**
 * A deterministic cpio "newc" (SVR4, magic 070701) writer: the format the Linux initramfs
 * unpacker reads. Every field that could leak the build host is fixed: inode numbers count up
 * from 1 in emission order, device numbers are 0, mtimes are the caller's (the builder passes a
 * constant), nlink is 2 for directories and 1 otherwise. Callers emit entries in a fixed order
 * (sorted, parents first); the writer never reorders. Hard links are not written as links: the
 * builder resolves them to regular files, so no entry depends on another's position.
 *
 * Layout per entry: a 110-byte ASCII header (13 eight-digit hex fields), the NUL-terminated name
 * padded so header+name is a multiple of 4, the data padded to a multiple of 4. The archive ends
 * with a `TRAILER!!!` entry and is padded to 512 bytes like cpio(1) does.
 */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

const MAGIC = '070701';
const TRAILER = 'TRAILER!!!';
const ARCHIVE_BLOCK = 512;

/** Where the archive's bytes go; the caller owns batching, hashing and I/O. */
export interface ByteSink {
  write(chunk: Buffer): Promise<void> | void;
}

export interface EntryOwner {
  uid: number;
  gid: number;
  mtime: number;
}

export type CpioEntry =
  | ({ kind: 'directory'; name: string; mode: number } & EntryOwner)
  | ({ kind: 'symlink'; name: string; target: string } & EntryOwner)
  | ({ kind: 'file'; name: string; mode: number; size: number; data: Buffer | (() => AsyncIterable<Buffer>) } & EntryOwner);

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio newc field out of range: ${n}`);
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

export class CpioWriter {
  private nextInode = 1;
  private written = 0;

  constructor(private readonly sink: ByteSink) {}

  /** Bytes emitted so far. */
  get size(): number {
    return this.written;
  }

  private async emit(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    this.written += chunk.length;
    await this.sink.write(chunk);
  }

  private header(name: string, mode: number, entry: EntryOwner, nlink: number, fileSize: number, inode: number): Buffer {
    const nameBytes = Buffer.from(name, 'utf8');
    const fields = [inode, mode, entry.uid, entry.gid, nlink, entry.mtime, fileSize, 0, 0, 0, 0, nameBytes.length + 1, 0];
    const head = Buffer.from(MAGIC + fields.map(hex8).join(''), 'latin1');
    const used = head.length + nameBytes.length + 1;
    return Buffer.concat([head, nameBytes, Buffer.alloc(1 + pad4(used))]);
  }

  async add(entry: CpioEntry): Promise<void> {
    if (entry.name === '' || entry.name.startsWith('/') || entry.name === TRAILER)
      throw new Error(`cpio: invalid entry name "${entry.name}"`);
    const inode = this.nextInode++;
    switch (entry.kind) {
      case 'directory':
        await this.emit(this.header(entry.name, S_IFDIR | (entry.mode & 0o7777), entry, 2, 0, inode));
        return;
      case 'symlink': {
        const target = Buffer.from(entry.target, 'utf8');
        await this.emit(this.header(entry.name, S_IFLNK | 0o777, entry, 1, target.length, inode));
        await this.emit(Buffer.concat([target, Buffer.alloc(pad4(target.length))]));
        return;
      }
      case 'file': {
        await this.emit(this.header(entry.name, S_IFREG | (entry.mode & 0o7777), entry, 1, entry.size, inode));
        let seen = 0;
        if (Buffer.isBuffer(entry.data)) {
          seen = entry.data.length;
          await this.emit(entry.data);
        } else {
          for await (const chunk of entry.data()) {
            seen += chunk.length;
            await this.emit(chunk);
          }
        }
        if (seen !== entry.size) throw new Error(`cpio: ${entry.name}: declared ${entry.size} bytes, got ${seen}`);
        await this.emit(Buffer.alloc(pad4(entry.size)));
        return;
      }
    }
  }

  /** Trailer and padding; the archive is complete after this. */
  async finish(): Promise<number> {
    await this.emit(this.header(TRAILER, 0, { uid: 0, gid: 0, mtime: 0 }, 1, 0, 0));
    await this.emit(Buffer.alloc((ARCHIVE_BLOCK - (this.written % ARCHIVE_BLOCK)) % ARCHIVE_BLOCK));
    return this.written;
  }
}
