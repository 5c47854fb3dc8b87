/**
 * `oci-archive:FILE[:REF]` and `docker-archive:FILE[:REF]`: an image packed in one tar file. The
 * archive is indexed once by seeking from header to header (bodies are not read), then members
 * are read back as byte ranges. docker-archive is `docker save` output: `manifest.json` names the
 * config and the layers by path, either the legacy `<id>/layer.tar` or, from Docker Engine 25,
 * `blobs/sha256/<hex>` of an OCI layout in the same tar.
 */
import fs from 'node:fs/promises';
import { BuildError } from '../errors.js';
import { fileRange, seekableFile } from './file-chunks.js';
import { checkArchitecture, checkDigest, parseJson, type FileSpan, type ImageConfig, type ResolvedImage } from './model.js';
import { resolveOci, type BlobStore } from './oci.js';
import { readTar, TarFormatError } from './tar-reader.js';

interface Member {
  offset: number;
  size: number;
}

const SMALL_MEMBER_LIMIT = 64 * 1024 * 1024;

export class TarArchive {
  private constructor(
    readonly file: string,
    private readonly members: Map<string, Member>,
    private readonly image: string,
  ) {}

  static async open(file: string, image: string): Promise<TarArchive> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(file, 'r');
    } catch (err) {
      throw new BuildError(
        'image_not_found',
        `${image}: cannot open ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
        { image, path: file },
        { cause: err },
      );
    }
    const members = new Map<string, Member>();
    try {
      const { size: fileSize } = await fh.stat();
      for await (const entry of readTar(seekableFile(fh))) {
        if (entry.header.type !== 'file') continue;
        const end = entry.dataOffset + entry.header.size;
        if (end > fileSize)
          throw new BuildError(
            'archive_truncated',
            `${image}: ${file} is truncated: member "${entry.header.path}" needs ${end} bytes, the file has ${fileSize}`,
            { image, path: file },
          );
        members.set(entry.header.path.replace(/^\.?\//, ''), { offset: entry.dataOffset, size: entry.header.size });
      }
    } catch (err) {
      if (err instanceof TarFormatError)
        throw new BuildError(
          'archive_truncated',
          `${image}: ${file} is not a complete tar archive: ${err.message}`,
          { image, path: file },
          { cause: err },
        );
      throw err;
    } finally {
      await fh.close();
    }
    return new TarArchive(file, members, image);
  }

  has(name: string): boolean {
    return this.members.has(name);
  }

  member(name: string, what: string): Member {
    const m = this.members.get(name.replace(/^\.?\//, ''));
    if (!m)
      throw new BuildError('image_invalid', `${this.image}: ${what} "${name}" is not in ${this.file}`, { image: this.image, member: name });
    return m;
  }

  async read(name: string, what: string): Promise<Buffer> {
    const m = this.member(name, what);
    if (m.size > SMALL_MEMBER_LIMIT)
      throw new BuildError('image_invalid', `${this.image}: ${what} "${name}" is ${m.size} bytes, too large`, { image: this.image });
    const parts: Buffer[] = [];
    for await (const chunk of fileRange(this.file, m.offset, m.size)) parts.push(chunk);
    return Buffer.concat(parts);
  }

  open(name: string, what: string): AsyncIterable<Buffer> {
    const m = this.member(name, what);
    return fileRange(this.file, m.offset, m.size);
  }

  locate(name: string, what: string): FileSpan {
    return { path: this.file, offset: this.member(name, what).offset };
  }

  blobStore(): BlobStore {
    const name = (digest: string) => `blobs/${digest.replace(':', '/')}`;
    return {
      read: async (digest, what) => {
        const data = await this.read(name(digest), `${what} blob`);
        checkDigest(data, digest, what, this.image);
        return data;
      },
      open: (digest) => this.open(name(digest), 'layer blob'),
      locate: (digest) => this.locate(name(digest), 'layer blob'),
    };
  }
}

export async function resolveOciArchive(
  file: string,
  ref: string | undefined,
  arch: 'x86_64' | 'aarch64',
  image: string,
): Promise<ResolvedImage> {
  const archive = await TarArchive.open(file, image);
  if (!archive.has('index.json'))
    throw new BuildError('image_invalid', `${image}: ${file} holds no index.json (not an OCI archive)`, { image });
  const index = await archive.read('index.json', 'index');
  return resolveOci(archive.blobStore(), index, ref, arch, image, file.replace(/^.*\//, '').replace(/\.tar$/, ''));
}

interface DockerManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

export async function resolveDockerArchive(
  file: string,
  ref: string | undefined,
  arch: 'x86_64' | 'aarch64',
  image: string,
): Promise<ResolvedImage> {
  const archive = await TarArchive.open(file, image);
  if (!archive.has('manifest.json'))
    throw new BuildError('image_invalid', `${image}: ${file} holds no manifest.json (not a docker save archive)`, { image });
  const entries = parseJson<DockerManifestEntry[]>(await archive.read('manifest.json', 'manifest'), 'manifest.json', image);
  const [only] = entries;
  const entry =
    ref === undefined
      ? entries.length === 1
        ? only
        : undefined
      : entries.find((e) => (e.RepoTags ?? []).some((t) => t === ref || t.endsWith(`/${ref}`) || t.split(':')[0] === ref));
  if (!entry)
    throw ref === undefined
      ? new BuildError('image_not_found', `${image}: ${file} holds ${entries.length} images; name one as docker-archive:${file}:REPO:TAG`, {
          image,
        })
      : new BuildError(
          'image_not_found',
          `${image}: no image tagged "${ref}" in ${file} (it has ${entries.flatMap((e) => e.RepoTags ?? []).join(', ') || 'untagged images'})`,
          { image, ref },
        );
  const configBytes = await archive.read(entry.Config, 'config');
  const configHex = /([0-9a-f]{64})(?:\.json)?$/.exec(entry.Config)?.[1];
  if (configHex) checkDigest(configBytes, `sha256:${configHex}`, 'config', image);
  const config = parseJson<ImageConfig>(configBytes, 'image config', image);
  checkArchitecture(config, arch, image);
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== entry.Layers.length)
    throw new BuildError(
      'image_invalid',
      `${image}: manifest.json lists ${entry.Layers.length} layers, the config ${diffIds.length} diff_ids`,
      { image },
    );
  const tag = entry.RepoTags?.[0];
  return {
    text: image,
    name: tag ? tag.replace(/:[^:/]*$/, '') : file.replace(/^.*\//, '').replace(/\.tar$/, ''),
    configDigest: `sha256:${configHex ?? ''}`,
    config,
    layers: entry.Layers.map((layerPath, index) => {
      const blobHex = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(layerPath)?.[1];
      const member = archive.member(layerPath, 'layer');
      return {
        size: member.size,
        index,
        digest: blobHex ? `sha256:${blobHex}` : undefined,
        diffId: diffIds[index],
        name: `${image}: layer ${index + 1}/${entry.Layers.length} (${layerPath})`,
        open: () => archive.open(layerPath, 'layer'),
        file: archive.locate(layerPath, 'layer'),
      };
    }),
  };
}
