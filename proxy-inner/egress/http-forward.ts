/**
 * Absolute-form HTTP (`GET http://host/path HTTP/1.1`) forwarded to the destination, with
 * keep-alive on both sides.
 *
 * The request is parsed by Node's strict parser (CL+TE, bad chunking, bare CR/LF are refused
 * there), the target URL is parsed by hand into the same canonical destination as CONNECT (no
 * WHATWG host magic), Host is regenerated from the target (RFC 9112 §3.2.2), hop-by-hop and
 * proxy headers are dropped, and each client connection gets its own upstream connections so
 * that one app connection never reuses another's.
 */
import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { errnoOf } from '../../shared/errors/index.js';
import { parseAuthority, DestinationError, formatDestination, type Destination } from '../../shared/egress/destination.js';
import { Attempt } from './attempt.js';
import type { EgressContext } from './context.js';
import { refusalBody, statusText, type RefusalStatus } from './http-answers.js';
import { isRefusal, malformedRefusal, openUpstream, RefusedError } from './open-upstream.js';

/** Connection-scoped headers (RFC 9110 §7.6.1) and proxy credentials that never travel on. */
const HOP_BY_HOP = new Set(['connection', 'proxy-connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'host']);

interface Target { dest: Destination; path: string }

function parseTarget(url: string): Target {
  const m = /^http:\/\/([^/?#]*)([^#]*)$/i.exec(url);
  if (!m) throw new DestinationError('absolute-form http:// URL expected', url);
  const path = m[2] === '' ? '/' : m[2]!;
  if (!path.startsWith('/') && !path.startsWith('?')) throw new DestinationError('bad path', url);
  return { dest: parseAuthority(m[1]!, 80), path: path.startsWith('?') ? `/${path}` : path };
}

/** Raw header pairs minus hop-by-hop ones and those the Connection header names. */
function forwardableHeaders(raw: string[]): string[] {
  const named = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'connection') for (const t of raw[i + 1]!.split(',')) named.add(t.trim().toLowerCase());
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || named.has(name)) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

function pairsToHeaders(pairs: string[]): Record<string, string | string[]> {
  const h: Record<string, string | string[]> = {};
  for (let i = 0; i < pairs.length; i += 2) {
    const k = pairs[i]!;
    const prev = h[k];
    h[k] = prev === undefined ? pairs[i + 1]! : [...(Array.isArray(prev) ? prev : [prev]), pairs[i + 1]!];
  }
  return h;
}

function refuse(res: http.ServerResponse, status: RefusalStatus): void {
  const body = refusalBody(status);
  if (res.headersSent) { res.destroy(); return; }
  res.writeHead(status, statusText(status), { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** What the relay reported for each upstream socket, for the audit record of every request on it. */
const openedOf = new WeakMap<net.Socket, { destIp: string | null; rule: string | null }>();

/** Upstream connections for one client connection: opened through the relay, policy-checked. */
class RelayAgent extends http.Agent {
  constructor(private readonly ctx: EgressContext, private readonly connId: string) {
    super({ keepAlive: true, maxSockets: 4, maxFreeSockets: 4, timeout: 60_000 });
  }

  // The callback form lets the connection be asynchronous (Node's Agent supports both forms).
  override createConnection(options: http.ClientRequestArgs, cb?: (err: Error | null, stream: Duplex) => void): null {
    const dest = (options as { dest: Destination }).dest;
    const done = cb!;
    openUpstream(this.ctx.upstream, dest, this.connId).then((opened) => {
      if (isRefusal(opened)) { done(new RefusedError(opened), undefined as unknown as Duplex); return; }
      openedOf.set(opened.socket, { destIp: opened.destIp, rule: opened.rule });
      // Bytes the destination sent before any request are not a response; HTTP servers do not do that.
      if (opened.headDown.length > 0) opened.socket.unshift(opened.headDown);
      // The handshake reader left the socket paused; the HTTP client only adds a 'data' listener.
      opened.socket.resume();
      done(null, opened.socket);
    }, (err: Error) => done(err, undefined as unknown as Duplex));
    return null;
  }
}

export function httpForwarder(ctx: EgressContext): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  const agents = new WeakMap<net.Socket, RelayAgent>();
  return (req, res) => {
    const client = req.socket;
    const attempt = new Attempt(ctx.audit, ctx.listener, 'http', client);
    const deny = (status: RefusalStatus, reason: string) => {
      refuse(res, status);
      attempt.finish({ decision: 'deny', reason, rule: null, destIp: null, bytesUp: 0, bytesDown: 0, closedBy: null });
    };
    if (!ctx.protocols.has('http')) return deny(405, 'protocol_disabled');
    let target: Target;
    try {
      target = parseTarget(req.url ?? '');
      if ((req.headersDistinct.host ?? []).length > 1) throw new DestinationError('duplicate Host headers', req.url ?? '');
    } catch (err) {
      if (!(err instanceof DestinationError)) throw err;
      refuse(res, 400);
      attempt.finishRefused(malformedRefusal());
      return;
    }
    attempt.dest = target.dest;
    let agent = agents.get(client);
    if (!agent) {
      agent = new RelayAgent(ctx, attempt.connId);
      agents.set(client, agent);
      const a = agent;
      client.once('close', () => a.destroy());
    }
    const hostHeader = target.dest.port === 80 ? formatDestination(target.dest).replace(/:80$/, '') : formatDestination(target.dest);
    let bytesUp = 0;
    let bytesDown = 0;
    let destIp: string | null = null;
    let rule: string | null = null;
    const upstreamReq = http.request({
      agent, method: req.method, path: target.path, host: target.dest.host.text, port: target.dest.port,
      headers: { ...pairsToHeaders(forwardableHeaders(req.rawHeaders)), host: hostHeader },
      dest: target.dest,
    } as http.RequestOptions);
    upstreamReq.on('socket', (s) => {
      // Sockets are handed over only after the relay answered, fresh or reused alike.
      const o = openedOf.get(s);
      destIp = o?.destIp ?? null;
      rule = o?.rule ?? null;
    });
    upstreamReq.on('error', (err) => {
      if (err instanceof RefusedError) {
        refuse(res, err.refusal.status);
        attempt.finishRefused(err.refusal);
        return;
      }
      if (res.headersSent) res.destroy();
      else refuse(res, 502);
      attempt.finish({ decision: 'error', reason: 'upstream_failed', rule, destIp, bytesUp, bytesDown, closedBy: 'upstream', closeError: errnoOf(err) ?? 'EIO' });
    });
    upstreamReq.on('response', (up) => {
      try {
        res.writeHead(up.statusCode ?? 502, up.statusMessage, forwardableHeaders(up.rawHeaders));
      } catch (err) {
        // Node's writer is stricter than its parser about some header bytes: never let a
        // destination's response throw in here (it would take the process down).
        up.destroy();
        refuse(res, 502);
        attempt.finish({ decision: 'error', reason: 'upstream_bad_response', rule, destIp, bytesUp, bytesDown, closedBy: 'upstream', closeError: errnoOf(err) ?? 'EPROTO' });
        return;
      }
      up.on('data', (c: Buffer) => { bytesDown += c.length; });
      up.pipe(res);
      up.on('end', () => attempt.finish({ decision: 'allow', reason: 'allowed_by_rule', rule, destIp, bytesUp, bytesDown, closedBy: 'upstream' }));
      // The destination closed before the response was complete.
      up.on('aborted', () => attempt.finish({ decision: 'allow', reason: 'allowed_by_rule', rule, destIp, bytesUp, bytesDown, closedBy: 'upstream', closeError: 'ECONNRESET' }));
    });
    req.on('data', (c: Buffer) => { bytesUp += c.length; });
    res.on('close', () => {
      if (!res.writableFinished) {
        upstreamReq.destroy();
        attempt.finish({ decision: 'allow', reason: 'client_gone', rule, destIp, bytesUp, bytesDown, closedBy: 'downstream' });
      }
    });
    req.pipe(upstreamReq);
  };
}
