/**
 * Reading an image's layers into the flattened tree, one streamed pass per layer:
 * stored bytes → SHA-256 (the manifest digest) → decompress (gzip, zstd or none, by magic
 * number) → SHA-256 (the config's diff_id) → tar entries → FlatTree. Both digests are checked
 * when the layer ends; a mismatch or a truncated stream fails the build naming the layer.
 */
import crypto from 'node:crypto';
import { pipeline, Readable } from 'node:stream';
import zlib from 'node:zlib';
import { BuildError } from '../errors.js';
import type { FlatTree } from './flatten.js';
import type { ImageLayer, ResolvedImage } from './model.js';
import { readTar, TarFormatError } from './tar-reader.js';

export interface LayerProgress {
  (event: { layer: number; layers: number; bytes: number; totalBytes: number | undefined }): void;
}

async function* counted(source: AsyncIterable<Buffer>, hash: crypto.Hash, onBytes: (n: number) => void): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    hash.update(chunk);
    onBytes(chunk.length);
    yield chunk;
  }
}

type Compression = 'gzip' | 'zstd' | 'none';

function compressionOf(head: Buffer): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/** Peek at the first chunk to pick the decompressor, then stream everything through it. */
async function* decompressed(source: AsyncIterable<Buffer>, layer: ImageLayer): AsyncGenerator<Buffer> {
  const it = source[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) return;
  // Iterated by hand, so closed by hand: a build that stops mid-layer must reach the source.
  const rest = (async function* () {
    try {
      yield first.value;
      for (let n = await it.next(); !n.done; n = await it.next()) yield n.value;
    } finally {
      await it.return?.();
    }
  })();
  const kind = first.value.length >= 4 ? compressionOf(first.value) : 'none';
  if (kind === 'none') {
    yield* rest;
    return;
  }
  const zstd = (zlib as unknown as { createZstdDecompress?: () => NodeJS.ReadWriteStream }).createZstdDecompress;
  let inflate: NodeJS.ReadWriteStream;
  if (kind === 'gzip') inflate = zlib.createGunzip();
  else if (zstd) inflate = zstd();
  else
    throw new BuildError('layer_invalid', `${layer.name}: zstd-compressed layers need Node.js ≥ 22.15 (this is ${process.version})`, {
      layer: layer.name,
    });
  // pipeline, not pipe: a source that fails (a registry download cut off) must fail `out` too;
  // with pipe its error is an unhandled 'error' event that kills the process, spool left behind.
  // The callback has nothing to do: the error reaches the loop below through `out`.
  const out = pipeline(Readable.from(rest), inflate, () => undefined) as unknown as Readable;
  try {
    for await (const chunk of out) yield chunk as Buffer;
  } catch (err) {
    if (err instanceof BuildError) throw err;
    throw new BuildError(
      'archive_truncated',
      `${layer.name}: ${kind} stream is corrupt or truncated (${(err as Error).message})`,
      { layer: layer.name },
      { cause: err },
    );
  }
}

function checkLayerDigest(hash: crypto.Hash, expected: string | undefined, what: string, layer: ImageLayer): void {
  if (expected === undefined) return;
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== expected) {
    throw new BuildError('digest_mismatch', `${layer.name}: ${what} is ${actual}, expected ${expected}`, {
      layer: layer.name,
      expected,
      actual,
    });
  }
}

export async function applyLayers(image: ResolvedImage, tree: FlatTree, progress?: LayerProgress): Promise<void> {
  // A total only when every layer says its size (a progress bar over part of the work would lie).
  const sizes = image.layers.map((l) => l.size).filter((size): size is number => size !== undefined);
  const totalBytes = sizes.length === image.layers.length ? sizes.reduce((a, size) => a + size, 0) : undefined;
  let bytes = 0;
  for (const layer of image.layers) {
    const stored = crypto.createHash('sha256');
    const plain = crypto.createHash('sha256');
    const onBytes = (n: number) => {
      bytes += n;
      progress?.({ layer: layer.index + 1, layers: image.layers.length, bytes, totalBytes });
    };
    // An uncompressed layer's blob digest is its diff_id: hash those bytes once, not twice.
    const sameBytes = layer.digest !== undefined && layer.digest === layer.diffId;
    const storedStream = counted(layer.open(), stored, onBytes);
    const tarStream = sameBytes ? storedStream : counted(decompressed(storedStream, layer), plain, () => undefined);
    try {
      // An uncompressed layer in a local file: file bodies are read back from it, not spooled.
      const tarFile = sameBytes ? layer.file : undefined;
      await tree.apply(readTar(tarStream), { name: layer.name, index: layer.index, ...(tarFile ? { tarFile } : {}) });
      for await (const _ of tarStream) {
        /* trailing blocks: part of the digest */
      }
    } catch (err) {
      // A layer abandoned mid-stream (a refused entry, a corrupt archive) still holds its source:
      // a file handle or a registry response. Generators release only when returned, and Node ≥ 26
      // kills the process for a FileHandle left to the garbage collector.
      await tarStream.return(undefined).catch(() => undefined);
      if (err instanceof TarFormatError)
        throw new BuildError('archive_truncated', `${layer.name}: ${err.message}`, { layer: layer.name }, { cause: err });
      throw err;
    }
    checkLayerDigest(stored, layer.digest, 'blob digest', layer);
    if (!sameBytes) checkLayerDigest(plain, layer.diffId, 'uncompressed digest (diff_id)', layer);
  }
}
