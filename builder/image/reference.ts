/**
 * Image references, spelled the way skopeo spells them:
 *   oci:DIR[:REF]          an OCI image layout directory (REF: the ref.name annotation)
 *   oci-archive:FILE[:REF] the same, as a tar file
 *   docker-archive:FILE    `docker save` output (legacy layout or Engine ≥ 25's OCI-in-tar)
 *   docker://HOST/REPO[:TAG|@DIGEST] or a bare reference: a registry
 * Docker Hub names are normalised like docker does (`alpine` → registry-1.docker.io/library/alpine:latest).
 */
import { BuildError } from '../errors.js';

export type ImageReference =
  | { transport: 'oci'; path: string; ref: string | undefined; text: string }
  | { transport: 'oci-archive'; path: string; ref: string | undefined; text: string }
  | { transport: 'docker-archive'; path: string; ref: string | undefined; text: string }
  | { transport: 'registry'; registry: string; repository: string; reference: string; text: string };

const DOCKER_HUB = 'registry-1.docker.io';

function splitPathRef(rest: string): { path: string; ref: string | undefined } {
  // A REF never contains '/', so the last ':' after the last '/' separates it.
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/') && colon > 0) return { path: rest.slice(0, colon), ref: rest.slice(colon + 1) || undefined };
  return { path: rest, ref: undefined };
}

export function parseRegistryReference(name: string, text: string): ImageReference & { transport: 'registry' } {
  let rest = name;
  let reference = 'latest';
  const at = rest.indexOf('@');
  if (at >= 0) {
    reference = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!/^sha256:[0-9a-f]{64}$/.test(reference))
      throw new BuildError('image_not_found', `image "${text}": digest "${reference}" is not sha256:<64 hex>`, { image: text });
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon > rest.lastIndexOf('/')) {
      reference = rest.slice(colon + 1);
      rest = rest.slice(0, colon);
    }
  }
  const slash = rest.indexOf('/');
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  let registry: string;
  let repository: string;
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = first;
    repository = rest.slice(slash + 1);
  } else {
    registry = DOCKER_HUB;
    repository = slash >= 0 ? rest : `library/${rest}`;
  }
  if (registry === 'docker.io' || registry === 'index.docker.io') registry = DOCKER_HUB;
  if (!/^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/.test(repository)) {
    throw new BuildError('image_not_found', `image "${text}": "${repository}" is not a valid repository name`, { image: text });
  }
  return { transport: 'registry', registry, repository, reference, text };
}

export function parseImageReference(text: string): ImageReference {
  const colon = text.indexOf(':');
  const scheme = colon > 0 ? text.slice(0, colon) : '';
  const rest = text.slice(colon + 1);
  switch (scheme) {
    case 'oci':
    case 'oci-archive':
    case 'docker-archive': {
      const { path, ref } = splitPathRef(rest);
      if (path === '') throw new BuildError('image_not_found', `image "${text}": no path after "${scheme}:"`, { image: text });
      return { transport: scheme, path, ref, text };
    }
    case 'docker':
      if (!rest.startsWith('//')) throw new BuildError('image_not_found', `image "${text}": write docker://HOST/REPO:TAG`, { image: text });
      return parseRegistryReference(rest.slice(2), text);
    default:
      return parseRegistryReference(text, text);
  }
}
