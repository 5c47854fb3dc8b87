/**
 * `oci:DIR[:REF]`: an OCI image layout directory (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`),
 * as skopeo and umoci write it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BuildError } from '../errors.js';
import { fileRange } from './file-chunks.js';
import { checkDigest, parseJson, type ResolvedImage } from './model.js';
import { resolveOci, type BlobStore } from './oci.js';

export function blobPath(dir: string, digest: string, image: string): string {
  const hex = /^sha256:([0-9a-f]{64})$/.exec(digest)?.[1];
  if (hex === undefined) throw new BuildError('image_invalid', `${image}: unsupported or malformed digest "${digest}"`, { image, digest });
  return path.join(dir, 'blobs', 'sha256', hex);
}

export function layoutStore(dir: string, image: string): BlobStore {
  return {
    async read(digest, what) {
      const file = blobPath(dir, digest, image);
      let data: Buffer;
      try {
        data = fs.readFileSync(file);
      } catch {
        throw new BuildError('image_invalid', `${image}: ${what} blob ${digest} is missing (${file})`, { image, digest });
      }
      checkDigest(data, digest, what, image);
      return data;
    },
    open(digest) {
      const file = blobPath(dir, digest, image);
      if (!fs.existsSync(file))
        throw new BuildError('image_invalid', `${image}: layer blob ${digest} is missing (${file})`, { image, digest });
      return fileRange(file);
    },
    locate: (digest) => ({ path: blobPath(dir, digest, image), offset: 0 }),
  };
}

export async function resolveOciLayout(
  dir: string,
  ref: string | undefined,
  arch: 'x86_64' | 'aarch64',
  image: string,
): Promise<ResolvedImage> {
  const indexFile = path.join(dir, 'index.json');
  if (!fs.existsSync(path.join(dir, 'oci-layout')) || !fs.existsSync(indexFile)) {
    throw new BuildError('image_not_found', `${image}: ${dir} is not an OCI image layout (no oci-layout or index.json)`, {
      image,
      path: dir,
    });
  }
  const index = fs.readFileSync(indexFile);
  parseJson(index, 'index.json', image);
  return resolveOci(layoutStore(dir, image), index, ref, arch, image, path.basename(path.resolve(dir)));
}
