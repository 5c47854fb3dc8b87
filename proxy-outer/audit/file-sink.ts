/**
 * Audit lines appended to a file, rotated by size (`audit.log` → `audit.log.1` → … `.N`).
 *
 * Writes are synchronous so that an acknowledgement to the inner is only sent after the line is
 * in the file (the kernel's page cache, or disk with `fsync`). At start the writer reads the last
 * line back, so that records the inner sends again after an outer restart are recognised as
 * already written instead of appearing twice.
 */
import fs from 'node:fs';
import { ProxyError, errnoOf, messageOf } from '../../shared/errors/index.js';

export interface RotatingFileOptions {
  path: string;
  /** Rotate before a write would take the file past this size; 0 disables rotation. */
  maxBytes: number;
  /** Rotated files kept (`.1` … `.keep`). */
  keep: number;
  /** fdatasync after every batch: slower, survives a host crash. */
  fsync?: boolean;
}

export class AuditFileError extends ProxyError {
  constructor(path: string, op: string, err: unknown) {
    super('audit_file', `audit log ${path}: ${op} failed: ${messageOf(err)}`, { path, op, errno: errnoOf(err) });
  }
}

/** The stream position of the last line of a file, if it ends with a complete audit line. */
function lastPosition(path: string): { boot_id: string; seq: number } | undefined {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const size = fs.fstatSync(fd).size;
    const len = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, size - len);
    const lines = buf
      .toString('utf8')
      .split('\n')
      .filter((l) => l.length > 0);
    for (const line of lines.reverse()) {
      try {
        const v = JSON.parse(line) as { boot_id?: unknown; seq?: unknown };
        if (typeof v.boot_id === 'string' && typeof v.seq === 'number') return { boot_id: v.boot_id, seq: v.seq };
      } catch {
        // A torn last line (crash mid-write) is skipped; the inner will send that record again.
      }
    }
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

export class RotatingFile {
  private fd: number;
  private size: number;
  readonly resumeFrom: { boot_id: string; seq: number } | undefined;

  constructor(private readonly opts: RotatingFileOptions) {
    this.resumeFrom = lastPosition(opts.path);
    try {
      this.fd = fs.openSync(opts.path, 'a', 0o640);
      this.size = fs.fstatSync(this.fd).size;
    } catch (err) {
      throw new AuditFileError(opts.path, 'open', err);
    }
  }

  write(text: string): void {
    const data = Buffer.from(text, 'utf8');
    if (this.opts.maxBytes > 0 && this.size > 0 && this.size + data.length > this.opts.maxBytes) this.rotate();
    try {
      fs.writeSync(this.fd, data);
      if (this.opts.fsync) fs.fdatasyncSync(this.fd);
    } catch (err) {
      throw new AuditFileError(this.opts.path, 'write', err);
    }
    this.size += data.length;
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  private rotate(): void {
    const { path, keep } = this.opts;
    try {
      fs.closeSync(this.fd);
      fs.rmSync(`${path}.${keep}`, { force: true });
      for (let i = keep - 1; i >= 1; i--) {
        if (fs.existsSync(`${path}.${i}`)) fs.renameSync(`${path}.${i}`, `${path}.${i + 1}`);
      }
      if (keep > 0) fs.renameSync(path, `${path}.1`);
      else fs.rmSync(path, { force: true });
      this.fd = fs.openSync(path, 'a', 0o640);
      this.size = 0;
    } catch (err) {
      throw new AuditFileError(path, 'rotate', err);
    }
  }
}
