/**
 * The instance role's credentials, fetched through the relay and kept fresh: they are refreshed
 * once they come within `refreshMarginMs` of their Expiration, both ahead of time (a timer) and
 * on demand, so the KMS proxy never signs with expired credentials (Enclaver fetched them once
 * and failed after six hours). A failed refresh keeps serving the old credentials while they
 * are still valid, and says so.
 */
import { ProxyError, messageOf } from '../../shared/errors/index.js';
import { type AwsCredentials, type ImdsCredentialsDocument, credentialsFromImds, isImdsCredentialsDocument } from '../aws/credentials.js';
import { IMDS_CREDENTIALS_PATH, IMDS_REGION_PATH } from '../../shared/wire/imds-relay.js';
import { logger } from '../../shared/log/logger.js';
import type { ImdsSource } from './relay-client.js';

const log = logger('credential-cache');

export class CredentialsUnavailableError extends ProxyError {}

export interface CachedCredentials {
  role: string;
  document: ImdsCredentialsDocument;
  credentials: AwsCredentials;
  /** When they were fetched (on the cache's clock). */
  fetchedAt: number;
}

export interface CredentialCacheOptions {
  /** Refresh this long before Expiration (default 5 minutes). */
  refreshMarginMs?: number;
  now?: () => number;
  onRefresh?: () => void;
}

export class CredentialCache {
  private current: CachedCredentials | null = null;
  private pending: Promise<CachedCredentials> | null = null;
  private regionValue: Promise<string> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly marginMs: number;
  private readonly now: () => number;
  private closed = false;

  constructor(
    private readonly source: ImdsSource,
    private readonly opts: CredentialCacheOptions = {},
  ) {
    this.marginMs = opts.refreshMarginMs ?? 5 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  private async fetchText(path: string): Promise<string> {
    const res = await this.source.get(path);
    if (res.status !== 200)
      throw new CredentialsUnavailableError('imds_status', `IMDS answered HTTP ${res.status} for ${path}: ${res.body.slice(0, 200)}`, {
        path,
        status: res.status,
      });
    return res.body;
  }

  private async fetch(): Promise<CachedCredentials> {
    const role = (await this.fetchText(IMDS_CREDENTIALS_PATH)).split('\n')[0]?.trim();
    if (!role) throw new CredentialsUnavailableError('imds_no_role', 'the instance has no IAM role attached');
    const text = await this.fetchText(IMDS_CREDENTIALS_PATH + role);
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch {
      throw new CredentialsUnavailableError('imds_credentials_invalid', `credentials for role ${role} are not JSON`, { role });
    }
    if (!isImdsCredentialsDocument(document) || document.Code !== 'Success') {
      throw new CredentialsUnavailableError('imds_credentials_invalid', `IMDS returned no usable credentials for role ${role}`, {
        role,
        code: (document as { Code?: unknown })?.Code,
      });
    }
    return { role, document, credentials: credentialsFromImds(document), fetchedAt: this.now() };
  }

  /**
   * When to replace credentials: `marginMs` before they expire, or halfway through their
   * remaining life when that is shorter than the margin (otherwise short-lived credentials would
   * be refetched on every use and by a timer that fires at once, in a loop).
   */
  /** The credentials' expiry: their document's Expiration, which IMDS always sends. */
  private expiryOf(c: CachedCredentials): number {
    return Date.parse(c.document.Expiration);
  }

  private refreshAt(c: CachedCredentials): number {
    const expiry = this.expiryOf(c);
    return expiry - Math.min(this.marginMs, Math.max(0, expiry - c.fetchedAt) / 2);
  }

  private isFresh(c: CachedCredentials): boolean {
    return this.refreshAt(c) > this.now();
  }

  private isValid(c: CachedCredentials): boolean {
    return this.expiryOf(c) > this.now();
  }

  private refresh(): Promise<CachedCredentials> {
    this.pending ??= this.fetch()
      .then((fresh) => {
        this.current = fresh;
        this.opts.onRefresh?.();
        log.info({ role: fresh.role, expiration: fresh.document.Expiration }, 'role credentials refreshed');
        this.schedule(fresh);
        return fresh;
      })
      .finally(() => {
        this.pending = null;
      });
    return this.pending;
  }

  private schedule(c: CachedCredentials): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.closed) return;
    const delay = Math.max(0, this.refreshAt(c) - this.now());
    // A timer past 2^31 ms fires at once in Node; such lifetimes are refreshed on demand instead.
    if (delay > 0x7fffffff) return;
    this.timer = setTimeout(() => {
      this.refresh().catch((err: unknown) =>
        log.warn({ err: messageOf(err) }, 'ahead-of-time credential refresh failed; will retry on demand'),
      );
    }, delay);
    this.timer.unref();
  }

  async get(): Promise<CachedCredentials> {
    const c = this.current;
    if (c && this.isFresh(c)) return c;
    try {
      return await this.refresh();
    } catch (err) {
      if (c && this.isValid(c)) {
        log.warn(
          { err: messageOf(err), expiration: c.document.Expiration },
          'credential refresh failed; using the current credentials until they expire',
        );
        return c;
      }
      throw err;
    }
  }

  /** The instance's region, from IMDS once per process. */
  region(): Promise<string> {
    this.regionValue ??= this.fetchText(IMDS_REGION_PATH)
      .then((r) => r.trim())
      .catch((err: unknown) => {
        this.regionValue = null;
        throw err;
      });
    return this.regionValue;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
