/**
 * Absolute-form HTTP (`GET http://host/path HTTP/1.1`) forwarded to the destination, with
 * keep-alive on both sides.
 *
 * Each client connection gets its own `http.Server` (Node's strict parser, llhttp, frames the
 * bodies: CL+TE, bad chunking, bare CR/LF are refused there) and its own upstream connections,
 * so one app connection never reuses another's and every handler closes over its connection's
 * state instead of looking it up. Node arms no deadline on a server that never `listen()`s:
 * serveHttpConnection does (the next request's head within `keep_alive_timeout`).
 *
 * The target URL is parsed by hand into the same canonical destination as CONNECT (no WHATWG
 * host magic), Host is regenerated from the target (RFC 9112 §3.2.2), hop-by-hop and proxy
 * headers are dropped, and headers travel as raw name/value arrays (a header named `__proto__`
 * or `constructor` is a header like any other). Every refusal by the parser is audited once.
 */
import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { errnoOf } from '../../shared/errors/index.js';
import { groupOf, present } from '../../shared/util/checked.js';
import { headerPairs } from '../../shared/util/header-pairs.js';
import { canonicalHost, parseAuthority, DestinationError, formatDestination, type Destination } from '../../shared/egress/destination.js';
import { serveHttpConnection } from '../../shared/listener/http-kind.js';
import type { EgressReason } from '../../shared/audit/record.js';
import { Attempt } from './attempt.js';
import type { EgressConnection } from './connection.js';
import type { EgressContext } from './context.js';
import { REASON_HEADER, refusalBody, statusText, type RefusalStatus } from './http-answers.js';
import { MAX_HEAD_BYTES } from './http-head.js';
import { isRefusal, malformedRefusal, openUpstream, RefusedError } from './open-upstream.js';

/** Connection-scoped headers (RFC 9110 §7.6.1) and proxy credentials that never travel on. */
const HOP_BY_HOP = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
  'host',
]);

interface Target {
  dest: Destination;
  path: string;
}

function parseTarget(url: string): Target {
  const m = /^http:\/\/([^/?#]*)([^#]*)$/i.exec(url);
  if (!m) throw new DestinationError('absolute-form http:// URL expected', url);
  const authority = groupOf(m, 1);
  const rest = groupOf(m, 2);
  const path = rest === '' ? '/' : rest;
  if (!path.startsWith('/') && !path.startsWith('?')) throw new DestinationError('bad path', url);
  return { dest: parseAuthority(authority, 80), path: path.startsWith('?') ? `/${path}` : path };
}

/** Raw header pairs minus hop-by-hop ones and those the Connection header names. */
function forwardableHeaders(raw: string[]): string[] {
  const named = new Set<string>();
  for (const [name, value] of headerPairs(raw)) {
    if (name.toLowerCase() === 'connection') for (const t of value.split(',')) named.add(t.trim().toLowerCase());
  }
  const out: string[] = [];
  for (const [name, value] of headerPairs(raw)) {
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || named.has(lower)) continue;
    out.push(name, value);
  }
  return out;
}

function refuse(res: http.ServerResponse, status: RefusalStatus, reason: EgressReason): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = refusalBody(status, reason);
  res.writeHead(status, statusText(status), {
    'content-type': 'text/plain',
    'content-length': Buffer.byteLength(body),
    [REASON_HEADER]: reason,
  });
  res.end(body);
}

/**
 * Upstream connections of one client connection, opened through the relay and policy-checked.
 * Node's Agent pools the sockets and hands them back to each request; `opened` is where the
 * relay's answer for each of them waits for that moment (this connection's sockets only).
 */
class RelayAgent extends http.Agent {
  readonly opened = new Map<Duplex, { destIp: string | null; rule: string | null }>();

  constructor(
    private readonly ctx: EgressContext,
    private readonly connId: string,
  ) {
    super({ keepAlive: true, maxSockets: 4, maxFreeSockets: 4, timeout: 60_000 });
  }

  // The callback form lets the connection be asynchronous (Node's Agent supports both forms).
  override createConnection(options: http.ClientRequestArgs, cb?: (err: Error | null, stream: Duplex) => void): null {
    // Node's Agent always passes the callback; without it there is no one to hand the socket to.
    const done = present(cb, 'createConnection callback');
    let dest: Destination;
    try {
      // The host and port this agent was given are a canonical destination's own text.
      dest = { host: canonicalHost(present(options.host, 'agent request host')), port: Number(options.port) };
    } catch (err) {
      done(err as Error, undefined as unknown as Duplex);
      return null;
    }
    openUpstream(this.ctx, dest, this.connId).then(
      (opened) => {
        if (isRefusal(opened)) {
          done(new RefusedError(opened), undefined as unknown as Duplex);
          return;
        }
        this.opened.set(opened.socket, { destIp: opened.destIp, rule: opened.rule });
        opened.socket.once('close', () => this.opened.delete(opened.socket));
        // Bytes the destination sent before any request are not a response; HTTP servers do not do that.
        if (opened.headDown.length > 0) opened.socket.unshift(opened.headDown);
        // The handshake reader left the socket paused; the HTTP client only adds a 'data' listener.
        opened.socket.resume();
        done(null, opened.socket);
      },
      (err: Error) => done(err, undefined as unknown as Duplex),
    );
    return null;
  }
}

/** The request of this connection whose body is being read: a parser error now is its end. */
interface Reading {
  req: http.IncomingMessage;
  refuse(status: RefusalStatus): void;
}

/** Serve absolute-form HTTP on `conn` until it closes; the first head is already in the socket. */
export function forwardHttp(ctx: EgressContext, conn: EgressConnection): void {
  const { maxHeaders, keepAliveTimeoutMs, handshakeTimeoutMs } = ctx.listener.egress;
  // No Host check by Node (it would answer 400 unaudited): Host is regenerated from the target anyway.
  const server = http.createServer({
    maxHeaderSize: MAX_HEAD_BYTES,
    requestTimeout: 0,
    keepAliveTimeout: keepAliveTimeoutMs,
    requireHostHeader: false,
  });
  // No count limit in Node's parser (past maxHeadersCount, Node 20 truncates silently and Node 22+
  // fails the parse before the request is known): the count is checked below, with the request
  // audited; memory stays bounded by maxHeaderSize.
  server.maxHeadersCount = 0;
  let agent: RelayAgent | undefined;
  let reading: Reading | null = null;
  /** Responses not finished yet (pipelined requests are answered in order). */
  let answering = 0;
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    answering += 1;
    res.once('close', () => {
      answering -= 1;
    });
    const attempt = new Attempt(ctx.deps.audit, conn, 'http');
    if (!ctx.protocols.has('http')) return void (refuse(res, 405, 'protocol_disabled'), attempt.finishDenied('protocol_disabled'));
    if (req.rawHeaders.length / 2 > maxHeaders) {
      // The body (if any) is not read: the connection ends with this answer.
      res.shouldKeepAlive = false;
      refuse(res, 431, 'http_protocol_error');
      attempt.finishDenied('http_protocol_error');
      return;
    }
    let target: Target;
    try {
      target = parseTarget(req.url ?? '');
      if ((req.headersDistinct.host ?? []).length > 1) throw new DestinationError('duplicate Host headers', req.url ?? '');
    } catch (err) {
      if (!(err instanceof DestinationError)) throw err;
      refuse(res, 400, 'malformed_destination');
      attempt.finishRefused(malformedRefusal());
      return;
    }
    attempt.dest = target.dest;
    if (!agent) {
      const a = new RelayAgent(ctx, attempt.connId);
      agent = a;
      conn.socket.once('close', () => a.destroy());
    }
    reading = { req, refuse: forwardRequest(agent, attempt, target, req, res) };
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    const code = err.code ?? '';
    // Not a parser error: the client reset or broke the connection. A request in flight ends
    // as client_gone when its response closes.
    if (!code.startsWith('HPE_')) {
      socket.destroy();
      return;
    }
    const status: RefusalStatus = code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    // The parser marks a request complete as soon as its body is read, before 'end' is emitted.
    const r = reading !== null && !reading.req.complete ? reading : null;
    reading = null;
    if (r) {
      r.refuse(status);
    } else {
      new Attempt(ctx.deps.audit, conn, 'http').finishDenied('http_protocol_error');
      // Behind a pipelined request still being answered, a 400 would land in front of its
      // response: the connection just ends (that request then ends as client_gone).
      if (socket.writable && answering === 0) {
        const body = refusalBody(status, 'http_protocol_error');
        socket.write(
          `HTTP/1.1 ${status} ${statusText(status)}\r\nContent-Type: text/plain\r\n${REASON_HEADER}: http_protocol_error\r\n` +
            `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
      }
    }
    socket.destroySoon();
  });
  serveHttpConnection(server, conn.socket, { headMs: handshakeTimeoutMs, keepAliveMs: keepAliveTimeoutMs });
}

/** Forward one request; returns what ends it when the parser refuses its body. */
function forwardRequest(
  agent: RelayAgent,
  attempt: Attempt,
  target: Target,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): (status: RefusalStatus) => void {
  const hostHeader = target.dest.port === 80 ? formatDestination(target.dest).replace(/:80$/, '') : formatDestination(target.dest);
  let bytesUp = 0;
  let bytesDown = 0;
  let destIp: string | null = null;
  let rule: string | null = null;
  const upstreamReq = http.request({
    agent,
    method: req.method,
    path: target.path,
    host: target.dest.host.text,
    port: target.dest.port,
    headers: [...forwardableHeaders(req.rawHeaders), 'Host', hostHeader],
  });
  upstreamReq.on('socket', (s) => {
    // Sockets are handed over only after the relay answered, fresh or reused alike.
    const o = agent.opened.get(s);
    destIp = o?.destIp ?? null;
    rule = o?.rule ?? null;
  });
  upstreamReq.on('error', (err) => {
    if (err instanceof RefusedError) {
      refuse(res, err.refusal.status, err.refusal.reason);
      attempt.finishRefused(err.refusal);
      return;
    }
    if (attempt.isFinished) return;
    refuse(res, 502, 'upstream_failed');
    attempt.finish({
      decision: 'error',
      reason: 'upstream_failed',
      rule,
      destIp,
      bytesUp,
      bytesDown,
      closedBy: 'upstream',
      closeError: errnoOf(err) ?? 'EIO',
    });
  });
  upstreamReq.on('response', (up) => {
    try {
      res.writeHead(up.statusCode ?? 502, up.statusMessage, forwardableHeaders(up.rawHeaders));
    } catch (err) {
      // Node's writer is stricter than its parser about some header bytes: never let a
      // destination's response throw in here (it would take the process down).
      up.destroy();
      refuse(res, 502, 'upstream_bad_response');
      attempt.finish({
        decision: 'error',
        reason: 'upstream_bad_response',
        rule,
        destIp,
        bytesUp,
        bytesDown,
        closedBy: 'upstream',
        closeError: errnoOf(err) ?? 'EPROTO',
      });
      return;
    }
    up.on('data', (c: Buffer) => {
      bytesDown += c.length;
    });
    up.pipe(res);
    up.on('end', () =>
      attempt.finish({ decision: 'allow', reason: 'allowed_by_rule', rule, destIp, bytesUp, bytesDown, closedBy: 'upstream' }),
    );
    // The destination closed before the response was complete.
    up.on('aborted', () =>
      attempt.finish({
        decision: 'allow',
        reason: 'allowed_by_rule',
        rule,
        destIp,
        bytesUp,
        bytesDown,
        closedBy: 'upstream',
        closeError: 'ECONNRESET',
      }),
    );
  });
  req.on('data', (c: Buffer) => {
    bytesUp += c.length;
  });
  res.on('close', () => {
    if (!res.writableFinished) {
      upstreamReq.destroy();
      attempt.finish({ decision: 'allow', reason: 'client_gone', rule, destIp, bytesUp, bytesDown, closedBy: 'downstream' });
    }
  });
  req.pipe(upstreamReq);
  // Refused after its headers (invalid chunking, a bad chunk size): the request that was being
  // forwarded ends here, audited as what it was, not as a client that went away.
  return (status) => {
    upstreamReq.destroy();
    attempt.finish({ decision: 'deny', reason: 'http_protocol_error', rule, destIp, bytesUp, bytesDown, closedBy: 'downstream' });
    refuse(res, status, 'http_protocol_error');
  };
}
