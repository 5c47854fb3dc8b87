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
import http2 from 'node:http2';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import { errnoOf, messageOf, ProxyError } from '../../shared/errors/index.js';
import type { ClusterConfig } from '../../shared/config/types.js';
import type {
  ConnectionContext,
  ConnectionHandler,
  ConnectionOutcome,
  NativeHttpPlan,
  NativeHttpRequest,
} from '../../shared/listener/types.js';
import type { Logger } from '../../shared/log/logger.js';
import { receiveProxyHeader } from '../../shared/proxy-protocol/receive.js';
import { headerPairs } from '../../shared/util/header-pairs.js';
import { terminateTls, type TlsContextSource } from '../../shared/tcp-proxy/tcp-proxy.js';
import type { Address } from '../../shared/transport/index.js';
import { type Exchange, http1Exchange, http2Exchange } from './exchange.js';
import { forwardRequest, type ForwardEnd } from './forward.js';
import { type ClientFacts, upstreamRequestHeaders } from './headers.js';
import { HTTP_DURATION_BUCKETS, routeMetrics, type RouteMetrics } from './metrics.js';
import { compileRoutes, type HttpRoute } from './routes.js';
import { carryUpgrade } from './upgrade.js';
import { Upstreams } from './upstream.js';

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

/** An answer the listener writes itself. */
export interface LocalAnswer {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer;
}

/** A path this listener answers itself, before routing (the attestation endpoint), over HTTP/1.1 or HTTP/2 alike. */
export interface LocalEndpoint {
  path: string;
  /** Label for the access log and metrics. */
  route: string;
  answer(method: string, url: string): LocalAnswer;
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
  /** Offer HTTP/2 (ALPN h2) on TLS; requests are forwarded to the app as HTTP/1.1 all the same. */
  http2: boolean;
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

/** The answer to a request Node's parser refused or timed out (400, 408, 431); also what the native engine writes for 408. */
function clientErrorAnswer(status: number): string {
  const body = `${http.STATUS_CODES[status]}\n`;
  return `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`;
}

/** The access-log fields of one request, whichever path served it. */
interface AccessLine {
  method: string;
  host: string;
  path: string;
  route: string;
  status: number;
  bytes_in: number;
  bytes_out: number;
  duration_ms: number;
  client: string | undefined;
  error?: string;
}

/** The access-log line of one request, whichever path served it. */
function accessLine(r: NativeHttpRequest): AccessLine {
  return {
    method: r.method,
    host: r.host,
    path: r.path,
    route: r.route,
    status: r.status,
    bytes_in: r.bytesIn,
    bytes_out: r.bytesOut,
    duration_ms: Math.round(r.durationMs * 1000) / 1000,
    client: r.client,
    ...(r.error ? { error: r.error } : {}),
  };
}

/**
 * The native engine's plan for this listener (plain HTTP/1.1 only: TLS and h2 stay in JS), or
 * undefined when a cluster needs what only the JS path does (a PROXY header to the app).
 */
function nativePlan(
  opts: HttpIngressOptions,
  write: (line: AccessLine, log: Logger) => void,
  metrics: RouteMetrics,
): NativeHttpPlan | undefined {
  if (opts.tls) return undefined;
  const names = [...new Set([...opts.routes.map((r) => r.cluster), ...(opts.defaultCluster ? [opts.defaultCluster] : [])])];
  const defined: ClusterConfig[] = [];
  const firstEndpoints: Address[] = [];
  for (const name of names) {
    const c = opts.clusters.get(name);
    const first = c?.endpoints[0];
    if (!c || !first || c.sendProxyProtocol) return undefined;
    defined.push(c);
    firstEndpoints.push(first);
  }
  const { limits } = opts;
  return {
    clusters: firstEndpoints,
    expectProxyProtocol: opts.expectProxyProtocol,
    connectTimeoutMs: Math.max(...defined.map((c) => c.connectTimeoutMs)),
    options: {
      routes: opts.routes.map((r) => ({
        name: r.name,
        cluster: names.indexOf(r.cluster),
        hosts: r.hosts.map((h) => h.toLowerCase()),
        paths: r.paths,
      })),
      ...(opts.defaultCluster ? { defaultCluster: names.indexOf(opts.defaultCluster) } : {}),
      localPaths: opts.localEndpoints.map((e) => e.path),
      maxHeaderBytes: limits.maxHeaderBytes,
      maxHeaders: limits.maxHeaders,
      headTimeoutMs: limits.headTimeoutMs,
      idleTimeoutMs: limits.idleTimeoutMs,
      keepAliveTimeoutMs: limits.keepAliveTimeoutMs,
      upstreamIdleMs: UPSTREAM_KEEP_ALIVE_MS,
      timeoutAnswer: Buffer.from(clientErrorAnswer(408), 'latin1'),
      badRequestAnswer: Buffer.from(clientErrorAnswer(400), 'latin1'),
      bucketsSeconds: HTTP_DURATION_BUCKETS,
      reasons: http.STATUS_CODES,
      proto: 'http',
    },
    accessLevel: opts.accessLog ? 'info' : 'debug',
    routeSums: (sums) => metrics.add(sums),
    request(r, log, connId) {
      metrics.observe(r.route, r.status, r.durationMs);
      // A level raised after start: the line is not built.
      if (!log.isLevelEnabled(opts.accessLog ? 'info' : 'debug')) return;
      write(accessLine(r), log.child({ conn_id: connId() }));
    },
  };
}

/** How long an idle connection to the app is kept for the next request (undici's pool, the native engine's). */
const UPSTREAM_KEEP_ALIVE_MS = 4000;

export function httpIngress(opts: HttpIngressOptions): ConnectionHandler & { close(): Promise<void> } {
  const { limits } = opts;
  const routeTable = compileRoutes(opts.routes, opts.defaultCluster);
  const metrics = routeMetrics(opts.listener, [...opts.routes.map((r) => r.name), ...(opts.defaultCluster ? ['default'] : [])]);
  const upstreams = new Upstreams(opts.clusters, { keepAliveTimeoutMs: UPSTREAM_KEEP_ALIVE_MS });
  const connections = new WeakMap<Duplex, ConnectionFacts>();
  const localByPath = new Map(opts.localEndpoints.map((e) => [e.path, e]));
  const proto = opts.tls ? 'https' : 'http';

  const write = (line: AccessLine, log: Logger) => {
    if (opts.accessLog) log.info(line, 'http request');
    else log.debug(line, 'http request');
  };

  const record = (facts: ConnectionFacts | undefined, r: RequestRecord) => {
    const durationMs = performance.now() - r.started;
    metrics.observe(r.route, r.status, durationMs);
    if (!facts) return;
    write(accessLine({ ...r, durationMs, client: facts.clientLabel }), facts.ctx.log);
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
  // No count limit in Node's parser: past maxHeadersCount, Node 20 drops fields silently and Node 22+
  // fails the parse (HPE_HEADER_OVERFLOW, before the request line reaches us, so the access line
  // would have no method or path). The count is ours to enforce (tooManyHeaders, 431 with the
  // request named); the parser's memory stays bounded by maxHeaderSize.
  server.maxHeadersCount = 0;
  server.timeout = limits.idleTimeoutMs;
  // Node checks head deadlines only for servers that have emitted 'listening'; this one never listens
  // itself (the Listener accepts), so it is told it does.
  server.emit('listening');

  const tooManyHeaders = (req: http.IncomingMessage) => req.rawHeaders.length / 2 > limits.maxHeaders;

  /** Everything after parsing, for either HTTP version: limits, the listener's own paths, routing, forwarding, the access line. */
  const serve = (x: Exchange, facts: ConnectionFacts | undefined, fieldCount: number) => {
    const r: RequestRecord = {
      method: x.method,
      host: x.host,
      path: pathOf(x.url),
      route: '-',
      status: 0,
      started: performance.now(),
      bytesIn: 0,
      bytesOut: 0,
    };
    const finish = (error?: string, status = x.statusCode()) => {
      const bytes = x.bytes();
      r.status = status;
      r.bytesIn = bytes.in;
      r.bytesOut = bytes.out;
      if (error) r.error = error;
      record(facts, r);
    };
    if (fieldCount > limits.maxHeaders) {
      x.sink.once('close', () => finish('too_many_headers'));
      x.answer(431, { 'content-type': 'text/plain' }, `more than ${limits.maxHeaders} header fields\n`, { close: true });
      return;
    }
    const local = localByPath.get(r.path);
    if (local) {
      r.route = local.route;
      // A body sent to a path we answer ourselves is read and dropped, so the connection stays usable.
      x.body?.resume();
      const a = local.answer(x.method, x.url);
      x.sink.once('close', () => finish());
      x.answer(a.status, a.headers, a.body);
      return;
    }
    const match = routeTable(r.host, r.path);
    if (!match) {
      x.sink.once('close', () => finish('no_route'));
      x.answer(404, { 'content-type': 'text/plain' }, 'no route\n');
      return;
    }
    r.route = match.route;
    const headers = upstreamRequestHeaders(x.rawHeaders, facts?.client ?? { address: undefined, proto }, { keepUpgrade: false });
    forwardRequest(upstreams.pool(match.cluster), x, headers, (end: ForwardEnd) => {
      if (end.kind === 'complete') return finish();
      // nginx's 499: the client closed before a response was written; a default status would mislead.
      if (end.kind === 'client_gone') return finish('client_gone', x.headersSent() ? x.statusCode() : 499);
      finish(end.code);
    });
  };

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    serve(http1Exchange(req, res), connections.get(req.socket), req.rawHeaders.length / 2);
  });

  /** One HTTP/2 session over a TLS connection that chose h2; each stream is one exchange. */
  const serveHttp2 = (conn: tls.TLSSocket, facts: ConnectionFacts) => {
    // A server TLSSocket made by hand (not by tls.Server) keeps `secureConnecting` set after its
    // handshake, and the HTTP/2 session would wait for a 'secureConnect' that only clients emit.
    (conn as tls.TLSSocket & { secureConnecting: boolean }).secureConnecting = false;
    const session = http2.performServerHandshake(conn, {
      settings: { maxHeaderListSize: limits.maxHeaderBytes, maxConcurrentStreams: 128 },
    });
    session.on('error', () => conn.destroy());
    session.setTimeout(limits.idleTimeoutMs, () => session.close());
    session.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
      stream.on('error', () => {});
      if (headers[http2.constants.HTTP2_HEADER_METHOD] === 'CONNECT') {
        stream.respond({ [http2.constants.HTTP2_HEADER_STATUS]: 405 }, { endStream: true });
        return;
      }
      let fields = 0;
      for (const [name] of headerPairs(rawHeaders)) if (!name.startsWith(':')) fields++;
      serve(http2Exchange(stream, headers, rawHeaders), facts, fields);
    });
  };

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const facts = connections.get(socket);
    const started = performance.now();
    const r: RequestRecord = {
      method: req.method ?? '',
      host: req.headers.host ?? '',
      path: pathOf(req.url ?? '/'),
      route: '-',
      status: 0,
      started,
      bytesIn: 0,
      bytesOut: 0,
    };
    const refuse = (status: number, text: string, error: string) => {
      const body = `${text}\n`;
      socket.end(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
      );
      record(facts, { ...r, status, error });
    };
    if (tooManyHeaders(req)) return refuse(431, `more than ${limits.maxHeaders} header fields`, 'too_many_headers');
    const match = routeTable(r.host, r.path);
    if (!match) return refuse(404, 'no route', 'no_route');
    r.route = match.route;
    (socket as net.Socket).setTimeout?.(0);
    const headers = upstreamRequestHeaders(req.rawHeaders, facts?.client ?? { address: undefined, proto }, { keepUpgrade: true });
    const signal = facts?.ctx.signal ?? new AbortController().signal;
    void carryUpgrade({ req, socket, head, headers, cluster: match.cluster, idleTimeoutMs: limits.idleTimeoutMs, signal }, upstreams).then(
      (end) => {
        record(facts, {
          ...r,
          status: end.status,
          bytesIn: end.bytesIn,
          bytesOut: end.bytesOut,
          ...(end.error ? { error: end.error } : {}),
        });
      },
    );
  });

  // CONNECT is not something an ingress does; without this Node would just drop the connection.
  server.on('connect', (req: http.IncomingMessage, socket: Duplex) => {
    socket.end(
      'HTTP/1.1 405 Method Not Allowed\r\nallow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\ncontent-length: 0\r\nconnection: close\r\n\r\n',
    );
    record(connections.get(socket), {
      method: 'CONNECT',
      host: req.headers.host ?? '',
      path: req.url ?? '',
      route: '-',
      status: 405,
      started: performance.now(),
      bytesIn: 0,
      bytesOut: 0,
      error: 'connect_refused',
    });
  });

  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    const facts = connections.get(socket);
    const code = errorCode(err);
    if (code === 'econnreset' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = clientErrorStatus(err);
    socket.end(clientErrorAnswer(status));
    record(facts, {
      method: '-',
      host: '-',
      path: '-',
      route: '-',
      status,
      started: performance.now(),
      bytesIn: 0,
      bytesOut: 0,
      error: code,
    });
  });

  const handler: ConnectionHandler = async (socket: net.Socket, ctx: ConnectionContext): Promise<ConnectionOutcome> => {
    // A connection the native engine served first: its PROXY header is already consumed.
    let clientAddress = ctx.resumed ? ctx.resumed.clientAddress : socket.remoteAddress;
    let clientPort = ctx.resumed ? ctx.resumed.clientPort : socket.remotePort;
    let head: Buffer = Buffer.alloc(0);
    const fail = (reason: string, err: unknown): ConnectionOutcome => {
      const code = err instanceof ProxyError ? err.code : (errnoOf(err) ?? 'error');
      ctx.metrics.error(code);
      ctx.log.warn({ reason, code, error: messageOf(err) }, 'connection not served');
      socket.destroy();
      return { bytesIn: 0, bytesOut: 0 };
    };
    if (opts.expectProxyProtocol && !ctx.resumed) {
      try {
        const received = await receiveProxyHeader(socket);
        if (received.addresses) {
          clientAddress = received.addresses.source.address;
          clientPort = received.addresses.source.port;
        }
        head = received.rest;
      } catch (err) {
        ctx.metrics.rejected('proxy_protocol');
        return fail('bad PROXY protocol header', err);
      }
    }
    let conn: net.Socket | tls.TLSSocket = socket;
    if (opts.tls) {
      try {
        conn = await terminateTls(socket, await opts.tls(), head, opts.http2 ? ['h2', 'http/1.1'] : undefined);
      } catch (err) {
        ctx.metrics.rejected('tls');
        return fail('TLS handshake', err);
      }
    }
    const clientLabel =
      clientAddress === undefined
        ? undefined
        : clientAddress.includes(':')
          ? `[${clientAddress}]:${clientPort}`
          : `${clientAddress}:${clientPort}`;
    const facts: ConnectionFacts = { client: { address: clientAddress, proto }, clientLabel, ctx };
    connections.set(conn, facts);
    return new Promise<ConnectionOutcome>((resolve) => {
      const onAbort = () => conn.destroy();
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      conn.once('close', () => {
        ctx.signal.removeEventListener('abort', onAbort);
        resolve({ bytesIn: conn.bytesRead, bytesOut: conn.bytesWritten });
      });
      if (conn !== socket) socket.once('close', () => conn.destroy());
      if ('alpnProtocol' in conn && conn.alpnProtocol === 'h2') {
        serveHttp2(conn, facts);
        return;
      }
      // Bytes the PROXY header parse read past (TLS took them above): the HTTP parser must see them first.
      if (!opts.tls && head.length > 0) conn.unshift(head);
      server.emit('connection', conn);
      conn.resume();
    });
  };
  const native = nativePlan(opts, write, metrics);
  return Object.assign(handler, { close: () => upstreams.close() }, native ? { nativeHttp: native } : {});
}
