/**
 * The HTTP ingress listener kind (inner side): vsock from the outer → [PROXY v2] → [TLS] → HTTP/1.1
 * parsed by Node's strict parser → a route (host and path globs) → the app's cluster over kept-alive
 * connections (undici), with Upgrades carried through to the pump.
 *
 * Why parse at all, when the TCP kind pumps bytes: routing by host and path, forwarding headers the
 * app can trust, limits and deadlines with precise statuses, and an access line per request. Node's
 * parser (llhttp, lenient flags off) refuses the smuggling shapes — CL with TE, duplicate or bad
 * Content-Length, bad chunk sizes, obs-fold, bare LF — before any byte reaches the app, and each
 * side's framing is re-generated, never passed through.
 *
 * Node's HTTP server never listens here: the generic Listener accepts (limits, metrics, drain) and
 * each connection is emitted into one `http.Server` per listener. The per-connection facts (the
 * client's address from PROXY v2, http or https, the connection's logger) are kept in a WeakMap keyed
 * by the socket Node hands back in every request, because `http.Server` offers no other way to pass
 * them; the entry dies with the socket.
 */
import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import { errnoOf, messageOf, ProxyError } from '../../shared/errors/index.js';
import type { ClusterConfig } from '../../shared/config/types.js';
import type { ConnectionContext, ConnectionHandler, ConnectionOutcome } from '../../shared/listener/types.js';
import { MAX_HEADER_BYTES, parseProxyHeader } from '../../shared/proxy-protocol/v2.js';
import { terminateTls, type TlsContextSource } from '../../shared/tcp-proxy/tcp-proxy.js';
import { readPrefix } from '../../shared/util/read-prefix.js';
import { forwardRequest, type ForwardEnd } from './forward.js';
import { type ClientFacts, upstreamRequestHeaders } from './headers.js';
import { routeMetrics } from './metrics.js';
import { compileRoutes, type HttpRoute } from './routes.js';
import { carryUpgrade } from './upgrade.js';
import { Upstreams } from './upstream.js';

const PROXY_HEADER_TIMEOUT_MS = 5000;

export interface HttpLimits {
  /** Request line + headers, bytes; larger → 431 (Node's maxHeaderSize). */
  maxHeaderBytes: number;
  /** Header fields per request; more → 431. */
  maxHeaders: number;
  /** From a request's first byte to the end of its head; slower → 408. */
  headTimeoutMs: number;
  /** No byte either way for this long, mid-request or mid-response → the connection is closed. */
  idleTimeoutMs: number;
  /** A kept-alive client connection with no request in flight is closed after this long. */
  keepAliveTimeoutMs: number;
}

/** A request this listener answers itself, before routing (the attestation endpoint). */
export interface LocalEndpoint {
  path: string;
  /** Label for the access log and metrics. */
  route: string;
  handle: http.RequestListener;
}

export interface HttpIngressOptions {
  listener: string;
  routes: HttpRoute[];
  /** Where requests no route matches go; none → 404. */
  defaultCluster: string | undefined;
  clusters: Map<string, ClusterConfig>;
  expectProxyProtocol: boolean;
  /** Terminate TLS with this identity. */
  tls: TlsContextSource | undefined;
  localEndpoints: LocalEndpoint[];
  limits: HttpLimits;
  accessLog: boolean;
}

/** What the listener knows about one client connection. */
interface ConnectionFacts {
  client: ClientFacts;
  /** `address:port` for the access log. */
  clientLabel: string | undefined;
  ctx: ConnectionContext;
}

/** One access-log line (and the route metrics) per request, whatever its outcome. */
interface RequestRecord {
  method: string;
  host: string;
  path: string;
  route: string;
  status: number;
  started: number;
  bytesIn: number;
  bytesOut: number;
  error?: string;
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

function clientErrorStatus(err: Error & { code?: string }): number {
  if (err.code === 'HPE_HEADER_OVERFLOW') return 431;
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 408;
  return 400;
}

function errorCode(err: Error & { code?: string }): string {
  return (err.code ?? errnoOf(err) ?? 'bad_request').toLowerCase();
}

export function httpIngress(opts: HttpIngressOptions): ConnectionHandler & { close(): Promise<void> } {
  const { limits } = opts;
  const routeTable = compileRoutes(opts.routes, opts.defaultCluster);
  const metrics = routeMetrics(opts.listener, [...opts.routes.map((r) => r.name), ...(opts.defaultCluster ? ['default'] : [])]);
  const upstreams = new Upstreams(opts.clusters, { keepAliveTimeoutMs: 4000 });
  const connections = new WeakMap<Duplex, ConnectionFacts>();
  const localByPath = new Map(opts.localEndpoints.map((e) => [e.path, e]));
  const proto = opts.tls ? 'https' : 'http';

  const record = (facts: ConnectionFacts | undefined, r: RequestRecord) => {
    const durationMs = performance.now() - r.started;
    metrics.observe(r.route, r.status, durationMs);
    if (!facts) return;
    const line = {
      method: r.method, host: r.host, path: r.path, route: r.route, status: r.status, bytes_in: r.bytesIn, bytes_out: r.bytesOut,
      duration_ms: Math.round(durationMs * 1000) / 1000, client: facts.clientLabel, ...(r.error ? { error: r.error } : {}),
    };
    if (opts.accessLog) facts.ctx.log.info(line, 'http request');
    else facts.ctx.log.debug(line, 'http request');
  };

  const server = http.createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    // Keep the request body deadline off: streaming uploads are bounded by the idle timeout instead.
    requestTimeout: 0,
    headersTimeout: limits.headTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.headTimeoutMs / 4))),
    noDelay: true,
  });
  // One more than the limit, so that "too many" is visible (Node silently drops fields past maxHeadersCount).
  server.maxHeadersCount = limits.maxHeaders + 1;
  server.timeout = limits.idleTimeoutMs;
  // Node checks head deadlines only for servers that have emitted 'listening'; this one never listens
  // itself (the Listener accepts), so it is told it does.
  server.emit('listening');

  const tooManyHeaders = (req: http.IncomingMessage) => req.rawHeaders.length / 2 > limits.maxHeaders;

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket;
    const facts = connections.get(socket);
    const started = performance.now();
    const readAtStart = socket.bytesRead;
    const writtenAtStart = socket.bytesWritten;
    const url = req.url ?? '/';
    const r: RequestRecord = { method: req.method ?? '', host: req.headers.host ?? '', path: pathOf(url), route: '-', status: 0, started, bytesIn: 0, bytesOut: 0 };
    const finish = (error?: string, status = res.statusCode) => {
      r.status = status;
      r.bytesIn = socket.bytesRead - readAtStart;
      r.bytesOut = socket.bytesWritten - writtenAtStart;
      if (error) r.error = error;
      record(facts, r);
    };
    if (tooManyHeaders(req)) {
      res.writeHead(431, { 'content-type': 'text/plain', connection: 'close' }).end(`more than ${limits.maxHeaders} header fields\n`);
      res.once('finish', () => finish('too_many_headers'));
      return;
    }
    const local = localByPath.get(r.path);
    if (local) {
      r.route = local.route;
      res.once('close', () => finish());
      local.handle(req, res);
      return;
    }
    const match = routeTable(r.host, r.path);
    if (!match) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('no route\n');
      res.once('finish', () => finish('no_route'));
      return;
    }
    r.route = match.route;
    const headers = upstreamRequestHeaders(req.rawHeaders, facts?.client ?? { address: undefined, proto }, { keepUpgrade: false });
    forwardRequest(upstreams.pool(match.cluster), req, res, headers, (end: ForwardEnd) => {
      if (end.kind === 'complete') return finish();
      // nginx's 499: the client closed before a response was written; Node's default 200 would mislead.
      if (end.kind === 'client_gone') return finish('client_gone', res.headersSent ? res.statusCode : 499);
      finish(end.code);
    });
  });

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const facts = connections.get(socket);
    const started = performance.now();
    const r: RequestRecord = { method: req.method ?? '', host: req.headers.host ?? '', path: pathOf(req.url ?? '/'), route: '-', status: 0, started, bytesIn: 0, bytesOut: 0 };
    const refuse = (status: number, text: string, error: string) => {
      const body = `${text}\n`;
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
      record(facts, { ...r, status, error });
    };
    if (tooManyHeaders(req)) return refuse(431, `more than ${limits.maxHeaders} header fields`, 'too_many_headers');
    const match = routeTable(r.host, r.path);
    if (!match) return refuse(404, 'no route', 'no_route');
    r.route = match.route;
    (socket as net.Socket).setTimeout?.(0);
    const headers = upstreamRequestHeaders(req.rawHeaders, facts?.client ?? { address: undefined, proto }, { keepUpgrade: true });
    const signal = facts?.ctx.signal ?? new AbortController().signal;
    void carryUpgrade({ req, socket, head, headers, cluster: match.cluster, idleTimeoutMs: limits.idleTimeoutMs, signal }, upstreams).then((end) => {
      record(facts, { ...r, status: end.status, bytesIn: end.bytesIn, bytesOut: end.bytesOut, ...(end.error ? { error: end.error } : {}) });
    });
  });

  // CONNECT is not something an ingress does; without this Node would just drop the connection.
  server.on('connect', (req: http.IncomingMessage, socket: Duplex) => {
    socket.end('HTTP/1.1 405 Method Not Allowed\r\nallow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    record(connections.get(socket), { method: 'CONNECT', host: req.headers.host ?? '', path: req.url ?? '', route: '-', status: 405, started: performance.now(), bytesIn: 0, bytesOut: 0, error: 'connect_refused' });
  });

  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    const facts = connections.get(socket);
    const code = errorCode(err);
    if (code === 'econnreset' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = clientErrorStatus(err);
    const body = `${http.STATUS_CODES[status]}\n`;
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
    record(facts, { method: '-', host: '-', path: '-', route: '-', status, started: performance.now(), bytesIn: 0, bytesOut: 0, error: code });
  });

  const handler: ConnectionHandler = async (socket: net.Socket, ctx: ConnectionContext): Promise<ConnectionOutcome> => {
    let clientAddress = socket.remoteAddress;
    let clientPort = socket.remotePort;
    let head: Buffer = Buffer.alloc(0);
    const fail = (reason: string, err: unknown): ConnectionOutcome => {
      const code = err instanceof ProxyError ? err.code : errnoOf(err) ?? 'error';
      ctx.metrics.error(code);
      ctx.log.warn({ reason, code, error: messageOf(err) }, 'connection not served');
      socket.destroy();
      return { bytesIn: 0, bytesOut: 0 };
    };
    if (opts.expectProxyProtocol) {
      try {
        const { value, rest } = await readPrefix(socket, parseProxyHeader, { timeoutMs: PROXY_HEADER_TIMEOUT_MS, maxBytes: MAX_HEADER_BYTES, what: 'PROXY v2 header' });
        if ('source' in value) {
          clientAddress = value.source.address;
          clientPort = value.source.port;
        }
        head = rest;
      } catch (err) {
        ctx.metrics.rejected('proxy_protocol');
        return fail('bad PROXY protocol header', err);
      }
    }
    let conn: net.Socket | tls.TLSSocket = socket;
    if (opts.tls) {
      try {
        conn = await terminateTls(socket, await opts.tls(), head);
      } catch (err) {
        ctx.metrics.rejected('tls');
        return fail('TLS handshake', err);
      }
    } else if (head.length > 0) {
      // Bytes the PROXY header parse read past: the HTTP parser must see them first.
      socket.unshift(head);
    }
    const clientLabel = clientAddress === undefined ? undefined : clientAddress.includes(':') ? `[${clientAddress}]:${clientPort}` : `${clientAddress}:${clientPort}`;
    connections.set(conn, { client: { address: clientAddress, proto }, clientLabel, ctx });
    return new Promise<ConnectionOutcome>((resolve) => {
      const onAbort = () => conn.destroy();
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      conn.once('close', () => {
        ctx.signal.removeEventListener('abort', onAbort);
        resolve({ bytesIn: conn.bytesRead, bytesOut: conn.bytesWritten });
      });
      if (conn !== socket) socket.once('close', () => conn.destroy());
      server.emit('connection', conn);
      conn.resume();
    });
  };
  return Object.assign(handler, { close: () => upstreams.close() });
}
