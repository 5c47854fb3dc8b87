/**
 * OCI image resolution over any blob store (layout directory, archive, registry): index →
 * (nested index →) manifest for the enclave's platform → config and layers, every small blob
 * checked against its digest before it is parsed. Docker v2 manifest lists and manifests are
 * read the same way (they have the same shape).
 */
import { BuildError } from '../errors.js';
import {
  MediaTypes,
  checkArchitecture,
  ociArch,
  parseJson,
  type Descriptor,
  type FileSpan,
  type ImageConfig,
  type ImageLayer,
  type ResolvedImage,
} from './model.js';

export interface BlobStore {
  /** A small blob (index, manifest, config), whole. */
  read(digest: string, what: string): Promise<Buffer>;
  /** A layer blob as chunks. */
  open(digest: string): AsyncIterable<Buffer>;
  /** Where a blob lies on the build host, for stores that keep blobs in local files. */
  locate?(digest: string): FileSpan;
}

interface IndexJson {
  manifests?: Descriptor[];
  mediaType?: string;
}
interface ManifestJson {
  mediaType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
}

const isIndex = (m: { mediaType?: string; manifests?: unknown }) =>
  m.mediaType === MediaTypes.ociIndex || m.mediaType === MediaTypes.dockerList || (m.mediaType === undefined && Array.isArray(m.manifests));

export function pickFromIndex(index: IndexJson, ref: string | undefined, arch: 'x86_64' | 'aarch64', image: string): Descriptor {
  let candidates = index.manifests ?? [];
  if (ref !== undefined) {
    candidates = candidates.filter((d) => d.annotations?.['org.opencontainers.image.ref.name'] === ref);
    if (candidates.length === 0) throw new BuildError('image_not_found', `${image}: no image tagged "${ref}" in the index`, { image, ref });
  }
  const [only] = candidates;
  if (candidates.length === 1 && only && !only.platform) return only;
  const want = ociArch(arch);
  const matching = candidates.filter((d) => !d.platform || (d.platform.architecture === want && (d.platform.os ?? 'linux') === 'linux'));
  if (matching.length === 0) {
    const have = candidates.map((d) => `${d.platform?.os ?? '?'}/${d.platform?.architecture ?? '?'}`).join(', ');
    throw new BuildError('image_arch_mismatch', `${image}: no linux/${want} image in the index (it has ${have || 'nothing'})`, {
      image,
      want,
    });
  }
  if (matching.length > 1 && ref === undefined && matching.every((d) => !d.platform)) {
    throw new BuildError('image_not_found', `${image}: the index holds ${matching.length} images; name one as ${image}:REF`, { image });
  }
  const [chosen] = matching;
  // Unreachable (matching is not empty here), but proved rather than asserted.
  if (!chosen) throw new BuildError('image_arch_mismatch', `${image}: no linux/${want} image in the index`, { image, want });
  return chosen;
}

/** From a manifest or index descriptor to a resolved image (indexes may nest). */
export async function resolveOci(
  store: BlobStore,
  start: Descriptor | Buffer,
  ref: string | undefined,
  arch: 'x86_64' | 'aarch64',
  image: string,
  name: string,
): Promise<ResolvedImage> {
  let doc: ManifestJson;
  if (Buffer.isBuffer(start)) doc = parseJson<ManifestJson>(start, 'manifest', image);
  else doc = parseJson<ManifestJson>(await store.read(start.digest, 'manifest'), `manifest ${start.digest}`, image);
  for (let depth = 0; isIndex(doc); depth++) {
    if (depth > 4) throw new BuildError('image_invalid', `${image}: indexes nested too deep`, { image });
    const next = pickFromIndex(doc, depth === 0 ? ref : undefined, arch, image);
    doc = parseJson<ManifestJson>(await store.read(next.digest, 'manifest'), `manifest ${next.digest}`, image);
  }
  if (!doc.config?.digest || !Array.isArray(doc.layers))
    throw new BuildError('image_invalid', `${image}: manifest has no config or layers`, { image });
  const configBytes = await store.read(doc.config.digest, 'config');
  const config = parseJson<ImageConfig>(configBytes, 'image config', image);
  checkArchitecture(config, arch, image);
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== doc.layers.length)
    throw new BuildError('image_invalid', `${image}: manifest lists ${doc.layers.length} layers, config ${diffIds.length} diff_ids`, {
      image,
    });
  const layerCount = doc.layers.length;
  const layers: ImageLayer[] = doc.layers.map((d, index) => ({
    index,
    digest: d.digest,
    diffId: diffIds[index],
    name: `${image}: layer ${index + 1}/${layerCount} (${d.digest})`,
    size: d.size,
    open: () => store.open(d.digest),
    file: store.locate?.(d.digest),
  }));
  return { text: image, name, configDigest: doc.config.digest, config, layers };
}
