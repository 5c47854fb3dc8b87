/**
 * A deterministic tar writer for image layers and the release archive: ustar headers, a PAX
 * record only when a name does not fit, every owner 0:0, every mtime the caller's constant, no
 * user/group names, entries in the order given (callers sort). The same entries always give the
 * same bytes, so layer digests, and the image digest, are reproducible.
 */
import type { ByteSink } from '../cpio/newc.js';

const BLOCK = 512;

export type TarWriteEntry =
  | { kind: 'directory'; path: string; mode: number }
  | { kind: 'file'; path: string; mode: number; size: number; data: Buffer | (() => AsyncIterable<Buffer>) };

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

function header(name: string, type: '0' | '5' | 'x', mode: number, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(mode, 8), 100, 'latin1');
  h.write(octal(0, 8), 108, 'latin1');
  h.write(octal(0, 8), 116, 'latin1');
  h.write(octal(size, 12), 124, 'latin1');
  h.write(octal(mtime, 12), 136, 'latin1');
  h.write(type, 156, 'latin1');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

const pad = (n: number) => Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (`${len}`.length + Buffer.byteLength(body) !== len) len = `${len}`.length + Buffer.byteLength(body);
  return `${len}${body}`;
}

export class TarWriter {
  constructor(
    private readonly sink: ByteSink,
    private readonly mtime: number,
  ) {}

  async add(entry: TarWriteEntry): Promise<void> {
    const name = entry.kind === 'directory' ? `${entry.path}/` : entry.path;
    if (Buffer.byteLength(name) > 100) {
      const pax = Buffer.from(paxRecord('path', name), 'utf8');
      await this.sink.write(header('PaxHeader', 'x', 0o644, pax.length, this.mtime));
      await this.sink.write(Buffer.concat([pax, pad(pax.length)]));
    }
    const shortName = Buffer.from(name).subarray(0, 100).toString('utf8');
    if (entry.kind === 'directory') {
      await this.sink.write(header(shortName, '5', entry.mode, 0, this.mtime));
      return;
    }
    await this.sink.write(header(shortName, '0', entry.mode, entry.size, this.mtime));
    let seen = 0;
    if (Buffer.isBuffer(entry.data)) {
      seen = entry.data.length;
      await this.sink.write(entry.data);
    } else {
      for await (const chunk of entry.data()) {
        seen += chunk.length;
        await this.sink.write(chunk);
      }
    }
    if (seen !== entry.size) throw new Error(`tar: ${entry.path}: declared ${entry.size} bytes, got ${seen}`);
    await this.sink.write(pad(entry.size));
  }

  async finish(): Promise<void> {
    await this.sink.write(Buffer.alloc(2 * BLOCK));
  }
}
