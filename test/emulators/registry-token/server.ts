/**
 * TEST-ONLY Docker registry token service (the "token" auth of distribution v2) on loopback.
 * `GET /token?service=…&scope=repository:NAME:ACTIONS` with Basic credentials answers
 * `{token, access_token, expires_in, issued_at}`: a JWT (ES256) whose `x5c` header carries the
 * service's certificate, which the registry trusts through its `auth.token.rootcertbundle`. Like
 * a real token service it grants the intersection of what was asked and what the user may do
 * (possibly nothing: the registry then answers `insufficient_scope`), refuses wrong credentials
 * with 401, and treats a request without credentials as anonymous (granted nothing). Every
 * request is recorded (user, scopes asked and granted, status) so tests can assert on the flow.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type RegistryAction = 'pull' | 'push';

export interface TokenUser {
  password: string;
  /** What this user may do in every repository. */
  actions: readonly RegistryAction[];
}

export interface TokenServiceOptions {
  /** The signing key and its certificate (PEM, ECDSA P-256): the registry's rootcertbundle. */
  key: string;
  cert: string;
  users: Record<string, TokenUser>;
  service?: string;
  issuer?: string;
}

export interface TokenRequest {
  user: string | null;
  asked: string[];
  granted: string[];
  status: number;
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

export class RegistryTokenService {
  readonly service: string;
  readonly issuer: string;
  readonly requests: TokenRequest[] = [];
  private readonly server = http.createServer((req, res) => this.handle(req, res));
  private readonly x5c: string;

  constructor(private readonly opts: TokenServiceOptions) {
    this.service = opts.service ?? 'test-registry';
    this.issuer = opts.issuer ?? 'test-token-service';
    this.x5c = new crypto.X509Certificate(opts.cert).raw.toString('base64');
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  get realm(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/token`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** `user` from a Basic header when the password is right; null for none; undefined for wrong ones. */
  private authenticate(header: string | undefined): string | null | undefined {
    if (!header) return null;
    const [user = '', password] = Buffer.from(header.replace(/^Basic /i, ''), 'base64')
      .toString('utf8')
      .split(/:(.*)/s);
    const known = this.opts.users[user];
    return known && password === known.password ? user : undefined;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://token');
    const asked = url.searchParams.getAll('scope');
    const reply = (status: number, body: object, user: string | null, granted: string[] = []) => {
      this.requests.push({ user, asked, granted, status });
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (url.pathname !== '/token') return reply(404, { errors: [{ code: 'NOT_FOUND' }] }, null);
    const user = this.authenticate(req.headers.authorization);
    if (user === undefined) return reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }, null);
    const allowed = user === null ? [] : (this.opts.users[user]?.actions ?? []);
    const access = asked.flatMap((scope) => {
      // repository:NAME:ACTIONS; NAME has no ':' for repositories, but split from both ends anyway.
      const type = scope.slice(0, scope.indexOf(':'));
      const name = scope.slice(scope.indexOf(':') + 1, scope.lastIndexOf(':'));
      const actions = scope
        .slice(scope.lastIndexOf(':') + 1)
        .split(',')
        .filter((a) => (allowed as readonly string[]).includes(a));
      return type === 'repository' && actions.length ? [{ type, name, actions }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', x5c: [this.x5c] };
    const claims = {
      iss: this.issuer,
      sub: user ?? '',
      aud: url.searchParams.get('service') ?? this.service,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: crypto.randomBytes(8).toString('hex'),
      access,
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    // JWS ES256 signatures are r‖s, not DER.
    const signature = crypto.sign('sha256', Buffer.from(signingInput), { key: this.opts.key, dsaEncoding: 'ieee-p1363' });
    const token = `${signingInput}.${b64url(signature)}`;
    reply(
      200,
      { token, access_token: token, expires_in: 300, issued_at: new Date(now * 1000).toISOString() },
      user,
      access.map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`),
    );
  }
}
