/**
 * The TCP proxy listener kind (both sides): accept → [PROXY v2 header in] → connect the cluster
 * → [PROXY v2 header out] → [TLS termination, inner only] → pump.
 *
 * The outer's ingress (TCP → vsock) and the inner's ingress (vsock → app) are both this, differing
 * only in config: the outer's cluster sends a PROXY header, the inner's listener expects one.
 */
import type net from 'node:net';
import tls from 'node:tls';
import fs from 'node:fs';
import { errnoOf, messageOf, ProxyError } from '../errors/index.js';
import type { ClusterConfig, ListenerConfig } from '../config/types.js';
import { connectCluster } from '../cluster/connect.js';
import { unredactedLogger, type Logger } from '../log/logger.js';
import type { ClosedConnection, ConnectionContext, ConnectionHandler, ConnectionOutcome } from '../listener/types.js';
import { formatAddress } from '../transport/index.js';
import { formatHostPort } from '../transport/address.js';
import { receiveProxyHeader } from '../proxy-protocol/receive.js';
import { encodeProxyHeader, type Endpoint } from '../proxy-protocol/v2.js';
import { activePump, jsPump, type Pump } from '../pump/index.js';
import { prependedSocket } from '../util/prepended-socket.js';
import { pemSecureContext, type TlsContextSource } from '../tls/identity.js';

export type { TlsContextSource } from '../tls/identity.js';

const TLS_HANDSHAKE_TIMEOUT_MS = 15_000;

export interface TcpProxyOptions {
  listener: ListenerConfig;
  cluster: ClusterConfig;
  /** Terminate TLS with this identity (inner listeners with `tls`). */
  tls?: TlsContextSource;
  /** How long a TLS handshake may take (tests shorten it). */
  tlsHandshakeTimeoutMs?: number;
}

function peerOf(socket: net.Socket): Endpoint | undefined {
  return socket.remoteAddress && socket.remotePort !== undefined ? { address: socket.remoteAddress, port: socket.remotePort } : undefined;
}

function localOf(socket: net.Socket): Endpoint | undefined {
  return socket.localAddress && socket.localPort !== undefined ? { address: socket.localAddress, port: socket.localPort } : undefined;
}

function describe(e: Endpoint | undefined): string | undefined {
  return e ? formatHostPort(e.address, e.port) : undefined;
}

/** A TLS identity from PEM files, read now: a missing or bad key stops the process before it listens. */
export function tlsContextFromFiles(certificate: string, privateKey: string): TlsContextSource {
  const context = pemSecureContext({ certificate: fs.readFileSync(certificate), key: fs.readFileSync(privateKey) });
  return () => Promise.resolve(context);
}

/**
 * Server-side TLS over an accepted socket; resolves with the plaintext side once the handshake is
 * done. `alpn`: the application protocols offered, in preference order (HTTP listeners: h2).
 */
export function terminateTls(
  socket: net.Socket,
  context: tls.SecureContext,
  head: Buffer,
  alpn?: string[],
  timeoutMs = TLS_HANDSHAKE_TIMEOUT_MS,
): Promise<tls.TLSSocket> {
  const secure = new tls.TLSSocket(head.length > 0 ? prependedSocket(socket, head) : socket, {
    isServer: true,
    secureContext: context,
    ...(alpn ? { ALPNProtocols: alpn } : {}),
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      secure.destroy();
      reject(new ProxyError('tls_handshake_timeout', `no TLS handshake within ${timeoutMs} ms`));
    }, timeoutMs);
    secure.once('secure', () => {
      clearTimeout(timer);
      secure.pause();
      resolve(secure);
    });
    secure.once('error', (err) => {
      clearTimeout(timer);
      reject(new ProxyError('tls_handshake_failed', `TLS handshake failed: ${messageOf(err)}`, {}, { cause: err }));
    });
    socket.resume();
  });
}

/** The access-log line of a closed connection, written alike for the JS path and the fast path. */
function logClosed(log: Logger, accessLog: boolean, upstream: string, c: ClosedConnection): void {
  const level = accessLog ? 'info' : 'debug';
  if (!log.isLevelEnabled(level)) return;
  const line = {
    conn_id: c.connId,
    client: c.client,
    upstream,
    bytes_in: c.bytesIn,
    bytes_out: c.bytesOut,
    duration_ms: c.durationMs,
    closed_by: c.closedBy,
    ...(c.error ? { error: c.error.code, error_side: c.error.side } : {}),
  };
  log[level](line, 'connection closed');
}

export function tcpProxy(opts: TcpProxyOptions): ConnectionHandler {
  const { listener, cluster, tls: tlsContext } = opts;
  const handshakeTimeoutMs = opts.tlsHandshakeTimeoutMs ?? TLS_HANDSHAKE_TIMEOUT_MS;
  // Access-log lines hold only our own numbers and addresses: no redaction pass (shared/log).
  const accessLog = unredactedLogger('listener', { listener: listener.name });

  const handler: ConnectionHandler = async (socket: net.Socket, ctx: ConnectionContext): Promise<ConnectionOutcome> => {
    let client = peerOf(socket);
    // Where the client connected to: this socket's address, or the original one from a received
    // PROXY header (a Unix/vsock leg has no IP address of its own to report).
    let destination = localOf(socket);
    let head: Buffer = Buffer.alloc(0);
    const fail = (reason: string, err: unknown): ConnectionOutcome => {
      const code = err instanceof ProxyError ? err.code : (errnoOf(err) ?? 'error');
      ctx.metrics.error(code);
      ctx.log.warn({ client: describe(client), reason, code, error: messageOf(err) }, 'connection not proxied');
      socket.destroy();
      return { bytesIn: 0, bytesOut: 0 };
    };

    if (listener.expectProxyProtocol) {
      try {
        const received = await receiveProxyHeader(socket);
        if (received.addresses) {
          client = received.addresses.source;
          destination = received.addresses.destination;
        }
        head = received.rest;
      } catch (err) {
        ctx.metrics.rejected('proxy_protocol');
        return fail('bad PROXY protocol header', err);
      }
    }

    let downstream: net.Socket = socket;
    let pump: Pump = activePump();
    if (tlsContext) {
      try {
        downstream = await terminateTls(socket, await tlsContext(), head, undefined, handshakeTimeoutMs);
        head = Buffer.alloc(0);
        // Decrypted bytes exist only in JS; the kernel pump cannot carry them.
        pump = jsPump;
      } catch (err) {
        ctx.metrics.rejected('tls');
        return fail('TLS handshake', err);
      }
    }

    let upstream: net.Socket;
    let endpoint: string;
    try {
      ({ socket: upstream, endpoint } = await connectCluster(cluster, ctx.signal));
    } catch (err) {
      return fail(`cannot reach cluster ${cluster.name}`, err);
    }
    upstream.on('error', () => {});
    if (socket.destroyed) {
      upstream.destroy();
      return fail(
        'client went away while connecting upstream',
        new ProxyError('client_gone', 'client closed before the upstream connection was ready'),
      );
    }

    const headUp = cluster.sendProxyProtocol ? Buffer.concat([encodeProxyHeader(client, destination), head]) : head;
    ctx.established();
    const session = pump.run(downstream, upstream, { headUp, idleTimeoutMs: listener.idleTimeoutMs });
    const onAbort = () => session.abort('drain deadline');
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    const result = await session.done;
    ctx.signal.removeEventListener('abort', onAbort);

    // The PROXY header is ours, not the client's: it does not count as client bytes.
    const bytesIn = result.bytesUp - (cluster.sendProxyProtocol ? headUp.length - head.length : 0);
    if (result.error) ctx.metrics.error(result.error.code);
    ctx.metrics.pumped(result.path);
    logClosed(accessLog, listener.accessLog, endpoint, {
      connId: ctx.id,
      client: describe(client),
      bytesIn,
      bytesOut: result.bytesDown,
      durationMs: result.durationMs,
      closedBy: result.closedBy,
      ...(result.error ? { error: { code: result.error.code, side: result.error.side } } : {}),
    });
    return { bytesIn, bytesOut: result.bytesDown };
  };
  // Everything can run on the native fast path; TLS is terminated there too (pump threads).
  const first = cluster.endpoints[0];
  if (first) {
    const endpointText = formatAddress(first);
    handler.passThrough = {
      endpoint: first,
      endpointText,
      expectProxyProtocol: listener.expectProxyProtocol,
      sendProxyProtocol: cluster.sendProxyProtocol,
      idleTimeoutMs: listener.idleTimeoutMs,
      connectTimeoutMs: cluster.connectTimeoutMs,
      logsEveryConnection: () => accessLog.isLevelEnabled(listener.accessLog ? 'info' : 'debug'),
      closed: (c) => logClosed(accessLog, listener.accessLog, endpointText, c),
      ...(tlsContext ? { tls: { context: tlsContext, handshakeTimeoutMs, clusterName: cluster.name } } : {}),
    };
  }
  return handler;
}
