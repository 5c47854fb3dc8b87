/**
 * A streaming tar reader for image layers and archives: ustar and GNU headers, GNU long names
 * (`L`/`K`) and PAX extended headers (`x` path/linkpath/size/uid/gid; `g` ignored). Each entry's
 * body must be consumed (`body()`) or is skipped before the next header is read, so memory stays
 * at one chunk. Malformed input (bad checksum, non-octal numbers, truncation) throws with the
 * byte offset, never yields garbage.
 */
import { ByteReader, TruncatedError } from './byte-reader.js';

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'directory' | 'char' | 'block' | 'fifo' | 'other';

export interface TarHeader {
  path: string;
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  linkname: string;
}

export interface TarEntry {
  header: TarHeader;
  /** Where the body starts in the stream (archive members are read back from here). */
  dataOffset: number;
  /** The entry's bytes; call at most once, before asking for the next entry. */
  body(): AsyncGenerator<Buffer>;
}

export class TarFormatError extends Error {}

const BLOCK = 512;

function cstring(b: Buffer, start: number, length: number): string {
  const field = b.subarray(start, start + length);
  const nul = field.indexOf(0);
  return field.subarray(0, nul === -1 ? field.length : nul).toString('utf8');
}

function numeric(b: Buffer, start: number, length: number, what: string, at: number): number {
  const field = b.subarray(start, start + length);
  const first = field[0];
  if (first === undefined) throw new TarFormatError(`tar header at byte ${at}: no ${what} field (the header is cut short)`);
  if (first & 0x80) {
    // GNU base-256 for values that do not fit in octal.
    let n = 0;
    for (const byte of field.subarray(1)) n = n * 256 + byte;
    return n;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`tar header at byte ${at}: ${what} is not octal (${JSON.stringify(text)})`);
  return parseInt(text, 8);
}

function typeOf(flag: string): TarEntryType {
  switch (flag) {
    case '0':
    case '\0':
    case '7':
      return 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '3':
      return 'char';
    case '4':
      return 'block';
    case '5':
      return 'directory';
    case '6':
      return 'fifo';
    default:
      return 'other';
  }
}

function parsePax(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let rest = Buffer.from(text, 'utf8');
  while (rest.length > 0) {
    const space = rest.indexOf(0x20);
    const len = Number(rest.subarray(0, space).toString('latin1'));
    if (space < 0 || !Number.isInteger(len) || len <= space || len > rest.length) throw new TarFormatError('malformed PAX extended header');
    const record = rest.subarray(space + 1, len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    rest = rest.subarray(len);
  }
  return out;
}

const MAX_META_BYTES = 1024 * 1024;

export async function* readTar(
  chunks: AsyncIterable<Buffer> | { source: AsyncIterator<Buffer>; seek: (n: number) => void },
): AsyncGenerator<TarEntry> {
  const reader =
    Symbol.asyncIterator in chunks ? new ByteReader(chunks[Symbol.asyncIterator]()) : new ByteReader(chunks.source, chunks.seek);
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  try {
    while (true) {
      const at = reader.consumed;
      const block = await reader.read(BLOCK);
      if (block === null) return; // no end-of-archive blocks; tolerated like GNU tar does
      if (block.every((x) => x === 0)) return;
      const stored = numeric(block, 148, 8, 'checksum', at);
      let sum = 0;
      for (const [i, byte] of block.entries()) sum += i >= 148 && i < 156 ? 0x20 : byte;
      if (sum !== stored) throw new TarFormatError(`tar header at byte ${at}: checksum mismatch (not a tar archive, or corrupt)`);
      // One latin1 character: the type flag ('\0' for an old-style regular file).
      const flag = block.toString('latin1', 156, 157);
      let size = numeric(block, 124, 12, 'size', at);
      const padded = Math.ceil(size / BLOCK) * BLOCK;
      if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
        if (size > MAX_META_BYTES) throw new TarFormatError(`tar header at byte ${at}: ${size}-byte extended header is implausible`);
        const data = size === 0 ? Buffer.alloc(0) : await reader.read(padded);
        if (data === null) throw new TruncatedError(reader.consumed);
        const text = data.subarray(0, size).toString('utf8');
        if (flag === 'x') pax = { ...pax, ...parsePax(text) };
        else if (flag === 'L') longName = text.replace(/\0+$/, '');
        else if (flag === 'K') longLink = text.replace(/\0+$/, '');
        continue;
      }
      const magic = block.subarray(257, 263).toString('latin1');
      const prefix = magic.startsWith('ustar') && magic !== 'ustar ' ? cstring(block, 345, 155) : '';
      let path = longName ?? (prefix ? `${prefix}/${cstring(block, 0, 100)}` : cstring(block, 0, 100));
      let linkname = longLink ?? cstring(block, 157, 100);
      if (pax.path !== undefined) path = pax.path;
      if (pax.linkpath !== undefined) linkname = pax.linkpath;
      if (pax.size !== undefined) size = Number(pax.size);
      const header: TarHeader = {
        path,
        type: typeOf(flag),
        mode: numeric(block, 100, 8, 'mode', at) & 0o7777,
        uid: pax.uid !== undefined ? Number(pax.uid) : numeric(block, 108, 8, 'uid', at),
        gid: pax.gid !== undefined ? Number(pax.gid) : numeric(block, 116, 8, 'gid', at),
        size: bodySize(flag, size),
        linkname,
      };
      pax = {};
      longName = undefined;
      longLink = undefined;
      const bodyBytes = header.size;
      let taken = false;
      const entry: TarEntry = {
        header,
        dataOffset: reader.consumed,
        body: () => {
          if (taken) throw new Error('tar entry body read twice');
          taken = true;
          return reader.stream(bodyBytes);
        },
      };
      const before = reader.consumed;
      yield entry;
      // Skip whatever the consumer did not read, then the padding.
      const read = reader.consumed - before;
      const bodyPadded = Math.ceil(bodyBytes / BLOCK) * BLOCK;
      await reader.skip(bodyPadded - read);
    }
  } catch (err) {
    if (err instanceof TruncatedError) throw new TarFormatError(`tar stream truncated after ${err.at} bytes`);
    throw err;
  }
}

/** Links, directories and devices carry no body even when a (broken) header says otherwise. */
function bodySize(flag: string, size: number): number {
  return flag === '1' || flag === '2' || flag === '5' || flag === '3' || flag === '4' || flag === '6' ? 0 : size;
}
