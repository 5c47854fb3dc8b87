/**
 * The parent instance's IMDSv2 client: a session token from `PUT /latest/api/token` is reused
 * until shortly before its TTL runs out, and replaced at once when IMDS answers 401. There is no
 * IMDSv1 fallback: a proxy that silently downgraded would hide a misconfigured instance.
 */
import { request } from 'undici';
import { ProxyError, messageOf } from '../../shared/errors/index.js';
import { IMDS_TOKEN_PATH } from '../../shared/wire/imds-relay.js';
import { logger } from '../../shared/log/logger.js';

const log = logger('imds-client');

export const DEFAULT_IMDS_ENDPOINT = 'http://169.254.169.254';
/** What the AWS SDKs ask for: the longest TTL IMDS grants. */
export const DEFAULT_TOKEN_TTL_SECONDS = 21600;

export class ImdsError extends ProxyError {}

export interface Imdsv2ClientOptions {
  endpoint?: string;
  tokenTtlSeconds?: number;
  timeoutMs?: number;
  now?: () => number;
}

export interface ImdsAnswer {
  status: number;
  body: string;
  contentType: string | undefined;
}

export class Imdsv2Client {
  private readonly endpoint: URL;
  private readonly ttlSeconds: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private token: { value: string; renewAt: number } | null = null;
  private pendingToken: Promise<string> | null = null;
  /** Tokens fetched so far (a metric and a test observable). */
  tokensFetched = 0;

  constructor(opts: Imdsv2ClientOptions = {}) {
    this.endpoint = new URL(opts.endpoint ?? DEFAULT_IMDS_ENDPOINT);
    this.ttlSeconds = opts.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
    if (!Number.isInteger(this.ttlSeconds) || this.ttlSeconds < 1 || this.ttlSeconds > 21600)
      throw new ImdsError('imds_config', `token TTL ${this.ttlSeconds}s is outside IMDS's 1..21600`, { ttl: this.ttlSeconds });
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.now = opts.now ?? Date.now;
  }

  private async send(method: 'GET' | 'PUT', path: string, headers: Record<string, string>): Promise<ImdsAnswer> {
    try {
      const res = await request(new URL(path, this.endpoint), {
        method,
        headers,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      const contentType = res.headers['content-type'];
      return {
        status: res.statusCode,
        body: await res.body.text(),
        contentType: Array.isArray(contentType) ? contentType[0] : contentType,
      };
    } catch (err) {
      throw new ImdsError(
        'imds_unreachable',
        `IMDS at ${this.endpoint.origin} did not answer ${method} ${path}: ${messageOf(err)}`,
        { endpoint: this.endpoint.origin, path },
        { cause: err },
      );
    }
  }

  private async fetchToken(): Promise<string> {
    const res = await this.send('PUT', IMDS_TOKEN_PATH, { 'x-aws-ec2-metadata-token-ttl-seconds': String(this.ttlSeconds) });
    if (res.status !== 200 || res.body.length === 0) {
      throw new ImdsError(
        'imds_token_refused',
        `IMDS refused a session token (HTTP ${res.status}); IMDSv2 must be enabled and the PUT response hop limit must reach this process`,
        { status: res.status },
      );
    }
    this.tokensFetched++;
    // Renew a tenth of the TTL (at most a minute) early, so no request carries an expiring token.
    const earlyMs = Math.min(60_000, this.ttlSeconds * 100);
    this.token = { value: res.body, renewAt: this.now() + this.ttlSeconds * 1000 - earlyMs };
    log.debug({ ttlSeconds: this.ttlSeconds }, 'IMDSv2 session token fetched');
    return res.body;
  }

  private currentToken(): Promise<string> {
    if (this.token && this.now() < this.token.renewAt) return Promise.resolve(this.token.value);
    // One token fetch at a time, however many requests are waiting for it.
    this.pendingToken ??= this.fetchToken().finally(() => {
      this.pendingToken = null;
    });
    return this.pendingToken;
  }

  async get(path: string): Promise<ImdsAnswer> {
    const token = await this.currentToken();
    const res = await this.send('GET', path, { 'x-aws-ec2-metadata-token': token });
    if (res.status !== 401) return res;
    // IMDS forgot the token (restart, TTL shortened): one retry with a fresh one.
    if (this.token?.value === token) this.token = null;
    return this.send('GET', path, { 'x-aws-ec2-metadata-token': await this.currentToken() });
  }
}
