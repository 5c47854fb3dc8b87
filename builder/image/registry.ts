/**
 * Speaking to a registry (Distribution API v2) without a daemon: pulls (manifest by tag or
 * digest, blobs streamed) and the requests a push makes (../oci/push.ts). Authentication follows
 * the standard challenge: a 401 names a Bearer realm (a token service: get a token there for the
 * repository's pull, or pull,push, scope, with Basic credentials when we have some) or asks for
 * Basic. A token that still earns a 401 `insufficient_scope` was granted less than asked, and the
 * error says so. Credentials come from the Docker config (`$DOCKER_CONFIG/config.json` or
 * `~/.docker/config.json`, `auths` entries; credential helpers are not run). HTTPS always, for
 * registries and token services alike, except on loopback (localhost, 127.0.0.0/8, ::1), which
 * is spoken to over plain HTTP like a local test registry.
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

/** `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. */
function dockerConfigFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.DOCKER_CONFIG ?? path.join(os.homedir(), '.docker'), 'config.json');
}

/** `user:password` for a registry from the Docker config, if any. */
export function dockerCredentials(registry: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const file = dockerConfigFile(env);
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

/** Socket errors that mean the connection went away after it was made (not "cannot connect"). */
const CONNECTION_LOST = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

/** Why a fetch threw, as one phrase: undici's cause code and message (ECONNREFUSED, …). */
function fetchFailure(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (!cause) return (err as Error).message;
  if (cause.code && CONNECTION_LOST.has(cause.code)) return `the connection was closed (${cause.code})`;
  return [cause.code, cause.message].filter(Boolean).join(': ');
}

function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const space = header.indexOf(' ');
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  for (const [, key, value] of header.slice(space + 1).matchAll(/(\w+)="([^"]*)"/g)) {
    if (key !== undefined && value !== undefined) params[key] = value;
  }
  return { scheme, params };
}

/** What a client may do in a repository: the scope it asks a token service for. */
export type RegistryAccess = 'pull' | 'push';

/** What a request sends: headers, and a body that can be sent again after a 401 (or none). */
interface RequestInit {
  headers?: Record<string, string>;
  body?: Buffer;
  /**
   * A streamed body (a blob upload), opened anew for each sending: a token that expired between
   * two requests of a long push earns a 401 and a second sending, not a failed push.
   */
  stream?: () => AsyncIterable<Buffer>;
  /** Statuses that are answers, not errors (e.g. 404 for "is this blob there?"). */
  accept?: readonly number[];
}

export class RegistryClient {
  private authorization: string | undefined;
  /** The token service the last Bearer token came from and the scopes asked of it, named in refusals. */
  private tokenService: { origin: string; scopes: string } | undefined;
  private readonly credentials: string | undefined;
  readonly base: string;

  constructor(
    readonly registry: string,
    private readonly repository: string,
    /** The image this client works for, named in every message (the pulled image or the push target). */
    private readonly image: string,
    private readonly access: RegistryAccess = 'pull',
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
    let url: URL;
    try {
      url = new URL(params.realm);
    } catch {
      throw this.unauthorized(`the registry names a token service that is not a URL ("${params.realm}")`);
    }
    // Credentials go to the realm in the clear unless it is HTTPS: only a loopback one may be HTTP,
    // the same rule as for registries.
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackRegistry(url.host)))
      throw this.unauthorized(`the registry names a token service that is not HTTPS (${url.origin}); credentials are not sent there`);
    if (params.service) url.searchParams.set('service', params.service);
    // The challenge's scope is what this request needs; a push client asks for pull,push whatever
    // the first request was (a HEAD asks for pull), so one token serves the whole push instead of
    // one per 401. A scope ours does not cover (another repository, another action) is asked too.
    const prefix = `repository:${this.repository}:`;
    const actions = this.access === 'push' ? ['pull', 'push'] : ['pull'];
    const needed = params.scope;
    const covered =
      needed?.startsWith(prefix) &&
      needed
        .slice(prefix.length)
        .split(',')
        .every((a) => actions.includes(a));
    if (needed !== undefined && !covered) url.searchParams.append('scope', needed);
    url.searchParams.append('scope', `${prefix}${actions.join(',')}`);
    this.tokenService = { origin: url.origin, scopes: url.searchParams.getAll('scope').join(' ') };
    let res: Response;
    try {
      res = await fetch(url, { headers: basic ? { authorization: basic } : {} });
    } catch (err) {
      throw new BuildError(
        'registry_error',
        `${this.image}: cannot reach the token service ${url.origin} that ${this.registry} names (${fetchFailure(err)})`,
        { image: this.image, registry: this.registry },
        { cause: err },
      );
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw this.unauthorized(
        `the token service ${url.origin} refused ${basic ? 'the Docker config credentials' : `an anonymous ${this.access}`} (HTTP ${res.status})`,
      );
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new BuildError('registry_error', `${this.image}: token service ${url.origin} answered HTTP ${res.status}`, {
        image: this.image,
      });
    }
    const body = (await res.json().catch(() => ({}))) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token)
      throw new BuildError('registry_error', `${this.image}: token service ${url.origin} returned no token`, { image: this.image });
    this.authorization = `Bearer ${token}`;
  }

  private unauthorized(why: string): BuildError {
    const fix = this.credentials
      ? `check the ${this.registry} entry of the Docker config (${dockerConfigFile()})`
      : `log in first (\`skopeo login --authfile ${dockerConfigFile()} ${this.registry}\` or \`docker login ${this.registry}\`)`;
    return new BuildError(
      'registry_unauthorized',
      `${this.image}: registry ${this.registry} refused to let us ${this.access} ${this.repository}: ${why}; ${fix}`,
      { image: this.image, registry: this.registry },
    );
  }

  /** The URL of `pathname` under this repository (`manifests/…`, `blobs/…`), or a Location the registry gave. */
  url(pathname: string | URL): URL {
    if (pathname instanceof URL) return pathname;
    return new URL(pathname.startsWith('/') || /^https?:/.test(pathname) ? pathname : `/v2/${this.repository}/${pathname}`, this.base);
  }

  private async send(method: string, url: URL, init: RequestInit): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.authorization) headers.authorization = this.authorization;
    try {
      const body = init.stream ? init.stream() : init.body;
      return await fetch(url, { method, headers, ...(body ? { body, duplex: 'half' } : {}) } as globalThis.RequestInit);
    } catch (err) {
      const reason = fetchFailure(err);
      throw new BuildError(
        'registry_error',
        `${this.image}: ${method} ${url.pathname} to ${this.base} failed (${reason})`,
        { image: this.image, registry: this.registry, reason },
        { cause: err },
      );
    }
  }

  /** A failed answer as the error that names the image, the request and the status. */
  private async failure(res: Response, method: string, url: URL): Promise<BuildError> {
    const detail = (await res.text().catch(() => '')).slice(0, 300).trim();
    // A token the registry still refuses for this request: the token service granted less than
    // was asked (distribution says so with error="insufficient_scope" in the challenge).
    const challenge = parseChallenge(res.headers.get('www-authenticate') ?? '');
    if (res.status === 401 && this.tokenService && challenge.params.error === 'insufficient_scope')
      return this.unauthorized(
        `the token service ${this.tokenService.origin} granted ${this.credentials ? 'the Docker config credentials' : 'an anonymous client'} ` +
          `less than the ${this.tokenService.scopes} asked for (the registry answered insufficient_scope to ${method} ${url.pathname})`,
      );
    if (res.status === 401 || res.status === 403)
      return this.unauthorized(
        `HTTP ${res.status}${this.credentials ? ' with the Docker config credentials' : ' (no credentials in the Docker config)'}`,
      );
    if (res.status === 404 && method === 'GET') {
      const pathname = url.pathname.slice(`/v2/${this.repository}/`.length);
      return new BuildError(
        'image_not_found',
        `${this.image}: ${this.registry} has no ${this.repository}/${pathname.replace(/^manifests\//, 'manifest ')}`,
        { image: this.image },
      );
    }
    const reason = `${method} ${url.pathname} answered HTTP ${res.status}${detail ? `: ${detail}` : ''}`;
    return new BuildError('registry_error', `${this.image}: ${reason}`, { image: this.image, status: res.status, reason });
  }

  /**
   * One request, authenticated the way the registry's 401 challenge asks; a status outside 2xx
   * and `init.accept` is an error naming the image. `pathname` is under the repository
   * (`manifests/…`, `blobs/…`) or a Location the registry gave.
   */
  async request(method: string, pathname: string | URL, init: RequestInit = {}): Promise<Response> {
    const url = this.url(pathname);
    let res = await this.send(method, url, init);
    // A challenge is answered once per request: a token may be for less than this request needs
    // (a pull-only scope before a push), so a later 401 gets its own.
    if (res.status === 401) {
      await res.body?.cancel();
      await this.authenticate(res.headers.get('www-authenticate') ?? '');
      res = await this.send(method, url, init);
    }
    if (res.ok || init.accept?.includes(res.status)) return res;
    throw await this.failure(res, method, url);
  }

  get(pathname: string, accept?: string): Promise<Response> {
    return this.request('GET', pathname, accept ? { headers: { accept } } : {});
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
        // A download cut off mid-blob surfaces while the body is read, as undici's bare
        // "terminated": name the blob and the registry instead.
        const cutOff = (err: unknown) => {
          const reason = fetchFailure(err);
          return new BuildError(
            'registry_error',
            `${this.image}: blob ${digest} from ${this.registry} was cut off: ${reason}`,
            { image: this.image, registry: this.registry, reason },
            { cause: err },
          );
        };
        return (async function* () {
          const res = await get();
          if (!res.body) return;
          try {
            for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>)
              yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
          } catch (err) {
            throw cutOff(err);
          }
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
