/** One entry point from a reference string to a resolved image, whatever the transport. */
import { resolveOciLayout } from './oci-layout.js';
import { parseImageReference } from './reference.js';
import { resolveRegistry } from './registry.js';
import { resolveDockerArchive, resolveOciArchive } from './tar-archive.js';
import type { ResolvedImage } from './model.js';

export async function resolveImage(text: string, arch: 'x86_64' | 'aarch64'): Promise<ResolvedImage> {
  const ref = parseImageReference(text);
  switch (ref.transport) {
    case 'oci':
      return resolveOciLayout(ref.path, ref.ref, arch, text);
    case 'oci-archive':
      return resolveOciArchive(ref.path, ref.ref, arch, text);
    case 'docker-archive':
      return resolveDockerArchive(ref.path, ref.ref, arch, text);
    case 'registry':
      return resolveRegistry(ref.registry, ref.repository, ref.reference, arch, text);
  }
}
