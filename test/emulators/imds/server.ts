/**
 * TEST-ONLY IMDSv2 emulator on loopback: session tokens with TTLs (GETs without a valid one get
 * 401), one IAM role whose credentials expire after a configurable lifetime and are reissued
 * when they do, the region and the identity document. It counts what it was asked so tests can
 * assert on token reuse and renewal.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CredentialStore, IssuedCredentials } from '../credential-store.js';

export interface ImdsEmulatorOptions {
  store: CredentialStore;
  role?: string;
  region?: string;
  credentialLifetimeMs?: number;
  now?: () => number;
}

export class ImdsEmulator {
  readonly role: string;
  readonly region: string;
  private readonly tokens = new Map<string, number>();
  private current: IssuedCredentials | null = null;
  private server: http.Server | null = null;
  readonly requests: { method: string; path: string; status: number }[] = [];
  tokensIssued = 0;
  credentialLifetimeMs: number;

  constructor(private readonly opts: ImdsEmulatorOptions) {
    this.role = opts.role ?? 'enclave-test-role';
    this.region = opts.region ?? 'eu-west-1';
    this.credentialLifetimeMs = opts.credentialLifetimeMs ?? 6 * 3600_000;
  }

  private get now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** Forget every session token, as an IMDS restart would: the next GET with an old one gets 401. */
  revokeTokens(): void {
    this.tokens.clear();
  }

  private credentials(): IssuedCredentials {
    // Like EC2, rotate credentials well before they expire; here: once half their life is gone.
    if (!this.current || this.current.expiration.getTime() - this.now < this.credentialLifetimeMs / 2) {
      this.current = this.opts.store.issue(this.credentialLifetimeMs);
    }
    return this.current;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = req.url ?? '/';
    const reply = (status: number, body: string, type = 'text/plain') => {
      this.requests.push({ method: req.method ?? '', path, status });
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (req.method === 'PUT' && path === '/latest/api/token') {
      const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21600) return reply(400, 'Bad Request');
      const token = crypto.randomBytes(24).toString('base64');
      this.tokens.set(token, this.now + ttl * 1000);
      this.tokensIssued++;
      return reply(200, token);
    }
    if (req.method !== 'GET') return reply(405, 'Method Not Allowed');
    const token = req.headers['x-aws-ec2-metadata-token'];
    const expiresAt = typeof token === 'string' ? this.tokens.get(token) : undefined;
    if (expiresAt === undefined || expiresAt <= this.now) return reply(401, 'Unauthorized');
    const credsPath = '/latest/meta-data/iam/security-credentials/';
    if (path === credsPath) return reply(200, `${this.role}\n`);
    if (path === credsPath + this.role) {
      const c = this.credentials();
      return reply(
        200,
        JSON.stringify({
          Code: 'Success',
          LastUpdated: new Date(this.now).toISOString().replace(/\.\d+Z$/, 'Z'),
          Type: 'AWS-HMAC',
          AccessKeyId: c.accessKeyId,
          SecretAccessKey: c.secretAccessKey,
          Token: c.sessionToken,
          Expiration: c.expiration.toISOString().replace(/\.\d+Z$/, 'Z'),
        }),
      );
    }
    if (path === '/latest/meta-data/placement/region') return reply(200, this.region);
    if (path === '/latest/dynamic/instance-identity/document') {
      return reply(
        200,
        JSON.stringify({
          accountId: '111122223333',
          instanceId: 'i-0123456789abcdef0',
          region: this.region,
          availabilityZone: `${this.region}a`,
        }),
        'application/json',
      );
    }
    if (path === '/latest/meta-data/instance-id') return reply(200, 'i-0123456789abcdef0');
    return reply(404, 'Not Found');
  }

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen({ host: '127.0.0.1', port: 0 }, resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}
