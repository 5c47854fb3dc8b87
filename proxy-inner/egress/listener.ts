/**
 * One in-enclave egress listener (default tcp://127.0.0.1:10000): HTTP CONNECT, absolute-form
 * HTTP and SOCKS5 on one port (told apart by the first byte), or any subset of them.
 */
import http from 'node:http';
import type net from 'node:net';
import { messageOf } from '../../shared/errors/index.js';
import { logger } from '../../shared/log/logger.js';
import type { EgressPolicy } from '../../shared/egress/policy.js';
import { listen, type Address, type Listening } from '../../shared/transport/index.js';
import type { AuditSink } from './attempt.js';
import { handleConnect } from './connect.js';
import type { EgressContext, EgressProtocol } from './context.js';
import { httpForwarder } from './http-forward.js';
import { handleSocks5 } from './socks5.js';
import { sniffProtocol } from './sniff.js';

const log = logger('egress');

export interface EgressListenerOptions {
  name: string;
  address: Address;
  protocols: readonly EgressProtocol[];
  policy: EgressPolicy;
  /** The outer relay (vsock://parent:17002 in production). */
  relay: Address;
  audit: AuditSink;
  requireSniMatch?: boolean;
  /** Reaching the outer plus the outer's resolve and connect. */
  connectTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  idleTimeoutMs?: number;
  maxConnections?: number;
}

export class EgressListener {
  private listening: Listening | undefined;
  private readonly ctx: EgressContext;
  private readonly http: http.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly opts: EgressListenerOptions) {
    this.ctx = {
      listener: opts.name,
      protocols: new Set(opts.protocols),
      upstream: { policy: opts.policy, relay: { address: opts.relay, timeoutMs: opts.connectTimeoutMs ?? 10_000 } },
      audit: opts.audit,
      requireSniMatch: opts.requireSniMatch ?? false,
      handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 15_000,
      idleTimeoutMs: opts.idleTimeoutMs ?? 0,
      sessions: new Set(),
    };
    this.http = http.createServer({
      // Headers must arrive within the handshake deadline; a body may take as long as it needs.
      headersTimeout: this.ctx.handshakeTimeoutMs,
      requestTimeout: 0,
      keepAliveTimeout: 5000,
    });
    this.http.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      handleConnect(this.ctx, req, socket, head).catch((err: unknown) => this.failed(socket, err));
    });
    this.http.on('request', httpForwarder(this.ctx));
    this.http.on('clientError', (err: Error, socket: net.Socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      socket.destroy();
    });
  }

  get address(): Address | undefined {
    return this.listening?.address;
  }

  async start(): Promise<void> {
    this.listening = await listen(this.opts.address, (s) => this.accept(s), { maxConnections: this.opts.maxConnections });
    log.info({ listener: this.opts.name, address: this.listening.bound, protocols: this.opts.protocols, sni_match: this.ctx.requireSniMatch }, 'egress listener ready');
  }

  async stop(): Promise<void> {
    const closing = this.listening?.close();
    for (const s of this.ctx.sessions) s.abort('shutdown');
    for (const s of this.sockets) s.destroy();
    this.http.closeAllConnections();
    await closing;
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    const { protocols } = this.ctx;
    const wantsHttp = protocols.has('http') || protocols.has('http_connect');
    const route = async () => {
      const kind = protocols.has('socks5') && wantsHttp ? await sniffProtocol(socket, this.ctx.handshakeTimeoutMs) : protocols.has('socks5') ? 'socks5' : 'http';
      if (kind === 'socks5') await handleSocks5(this.ctx, socket);
      else {
        this.http.emit('connection', socket);
        socket.resume();
      }
    };
    route().catch((err: unknown) => this.failed(socket, err));
  }

  private failed(socket: net.Socket, err: unknown): void {
    log.error({ listener: this.opts.name, err: messageOf(err) }, 'egress connection failed unexpectedly');
    socket.destroy();
  }
}
