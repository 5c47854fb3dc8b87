/**
 * Pulling from a registry (Distribution API v2) without a daemon: manifest by tag or digest,
 * blobs streamed. Authentication follows the standard challenge: a 401 names a Bearer realm (get
 * a token there, with Basic credentials when we have some) or asks for Basic. Credentials come
 * from the Docker config (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, `auths`
 * entries; credential helpers are not run). HTTPS always, except registries on loopback
 * (localhost, 127.0.0.0/8, ::1), which are spoken to over plain HTTP like a local test registry.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BuildError } from '../errors.js';
import { MediaTypes, checkDigest, type ResolvedImage } from './model.js';
import { resolveOci, type BlobStore } from './oci.js';

const MANIFEST_ACCEPT = [MediaTypes.ociIndex, MediaTypes.ociManifest, MediaTypes.dockerList, MediaTypes.dockerManifest].join(', ');

export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1';
}

export function registryBaseUrl(registry: string): string {
  return `${isLoopbackRegistry(registry) ? 'http' : 'https'}://${registry}`;
}

/** `user:password` for a registry from the Docker config, if any. */
export function dockerCredentials(registry: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const file = path.join(env.DOCKER_CONFIG ?? path.join(os.homedir(), '.docker'), 'config.json');
  let config: { auths?: Record<string, { auth?: string; username?: string; password?: string }> };
  try {
    config = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof config;
  } catch {
    return undefined;
  }
  const keys =
    registry === 'registry-1.docker.io'
      ? ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', registry]
      : [registry, `https://${registry}`, `http://${registry}`];
  for (const key of keys) {
    const entry = config.auths?.[key];
    if (entry?.auth) return Buffer.from(entry.auth, 'base64').toString('utf8');
    if (entry?.username !== undefined && entry.password !== undefined) return `${entry.username}:${entry.password}`;
  }
  return undefined;
}

function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const space = header.indexOf(' ');
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  for (const m of header.slice(space + 1).matchAll(/(\w+)="([^"]*)"/g)) params[m[1]!] = m[2]!;
  return { scheme, params };
}

export class RegistryClient {
  private authorization: string | undefined;
  private readonly credentials: string | undefined;
  private readonly base: string;

  constructor(
    private readonly registry: string,
    private readonly repository: string,
    private readonly image: string,
  ) {
    this.credentials = dockerCredentials(registry);
    this.base = registryBaseUrl(registry);
  }

  private async authenticate(challenge: string): Promise<void> {
    const { scheme, params } = parseChallenge(challenge);
    const basic = this.credentials ? `Basic ${Buffer.from(this.credentials).toString('base64')}` : undefined;
    if (scheme === 'basic') {
      if (!basic) throw this.unauthorized('the registry asks for credentials and the Docker config has none for it');
      this.authorization = basic;
      return;
    }
    if (scheme !== 'bearer' || !params.realm) throw this.unauthorized(`unsupported authentication challenge "${challenge}"`);
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', params.scope ?? `repository:${this.repository}:pull`);
    const res = await fetch(url, { headers: basic ? { authorization: basic } : {} });
    if (res.status === 401 || res.status === 403)
      throw this.unauthorized(
        `the token service ${url.origin} refused ${basic ? 'the Docker config credentials' : 'an anonymous pull'} (HTTP ${res.status})`,
      );
    if (!res.ok)
      throw new BuildError('registry_error', `${this.image}: token service ${url.origin} answered HTTP ${res.status}`, {
        image: this.image,
      });
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token)
      throw new BuildError('registry_error', `${this.image}: token service ${url.origin} returned no token`, { image: this.image });
    this.authorization = `Bearer ${token}`;
  }

  private unauthorized(why: string): BuildError {
    return new BuildError(
      'registry_unauthorized',
      `${this.image}: registry ${this.registry} refused access to ${this.repository}: ${why}`,
      { image: this.image, registry: this.registry },
    );
  }

  async get(pathname: string, accept?: string): Promise<Response> {
    const url = `${this.base}/v2/${this.repository}/${pathname}`;
    for (let attempt = 0; attempt < 2; attempt++) {
      const headers: Record<string, string> = {};
      if (accept) headers.accept = accept;
      if (this.authorization) headers.authorization = this.authorization;
      let res: Response;
      try {
        res = await fetch(url, { headers });
      } catch (err) {
        throw new BuildError(
          'registry_error',
          `${this.image}: cannot reach ${this.base} (${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message})`,
          { image: this.image },
          { cause: err },
        );
      }
      if (res.status === 401 && attempt === 0) {
        await res.body?.cancel();
        await this.authenticate(res.headers.get('www-authenticate') ?? '');
        continue;
      }
      if (res.status === 401 || res.status === 403) {
        await res.body?.cancel();
        throw this.unauthorized(
          `HTTP ${res.status}${this.credentials ? ' with the Docker config credentials' : ' (no credentials in the Docker config)'}`,
        );
      }
      if (res.status === 404) {
        await res.body?.cancel();
        throw new BuildError(
          'image_not_found',
          `${this.image}: ${this.registry} has no ${this.repository}/${pathname.replace(/^manifests\//, 'manifest ')}`,
          { image: this.image },
        );
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw new BuildError('registry_error', `${this.image}: ${url} answered HTTP ${res.status}`, { image: this.image });
      }
      return res;
    }
    throw this.unauthorized('authentication did not succeed');
  }

  store(): BlobStore {
    return {
      read: async (digest, what) => {
        const res = await this.get(
          what === 'manifest' ? `manifests/${digest}` : `blobs/${digest}`,
          what === 'manifest' ? MANIFEST_ACCEPT : undefined,
        );
        const data = Buffer.from(await res.arrayBuffer());
        checkDigest(data, digest, what, this.image);
        return data;
      },
      open: (digest) => {
        const get = () => this.get(`blobs/${digest}`);
        return (async function* () {
          const res = await get();
          if (!res.body) return;
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>)
            yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        })();
      },
    };
  }
}

export async function resolveRegistry(
  registry: string,
  repository: string,
  reference: string,
  arch: 'x86_64' | 'aarch64',
  image: string,
): Promise<ResolvedImage> {
  const client = new RegistryClient(registry, repository, image);
  const res = await client.get(`manifests/${reference}`, MANIFEST_ACCEPT);
  const manifest = Buffer.from(await res.arrayBuffer());
  if (reference.startsWith('sha256:')) checkDigest(manifest, reference, 'manifest', image);
  return resolveOci(client.store(), manifest, undefined, arch, image, `${registry}/${repository}`);
}
