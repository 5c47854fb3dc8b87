/**
 * Reading files as chunk streams: a byte range of a file (an archive member, a blob) and a
 * seekable whole-file source for indexing a tar archive without reading the bodies it skips.
 */
import fs from 'node:fs/promises';

export const CHUNK_BYTES = 1024 * 1024;

export async function* fileRange(file: string, start = 0, length = Infinity): AsyncGenerator<Buffer> {
  const fh = await fs.open(file, 'r');
  try {
    let position = start;
    let left = length;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, left));
      const { bytesRead } = await fh.read(buf, 0, buf.length, position);
      if (bytesRead === 0) return;
      position += bytesRead;
      left -= bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

/** A whole-file chunk source whose position can jump ahead (for `readTar`'s `seek`). */
export function seekableFile(fh: fs.FileHandle): { source: AsyncIterator<Buffer>; seek: (n: number) => void } {
  let position = 0;
  const source: AsyncIterator<Buffer> = {
    async next() {
      const buf = Buffer.allocUnsafe(64 * 1024);
      const { bytesRead } = await fh.read(buf, 0, buf.length, position);
      if (bytesRead === 0) return { done: true, value: undefined };
      position += bytesRead;
      return { done: false, value: buf.subarray(0, bytesRead) };
    },
  };
  return {
    source,
    seek: (n) => {
      position += n;
    },
  };
}
