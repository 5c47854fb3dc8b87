/**
 * What the builder needs from an app image, whatever it came from: its config (architecture,
 * ENTRYPOINT, CMD, ENV, WORKDIR, USER) and its layers as byte streams with the digests they
 * must match. Sources (OCI layout, archives, registry) produce this; the flattener consumes it.
 */
import crypto from 'node:crypto';
import { BuildError } from '../errors.js';

export const MediaTypes = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

export interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  platform?: { architecture?: string; os?: string; variant?: string };
  annotations?: Record<string, string>;
}

export interface ImageConfig {
  architecture?: string;
  os?: string;
  config?: { Entrypoint?: string[] | null; Cmd?: string[] | null; Env?: string[] | null; WorkingDir?: string; User?: string };
  rootfs?: { type?: string; diff_ids?: string[] };
}

export interface ImageLayer {
  index: number;
  /** Digest of the bytes `open` yields (compressed as stored), when the source has one. */
  digest: string | undefined;
  /** Digest of the uncompressed tar, from the config's rootfs.diff_ids. */
  diffId: string | undefined;
  /** How errors name the layer. */
  name: string;
  /** Stored size in bytes, when known (progress only). */
  size: number | undefined;
  open(): AsyncIterable<Buffer>;
  /** Where the stored bytes lie on the build host (a layout's blob, an archive's member), when they do. */
  file: FileSpan | undefined;
}

/** Bytes of a local file from `offset` on. */
export interface FileSpan {
  path: string;
  offset: number;
}

export interface ResolvedImage {
  /** The reference as the user wrote it. */
  text: string;
  /** Name for the metadata: repository or file, without tag. */
  name: string;
  configDigest: string;
  config: ImageConfig;
  layers: ImageLayer[];
}

/** Docker/OCI architecture names for the enclave's CPU. */
export function ociArch(arch: 'x86_64' | 'aarch64'): 'amd64' | 'arm64' {
  return arch === 'aarch64' ? 'arm64' : 'amd64';
}

export function sha256Hex(data: Buffer): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

export function checkDigest(data: Buffer, digest: string, what: string, image: string): void {
  const [alg, hex] = digest.split(':');
  if (alg !== 'sha256' || !hex)
    throw new BuildError('image_invalid', `${image}: ${what}: unsupported digest "${digest}" (sha256 only)`, { image, digest });
  const actual = sha256Hex(data);
  if (actual !== hex)
    throw new BuildError('digest_mismatch', `${image}: ${what}: content is sha256:${actual}, expected ${digest}`, {
      image,
      expected: digest,
      actual: `sha256:${actual}`,
    });
}

export function parseJson<T>(data: Buffer, what: string, image: string): T {
  try {
    return JSON.parse(data.toString('utf8')) as T;
  } catch (err) {
    throw new BuildError('image_invalid', `${image}: ${what} is not valid JSON (${(err as Error).message})`, { image });
  }
}

export function checkArchitecture(config: ImageConfig, arch: 'x86_64' | 'aarch64', image: string): void {
  const want = ociArch(arch);
  if (config.architecture !== want) {
    throw new BuildError(
      'image_arch_mismatch',
      `${image}: the image is for ${config.os ?? '?'}/${config.architecture ?? '?'}, the enclave needs linux/${want} (target ${arch})`,
      { image, architecture: config.architecture, want },
    );
  }
  if (config.os !== undefined && config.os !== 'linux')
    throw new BuildError('image_arch_mismatch', `${image}: the image is for ${config.os}, not linux`, { image });
}
