/**
 * `build --push`: the release image (the OCI layout the build wrote) pushed to the registry its
 * `target` names, over the Distribution API v2, with the pull side's client (same token flow,
 * same Docker config credentials, plain HTTP only on loopback):
 *   1. each blob (config, layers): HEAD, and when absent a monolithic upload: POST to open an
 *      upload, then one PUT of the bytes (streamed from the file, never held in memory) with
 *      `?digest=`, which the registry checks before it keeps the blob;
 *   2. the manifest PUT under the target's tag, last, and only after every blob is in; the
 *      registry's Docker-Content-Digest must be the manifest's own digest.
 * Nothing half-pushed is reported as success: any failure throws, and the tag, written last,
 * does not point at an image whose blobs the registry lacks (a blob left without a manifest is
 * garbage the registry collects, not an image).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { BuildError } from '../errors.js';
import { fileRange } from '../image/file-chunks.js';
import type { Descriptor } from '../image/model.js';
import { parseRegistryReference } from '../image/reference.js';
import { RegistryClient } from '../image/registry.js';

export interface PushResult {
  /** Where the image now is: docker://HOST/REPO:TAG. */
  reference: string;
  /** The manifest's digest, as the registry confirmed it. */
  digest: string;
  /** Blobs uploaded (the others were in the registry already). */
  uploaded: number;
  skipped: number;
}

interface Manifest {
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

function pushError(target: string, message: string, cause?: unknown): BuildError {
  return new BuildError('push_failed', `push to ${target}: ${message}`, { target }, cause === undefined ? {} : { cause });
}

/** The one manifest of the layout (the build writes exactly one). */
async function layoutManifest(layoutDir: string, target: string): Promise<{ descriptor: Descriptor; bytes: Buffer; manifest: Manifest }> {
  const index = JSON.parse(await fs.readFile(path.join(layoutDir, 'index.json'), 'utf8')) as { manifests?: Descriptor[] };
  const [descriptor, ...more] = index.manifests ?? [];
  if (!descriptor || more.length > 0) throw pushError(target, `${layoutDir} holds ${index.manifests?.length ?? 0} images, not one`);
  const bytes = await fs.readFile(blobPath(layoutDir, descriptor.digest));
  return { descriptor, bytes, manifest: JSON.parse(bytes.toString('utf8')) as Manifest };
}

function blobPath(layoutDir: string, digest: string): string {
  const [algorithm, hex] = digest.split(':');
  return path.join(layoutDir, 'blobs', algorithm ?? '', hex ?? '');
}

/** One blob into the registry unless it is there already; true when it was uploaded. */
async function pushBlob(client: RegistryClient, layoutDir: string, blob: Descriptor, target: string): Promise<boolean> {
  const head = await client.request('HEAD', `blobs/${blob.digest}`, { accept: [404] });
  if (head.status !== 404) return false;
  const file = blobPath(layoutDir, blob.digest);
  const { size } = await fs.stat(file);
  if (blob.size !== undefined && blob.size !== size)
    throw pushError(target, `${file} is ${size} bytes, the manifest says ${blob.size}: the layout changed since the build`);
  let put: Response;
  try {
    const opened = await client.request('POST', 'blobs/uploads/', { headers: { 'content-length': '0' } });
    await opened.body?.cancel();
    const location = opened.headers.get('location');
    if (!location) throw pushError(target, `${client.registry} opened an upload for ${blob.digest} without a Location`);
    const url = client.url(location);
    url.searchParams.set('digest', blob.digest);
    put = await client.request('PUT', url, {
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      stream: () => fileRange(file),
    });
  } catch (err) {
    // A refusal says it all already; anything else (a connection cut mid-upload, an HTTP error)
    // is named by the blob, which the registry's upload URL does not show.
    if (!(err instanceof BuildError) || err.code !== 'registry_error') throw err;
    const reason = typeof err.context.reason === 'string' ? err.context.reason : err.message;
    throw pushError(target, `blob ${blob.digest} (${size} bytes) was not uploaded to ${client.registry}: ${reason}`, err);
  }
  await put.body?.cancel();
  const stored = put.headers.get('docker-content-digest');
  if (stored !== null && stored !== blob.digest)
    throw pushError(target, `${client.registry} stored blob ${blob.digest} as ${stored}: the bytes changed on the way`);
  return true;
}

/** Push the image in `layoutDir` to `target` (HOST/REPO:TAG; a bare name means Docker Hub, as docker has it). */
export async function pushRelease(layoutDir: string, target: string): Promise<PushResult> {
  let ref;
  try {
    ref = parseRegistryReference(target, target);
  } catch (err) {
    throw pushError(target, `not a registry reference (${(err as Error).message}); write HOST/REPO:TAG`);
  }
  if (ref.reference.startsWith('sha256:')) throw pushError(target, 'the target names a digest; a push needs a tag (HOST/REPO:TAG)');
  const reference = `docker://${ref.registry}/${ref.repository}:${ref.reference}`;
  const client = new RegistryClient(ref.registry, ref.repository, reference, 'push');
  const { descriptor, bytes, manifest } = await layoutManifest(layoutDir, target);
  let uploaded = 0;
  const blobs = [manifest.config, ...manifest.layers];
  // One at a time: the runtime layer and the EIF are large, and a registry gains little from
  // parallel uploads of two or three blobs.
  for (const blob of blobs) if (await pushBlob(client, layoutDir, blob, target)) uploaded++;
  const put = await client.request('PUT', `manifests/${ref.reference}`, {
    headers: { 'content-type': descriptor.mediaType ?? manifest.mediaType ?? 'application/vnd.oci.image.manifest.v1+json' },
    body: bytes,
  });
  await put.body?.cancel();
  const stored = put.headers.get('docker-content-digest');
  if (stored !== null && stored !== descriptor.digest)
    throw pushError(target, `${ref.registry} stored the manifest as ${stored}, not ${descriptor.digest}`);
  return { reference, digest: descriptor.digest, uploaded, skipped: blobs.length - uploaded };
}
