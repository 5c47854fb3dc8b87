/**
 * IMDSv2 session tokens issued by the inner endpoint to the app. They are local: the app's
 * token never leaves the enclave, and the outer's token never enters it.
 */
import crypto from 'node:crypto';

export const MAX_TOKEN_TTL_SECONDS = 21600;
/** Bound on live tokens, so a looping client cannot grow memory without end. */
const MAX_LIVE_TOKENS = 1024;

export class SessionTokens {
  private readonly tokens = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  /** A TTL header value IMDS would accept, as seconds, or null. */
  static parseTtl(header: string | string[] | undefined): number | null {
    if (typeof header !== 'string' || !/^[0-9]{1,5}$/.test(header)) return null;
    const ttl = Number(header);
    return ttl >= 1 && ttl <= MAX_TOKEN_TTL_SECONDS ? ttl : null;
  }

  issue(ttlSeconds: number): string {
    this.evictExpired();
    const oldest = this.tokens.keys().next();
    if (this.tokens.size >= MAX_LIVE_TOKENS && !oldest.done) this.tokens.delete(oldest.value);
    const token = crypto.randomBytes(32).toString('base64url');
    this.tokens.set(token, this.now() + ttlSeconds * 1000);
    return token;
  }

  isValid(token: string | string[] | undefined): boolean {
    if (typeof token !== 'string') return false;
    const expiresAt = this.tokens.get(token);
    return expiresAt !== undefined && expiresAt > this.now();
  }

  private evictExpired(): void {
    const now = this.now();
    for (const [token, expiresAt] of this.tokens) if (expiresAt <= now) this.tokens.delete(token);
  }
}
