/**
 * Layer flattening in bounded memory. Layers are applied in order onto an in-memory tree of
 * metadata only; file contents go to one append-only spool file and nodes keep (offset, size),
 * so memory grows with the number of paths, never with their bytes. The tree is then walked in
 * byte order of paths for the app ramdisk, reading contents back from the spool. Bytes that are
 * already in a local file, uncompressed (a layer blob of a layout or archive, the runtime's
 * files), are not copied: the node keeps (file, offset, size) and they are read from there.
 *
 * OCI whiteout rules (image-spec layer.md): `.wh.NAME` deletes NAME (and its subtree) as the
 * lower layers left it; `.wh..wh..opq` hides everything lower layers put in its directory;
 * entries of the same layer survive whatever the marker's position; markers are never emitted.
 * A non-directory replacing a directory drops the subtree; a directory over a directory merges.
 *
 * Refused with an error naming the layer and path (`layer_path_unsafe`): `..` components,
 * absolute link targets of hard links, a parent path that goes through a symlink leading outside
 * the root, a hard link to something that is not a regular file already in the tree, whiteouts
 * of nothing-names (`.wh.`, `.wh..`). Devices and FIFOs are skipped: AWS init mounts devtmpfs on
 * /dev, and the initramfs needs no other device node.
 */
import fs from 'node:fs/promises';
import { BuildError } from '../errors.js';
import { comparePaths, type RootfsEntry } from '../ramdisk/app.js';
import type { FileSpan } from './model.js';
import type { TarEntry } from './tar-reader.js';

export type BuilderAddition = { path: string; mode: number } & (
  { kind: 'file'; data: Buffer } | { kind: 'disk-file'; source: string } | { kind: 'directory' } | { kind: 'symlink'; target: string }
);

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';
const SPOOL_READ = 1024 * 1024;
const MAX_SYMLINK_HOPS = 40;

interface NodeBase {
  layer: number;
  uid: number;
  gid: number;
}
/**
 * Where a file's bytes are: appended to the spool, or already in a local file the build reads
 * anyway (an uncompressed layer's blob, a runtime file), which then is read in place, not copied.
 */
type FileBytes = { in: 'spool'; offset: number } | { in: 'file'; path: string; offset: number };

type TreeNode =
  | (NodeBase & { kind: 'directory'; mode: number; children: Map<string, TreeNode> })
  | (NodeBase & { kind: 'file'; mode: number; bytes: FileBytes; size: number })
  | (NodeBase & { kind: 'symlink'; target: string });
type DirectoryNode = TreeNode & { kind: 'directory' };

export interface LayerContext {
  /** How the error names the layer: "layer 2 (sha256:…) of docker://…". */
  name: string;
  index: number;
  /**
   * Where the layer's tar lies, uncompressed, in a local file: file bodies are then read back from
   * there (at the offset the tar reader reports) instead of being copied to the spool.
   */
  tarFile?: FileSpan;
}

/** An entry's own name (its path's last component); only the root has none, and the root is no entry. */
function baseName(parts: readonly string[], raw: string, layer: LayerContext): string {
  const base = parts.at(-1);
  if (base === undefined)
    throw new BuildError('layer_invalid', `${layer.name}: entry "${raw}" names the image root, not a file in it`, {
      layer: layer.name,
      path: raw,
    });
  return base;
}

/** Split and check an entry path: relative, no `..`, no empty name. */
function components(raw: string, layer: LayerContext): string[] {
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  for (const p of parts) {
    if (p === '..')
      throw new BuildError('layer_path_unsafe', `${layer.name}: entry "${raw}" has a ".." component`, { layer: layer.name, path: raw });
    if (p.includes('\0'))
      throw new BuildError('layer_path_unsafe', `${layer.name}: entry "${raw}" contains NUL`, { layer: layer.name, path: raw });
  }
  return parts;
}

export class FlatTree {
  private readonly root: DirectoryNode = {
    kind: 'directory',
    mode: 0o755,
    uid: 0,
    gid: 0,
    layer: -1,
    children: new Map(),
  };
  /** Bytes appended to the spool (`flushedSize` on disk, the rest in `writeBuffer`). */
  private spoolSize = 0;
  private flushedSize = 0;
  private buffered = 0;
  private readonly writeBuffer = Buffer.allocUnsafe(8 * 1024 * 1024);
  private readonly readBuffer = Buffer.allocUnsafe(SPOOL_READ);
  readonly stats = { entries: 0, bytes: 0, skipped: 0 };

  private constructor(
    private readonly spool: fs.FileHandle,
    readonly spoolPath: string,
  ) {}

  static async create(spoolPath: string): Promise<FlatTree> {
    return new FlatTree(await fs.open(spoolPath, 'w+', 0o600), spoolPath);
  }

  async close(): Promise<void> {
    await this.spool.close().catch(() => undefined);
    await fs.rm(this.spoolPath, { force: true });
  }

  /**
   * The directory that holds `parts[..-1]`, following symlinks already in the tree (the way
   * extracting a layer onto the lower ones would), confined to the root: a link that climbs
   * above it is an escape. Missing directories are created (layers may omit parents).
   */
  private parentDir(parts: string[], layer: LayerContext, raw: string, create: true): DirectoryNode;
  private parentDir(parts: string[], layer: LayerContext, raw: string, create: false): DirectoryNode | undefined;
  private parentDir(parts: string[], layer: LayerContext, raw: string, create: boolean): DirectoryNode | undefined {
    let dir = this.root;
    const stack: DirectoryNode[] = [];
    const queue = parts.slice(0, -1);
    let hops = 0;
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      if (name === '.' || name === '') continue;
      if (name === '..') {
        const up = stack.pop();
        if (!up)
          throw new BuildError(
            'layer_path_unsafe',
            `${layer.name}: entry "${raw}" goes through a symlink that leads outside the image root`,
            { layer: layer.name, path: raw },
          );
        dir = up;
        continue;
      }
      let child = dir.children.get(name);
      if (child?.kind === 'symlink') {
        if (++hops > MAX_SYMLINK_HOPS)
          throw new BuildError('layer_path_unsafe', `${layer.name}: entry "${raw}": too many symlinks on its path`, {
            layer: layer.name,
            path: raw,
          });
        const target = child.target.split('/');
        if (child.target.startsWith('/')) {
          dir = this.root;
          stack.length = 0;
        }
        queue.unshift(...target);
        continue;
      }
      if (!child || child.kind !== 'directory') {
        // The only way out without a directory, and only when not asked to create one (the overloads).
        if (!create) return undefined;
        child = { kind: 'directory', mode: 0o755, uid: 0, gid: 0, layer: layer.index, children: new Map() };
        dir.children.set(name, child);
      }
      stack.push(dir);
      dir = child;
    }
    return dir;
  }

  /** Removes what lower layers put at `node` (recursively); keeps this layer's own entries. */
  private pruneLower(parent: Map<string, TreeNode>, name: string, layer: number): void {
    const node = parent.get(name);
    if (!node) return;
    if (node.layer >= layer) {
      if (node.kind === 'directory') for (const child of [...node.children.keys()]) this.pruneLower(node.children, child, layer);
      return;
    }
    parent.delete(name);
  }

  async apply(entries: AsyncIterable<TarEntry>, layer: LayerContext): Promise<void> {
    for await (const entry of entries) {
      const h = entry.header;
      const parts = components(h.path, layer);
      if (parts.length === 0) {
        if (h.type === 'directory') Object.assign(this.root, { mode: h.mode, uid: h.uid, gid: h.gid });
        continue;
      }
      const base = baseName(parts, h.path, layer);
      if (base.startsWith(WHITEOUT)) {
        const dir = this.parentDir(parts, layer, h.path, false);
        if (base === OPAQUE) {
          if (dir) for (const name of [...dir.children.keys()]) this.pruneLower(dir.children, name, layer.index);
          continue;
        }
        const victim = base.slice(WHITEOUT.length);
        if (victim === '' || victim === '.' || victim === '..')
          throw new BuildError('layer_path_unsafe', `${layer.name}: whiteout "${h.path}" names nothing`, {
            layer: layer.name,
            path: h.path,
          });
        if (dir) this.pruneLower(dir.children, victim, layer.index);
        continue;
      }
      if (h.type === 'char' || h.type === 'block' || h.type === 'fifo' || h.type === 'other') {
        this.stats.skipped++;
        continue;
      }
      const dir = this.parentDir(parts, layer, h.path, true);
      const existing = dir.children.get(base);
      const owner = { layer: layer.index, uid: h.uid, gid: h.gid };
      this.stats.entries++;
      switch (h.type) {
        case 'directory':
          if (existing?.kind === 'directory') Object.assign(existing, { mode: h.mode, ...owner });
          else dir.children.set(base, { kind: 'directory', mode: h.mode, ...owner, children: new Map() });
          break;
        case 'symlink':
          dir.children.set(base, { kind: 'symlink', target: h.linkname, ...owner });
          break;
        case 'hardlink': {
          // An absolute link target is refused like a missing one: layers name link targets relative to the root.
          const targetParts = h.linkname.startsWith('/') ? [] : components(h.linkname, layer);
          const targetName = targetParts.at(-1);
          const target =
            targetName === undefined ? undefined : this.parentDir(targetParts, layer, h.linkname, false)?.children.get(targetName);
          if (!target || target.kind !== 'file') {
            throw new BuildError(
              'layer_path_unsafe',
              `${layer.name}: hard link "${h.path}" → "${h.linkname}" does not point at a regular file earlier in the image`,
              { layer: layer.name, path: h.path, target: h.linkname },
            );
          }
          dir.children.set(base, {
            kind: 'file',
            mode: target.mode,
            bytes: target.bytes,
            size: target.size,
            ...owner,
            uid: target.uid,
            gid: target.gid,
          });
          break;
        }
        case 'file': {
          const { tarFile } = layer;
          const bytes: FileBytes = tarFile
            ? { in: 'file', path: tarFile.path, offset: tarFile.offset + entry.dataOffset }
            : { in: 'spool', offset: this.spoolSize };
          let size = 0;
          // In place, the body is still read: the layer's digests cover it, and the tar goes on after it.
          for await (const chunk of entry.body()) {
            if (!tarFile) await this.writeSpool(chunk);
            size += chunk.length;
          }
          this.stats.bytes += size;
          dir.children.set(base, { kind: 'file', mode: h.mode, bytes, size, ...owner });
          break;
        }
      }
    }
  }

  /**
   * Appends to the spool through one large buffer: layer bodies arrive in small pieces, and one
   * write per piece would cost a thread-pool round trip each.
   */
  private async writeSpool(chunk: Buffer): Promise<void> {
    let from = 0;
    while (from < chunk.length) {
      const n = Math.min(chunk.length - from, this.writeBuffer.length - this.buffered);
      chunk.copy(this.writeBuffer, this.buffered, from, from + n);
      this.buffered += n;
      this.spoolSize += n;
      from += n;
      if (this.buffered === this.writeBuffer.length) await this.flushSpool();
    }
  }

  private async flushSpool(): Promise<void> {
    let done = 0;
    while (done < this.buffered) {
      const { bytesWritten } = await this.spool.write(this.writeBuffer, done, this.buffered - done, this.flushedSize + done);
      done += bytesWritten;
    }
    this.flushedSize += this.buffered;
    this.buffered = 0;
  }

  private spooled(offset: number, size: number): () => AsyncIterable<Buffer> {
    const spool = this.spool;
    const buffer = this.readBuffer;
    const flushPending = () => (this.buffered > 0 ? this.flushSpool() : Promise.resolve());
    return async function* () {
      await flushPending();
      for (let done = 0; done < size;) {
        const n = Math.min(SPOOL_READ, size - done);
        const { bytesRead } = await spool.read(buffer, 0, n, offset + done);
        if (bytesRead === 0) throw new Error('spool ended early');
        done += bytesRead;
        // One buffer for every read: the cpio writer copies each chunk before asking for the next,
        // and not allocating a fresh MiB per read keeps the garbage collector out of the way.
        yield buffer.subarray(0, bytesRead);
      }
    };
  }

  /** A file's bytes read where they already are (a layer blob, a runtime file), through the same one buffer. */
  private inPlace(bytes: { path: string; offset: number }, size: number): () => AsyncIterable<Buffer> {
    const buffer = this.readBuffer;
    return async function* () {
      const fh = await fs.open(bytes.path, 'r');
      try {
        for (let done = 0; done < size;) {
          const { bytesRead } = await fh.read(buffer, 0, Math.min(SPOOL_READ, size - done), bytes.offset + done);
          if (bytesRead === 0)
            throw new BuildError('layer_invalid', `${bytes.path} changed during the build: it ended ${size - done} bytes early`, {
              path: bytes.path,
            });
          done += bytesRead;
          yield buffer.subarray(0, bytesRead);
        }
      } finally {
        await fh.close();
      }
    };
  }

  /**
   * The builder's own additions (runtime, config), root-owned, replacing whatever the image has
   * at those paths. Files from memory go to the spool; files on disk are read in place at the end.
   */
  async addEntries(entries: BuilderAddition[]): Promise<void> {
    const layer = { name: 'builder additions', index: Number.MAX_SAFE_INTEGER };
    for (const e of entries) {
      const parts = components(e.path, layer);
      const dir = this.parentDir(parts, layer, e.path, true);
      const base = baseName(parts, e.path, layer);
      const owner = { layer: layer.index, uid: 0, gid: 0 };
      if (e.kind === 'directory')
        dir.children.set(base, {
          kind: 'directory',
          mode: e.mode,
          ...owner,
          children: (dir.children.get(base) as { children?: Map<string, TreeNode> } | undefined)?.children ?? new Map(),
        });
      else if (e.kind === 'symlink') dir.children.set(base, { kind: 'symlink', target: e.target, ...owner });
      else if (e.kind === 'disk-file') {
        const { size } = await fs.stat(e.source);
        dir.children.set(base, { kind: 'file', mode: e.mode, bytes: { in: 'file', path: e.source, offset: 0 }, size, ...owner });
      } else {
        const offset = this.spoolSize;
        await this.writeSpool(e.data);
        dir.children.set(base, { kind: 'file', mode: e.mode, bytes: { in: 'spool', offset }, size: e.data.length, ...owner });
      }
    }
  }

  /** True when `path` exists in the tree (without following a final symlink). */
  has(path: string): boolean {
    const parts = path.split('/').filter(Boolean);
    let node: TreeNode | undefined = this.root;
    for (const p of parts) node = node?.kind === 'directory' ? node.children.get(p) : undefined;
    return node !== undefined;
  }

  /** Every entry, parents before children, siblings in byte order of their full paths. */
  *entries(): Generator<RootfsEntry> {
    const walk = function* (this: FlatTree, dir: DirectoryNode, prefix: string): Generator<RootfsEntry> {
      const children = [...dir.children].map(([name, node]) => ({ full: `${prefix}${name}`, node }));
      // Sorting full paths keeps "a-b" before "a/…" consistently with comparePaths on the whole list.
      children.sort((a, b) => comparePaths(a.full, b.full));
      for (const { full, node } of children) {
        if (node.kind === 'directory') {
          yield { kind: 'directory', path: full, mode: node.mode, uid: node.uid, gid: node.gid };
          yield* walk.call(this, node, `${full}/`);
        } else if (node.kind === 'symlink') {
          yield { kind: 'symlink', path: full, target: node.target, uid: node.uid, gid: node.gid };
        } else {
          yield {
            kind: 'file',
            path: full,
            mode: node.mode,
            uid: node.uid,
            gid: node.gid,
            size: node.size,
            data: node.bytes.in === 'spool' ? this.spooled(node.bytes.offset, node.size) : this.inPlace(node.bytes, node.size),
          };
        }
      }
    };
    yield* walk.call(this, this.root, '');
  }
}
