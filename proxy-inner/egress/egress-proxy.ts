/**
 * The egress listener kind (default tcp://127.0.0.1:10000): HTTP CONNECT, absolute-form HTTP and
 * SOCKS5 on one port (told apart by the first byte), or any subset of them. The generic Listener
 * accepts; this handles one connection until it is closed.
 */
import http from 'node:http';
import type net from 'node:net';
import { messageOf } from '../../shared/errors/index.js';
import type { ConnectionContext, ConnectionHandler } from '../../shared/listener/types.js';
import type { EgressPolicy } from '../../shared/egress/policy.js';
import type { Address } from '../../shared/transport/index.js';
import { connectionOf, connectionSettled, registerConnection, tunnelBytesOf, type AuditSink } from './attempt.js';
import { handleConnect } from './connect.js';
import type { EgressProto } from '../../shared/audit/record.js';
import type { EgressContext } from './context.js';
import { httpForwarder } from './http-forward.js';
import { handleSocks5 } from './socks5.js';
import { sniffProtocol } from './sniff.js';

export interface EgressProxyOptions {
  listener: string;
  protocols: readonly EgressProto[];
  policy: EgressPolicy;
  /** The outer relay (vsock://parent:17002 in production). */
  relay: Address;
  audit: AuditSink;
  requireSniMatch: boolean;
  /** Reaching the outer plus the outer's resolve and connect. */
  connectTimeoutMs: number;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
}

export function egressProxy(opts: EgressProxyOptions): ConnectionHandler {
  const ctx: EgressContext = {
    listener: opts.listener,
    protocols: new Set(opts.protocols),
    upstream: { policy: opts.policy, relay: { address: opts.relay, timeoutMs: opts.connectTimeoutMs } },
    audit: opts.audit,
    requireSniMatch: opts.requireSniMatch,
    handshakeTimeoutMs: opts.handshakeTimeoutMs,
    idleTimeoutMs: opts.idleTimeoutMs,
  };
  const server = http.createServer({
    // Headers must arrive within the handshake deadline; a body may take as long as it needs.
    headersTimeout: ctx.handshakeTimeoutMs,
    requestTimeout: 0,
    keepAliveTimeout: 5000,
  });
  const failed = (socket: net.Socket, log: ConnectionContext['log']) => (err: unknown) => {
    log.error({ err: messageOf(err) }, 'egress connection failed unexpectedly');
    socket.destroy();
  };
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    handleConnect(ctx, req, socket, head).catch(failed(socket, connectionOf(socket)!.log));
  });
  server.on('request', httpForwarder(ctx));
  server.on('clientError', (_err: Error, socket: net.Socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    socket.destroy();
  });

  const wantsHttp = ctx.protocols.has('http') || ctx.protocols.has('http_connect');
  const wantsSocks = ctx.protocols.has('socks5');
  return async (socket, cctx) => {
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const abort = () => socket.destroy();
    cctx.signal.addEventListener('abort', abort, { once: true });
    registerConnection(socket, cctx);
    try {
      const kind = wantsSocks && wantsHttp ? await sniffProtocol(socket, ctx.handshakeTimeoutMs) : wantsSocks ? 'socks5' : 'http';
      if (kind === 'socks5') {
        await handleSocks5(ctx, socket);
      } else {
        server.emit('connection', socket);
        socket.resume();
      }
    } catch (err) {
      // A client that sent nothing in time, or went away before its first byte.
      cctx.log.debug({ err: messageOf(err) }, 'egress connection closed before a handshake');
      socket.destroy();
    }
    await closed;
    // With the native pump the socket closes at the hand-over while the tunnel goes on: the
    // connection lasts until its last attempt is finished.
    await connectionSettled(socket);
    cctx.signal.removeEventListener('abort', abort);
    const tunnel = tunnelBytesOf(socket);
    return tunnel ? { bytesIn: tunnel.up, bytesOut: tunnel.down } : { bytesIn: socket.bytesRead, bytesOut: socket.bytesWritten };
  };
}
