/**
 * The release image: an OCI image that runs the whole thing on a parent instance, written as an
 * OCI layout directory (`<out>/release`) and the same as an oci-archive (`<out>/release.tar`).
 *   layer 1  /opt/enclaver-proxy: node, its loader and libraries, the proxy (the outer side)
 *   layer 2  /enclave/application.eif and the outer side's config: /enclave/enclaver.yaml (built
 *            from a manifest) or /enclave/proxy.yaml (built from a `build:` section)
 *   entrypoint  `enclaver-proxy run` or `enclaver-proxy --config /enclave/proxy.yaml`: starts the
 *            enclave, runs the outer
 * Layers are uncompressed tars written by our deterministic writer: gzip output depends on the
 * zlib build (Node bundles Chromium's), so compressed digests would differ between machines;
 * uncompressed layers make the image digest a function of the inputs only. The config has no
 * history and its `created` is SOURCE_DATE_EPOCH.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Arch } from '../blobs.js';
import type { ByteSink } from '../cpio/newc.js';
import { fileRange } from '../image/file-chunks.js';
import { ociArch } from '../image/model.js';
import { EIF_NAME, RELEASE_DIR, type ReleaseOuter } from '../plan.js';
import { RUNTIME_ROOT, type RuntimeBundle } from '../runtime-bundle.js';
import { TarWriter, type TarWriteEntry } from './tar-writer.js';

const LAYER_MEDIA_TYPE = 'application/vnd.oci.image.layer.v1.tar';
const WRITE_BUFFER = 1024 * 1024;

/** Writes to a file while hashing (SHA-256) and counting, in large writes. */
class HashingFileSink implements ByteSink {
  private readonly hash = crypto.createHash('sha256');
  private readonly buffer = Buffer.allocUnsafe(WRITE_BUFFER);
  private used = 0;
  size = 0;

  private constructor(private readonly file: fs.FileHandle) {}

  /**
   * Creates `file`, lets `fill` write a tar into it and closes it whatever happens: a write that
   * fails must not leave the handle to the garbage collector (Node ≥ 26 ends the process for it).
   */
  static async writeTar(file: string, mtime: number, fill: (tar: TarWriter) => Promise<void>): Promise<{ digest: string; size: number }> {
    const sink = new HashingFileSink(await fs.open(file, 'w', 0o644));
    try {
      const tar = new TarWriter(sink, mtime);
      await fill(tar);
      await tar.finish();
      await sink.flush();
    } finally {
      await sink.file.close();
    }
    return { digest: `sha256:${sink.hash.digest('hex')}`, size: sink.size };
  }

  async write(chunk: Buffer): Promise<void> {
    this.hash.update(chunk);
    this.size += chunk.length;
    if (chunk.length >= WRITE_BUFFER) {
      await this.flush();
      await this.file.write(chunk);
      return;
    }
    if (this.used + chunk.length > WRITE_BUFFER) await this.flush();
    chunk.copy(this.buffer, this.used);
    this.used += chunk.length;
  }

  private async flush(): Promise<void> {
    if (this.used === 0) return;
    await this.file.write(this.buffer.subarray(0, this.used));
    this.used = 0;
  }
}

export interface ReleaseInputs {
  outDir: string;
  eifPath: string;
  /** The outer side's config (put under /enclave) and the entrypoint's arguments. */
  outer: ReleaseOuter;
  bundle: RuntimeBundle;
  arch: Arch;
  /** The build's `target` (REPO:TAG); the tag names the image in the layout. */
  target: string;
  sourceDateEpoch: number;
}

export interface ReleaseResult {
  layoutDir: string;
  archivePath: string;
  ref: string;
  manifestDigest: string;
}

/** Parent directories first, then files; byte order of paths. */
function withParents(files: TarWriteEntry[]): TarWriteEntry[] {
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = f.path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  const all: TarWriteEntry[] = [...[...dirs].map((d) => ({ kind: 'directory' as const, path: d, mode: 0o755 })), ...files];
  return all.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

async function diskFile(tarPath: string, source: string, mode: number): Promise<TarWriteEntry> {
  const { size } = await fs.stat(source);
  return { kind: 'file', path: tarPath, mode, size, data: () => fileRange(source) };
}

async function writeLayer(blobsDir: string, entries: TarWriteEntry[], mtime: number): Promise<{ digest: string; size: number }> {
  const tmp = path.join(blobsDir, `.layer.${process.pid}.tmp`);
  const result = await HashingFileSink.writeTar(tmp, mtime, async (tar) => {
    for (const e of withParents(entries)) await tar.add(e);
  });
  await fs.rename(tmp, path.join(blobsDir, result.digest.slice('sha256:'.length)));
  return result;
}

async function writeBlob(blobsDir: string, data: Buffer): Promise<{ digest: string; size: number }> {
  const hex = crypto.createHash('sha256').update(data).digest('hex');
  await fs.writeFile(path.join(blobsDir, hex), data);
  return { digest: `sha256:${hex}`, size: data.length };
}

export function releaseEntrypoint(bundle: RuntimeBundle, args: readonly string[]): string[] {
  return [
    bundle.loader,
    '--library-path',
    `/${RUNTIME_ROOT}/lib`,
    `/${RUNTIME_ROOT}/bin/node`,
    `/${RUNTIME_ROOT}/app/dist/bin/enclaver-proxy.js`,
    ...args,
  ];
}

export function targetTag(target: string): string {
  const afterSlash = target.slice(target.lastIndexOf('/') + 1);
  const colon = afterSlash.indexOf(':');
  return colon >= 0 ? afterSlash.slice(colon + 1) : 'latest';
}

async function replaceDir(tmp: string, final: string): Promise<void> {
  const old = `${final}.old.${process.pid}`;
  await fs.rm(old, { recursive: true, force: true });
  const existed = await fs.rename(final, old).then(
    () => true,
    () => false,
  );
  await fs.rename(tmp, final);
  if (existed) await fs.rm(old, { recursive: true, force: true });
}

export async function writeReleaseImage(inputs: ReleaseInputs): Promise<ReleaseResult> {
  const layoutDir = path.join(inputs.outDir, 'release');
  const tmpDir = path.join(inputs.outDir, `.release.${process.pid}.tmp`);
  const archivePath = path.join(inputs.outDir, 'release.tar');
  const mtime = inputs.sourceDateEpoch;
  await fs.rm(tmpDir, { recursive: true, force: true });
  const blobs = path.join(tmpDir, 'blobs', 'sha256');
  await fs.mkdir(blobs, { recursive: true });
  try {
    const runtimeEntries = await Promise.all(inputs.bundle.files.map((f) => diskFile(f.path, f.source, f.mode)));
    const runtimeLayer = await writeLayer(blobs, runtimeEntries, mtime);
    const enclaveLayer = await writeLayer(
      blobs,
      [
        await diskFile(`${RELEASE_DIR.slice(1)}/${EIF_NAME}`, inputs.eifPath, 0o644),
        {
          kind: 'file',
          path: `${RELEASE_DIR.slice(1)}/${inputs.outer.configName}`,
          mode: 0o644,
          size: inputs.outer.configText.length,
          data: inputs.outer.configText,
        },
      ],
      mtime,
    );
    const config = Buffer.from(
      JSON.stringify({
        created: new Date(inputs.sourceDateEpoch * 1000).toISOString(),
        architecture: ociArch(inputs.arch),
        os: 'linux',
        config: {
          Entrypoint: releaseEntrypoint(inputs.bundle, inputs.outer.args),
          Env: [`PATH=/${RUNTIME_ROOT}/bin:/usr/local/bin:/usr/bin:/bin`],
          WorkingDir: RELEASE_DIR,
        },
        rootfs: { type: 'layers', diff_ids: [runtimeLayer.digest, enclaveLayer.digest] },
      }),
    );
    const configDesc = await writeBlob(blobs, config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configDesc },
        layers: [runtimeLayer, enclaveLayer].map((l) => ({ mediaType: LAYER_MEDIA_TYPE, ...l })),
      }),
    );
    const manifestDesc = await writeBlob(blobs, manifest);
    const ref = targetTag(inputs.target);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            ...manifestDesc,
            annotations: { 'org.opencontainers.image.ref.name': ref },
          },
        ],
      }),
    );
    const layoutFile = Buffer.from('{"imageLayoutVersion":"1.0.0"}');
    await fs.writeFile(path.join(tmpDir, 'index.json'), index);
    await fs.writeFile(path.join(tmpDir, 'oci-layout'), layoutFile);

    // The archive: the same layout as one tar (what `skopeo copy … oci-archive:` reads).
    const tmpArchive = `${archivePath}.${process.pid}.tmp`;
    const blobNames = (await fs.readdir(blobs)).sort();
    await HashingFileSink.writeTar(tmpArchive, mtime, async (tar) => {
      await tar.add({ kind: 'file', path: 'oci-layout', mode: 0o644, size: layoutFile.length, data: layoutFile });
      await tar.add({ kind: 'file', path: 'index.json', mode: 0o644, size: index.length, data: index });
      await tar.add({ kind: 'directory', path: 'blobs', mode: 0o755 });
      await tar.add({ kind: 'directory', path: 'blobs/sha256', mode: 0o755 });
      for (const name of blobNames) await tar.add(await diskFile(`blobs/sha256/${name}`, path.join(blobs, name), 0o644));
    });
    await replaceDir(tmpDir, layoutDir);
    await fs.rename(tmpArchive, archivePath);
    return { layoutDir, archivePath, ref, manifestDigest: manifestDesc.digest };
  } catch (err) {
    await fs.rm(tmpDir, { recursive: true, force: true });
    await fs.rm(`${archivePath}.${process.pid}.tmp`, { force: true });
    throw err;
  }
}
