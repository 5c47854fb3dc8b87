/**
 * A connection kept to a peer that may come and go — the inner's channels to the outer (status,
 * audit, logs), the outer's syslog sink: dial, and after any failure or loss dial again with
 * exponential backoff, until stopped. The peer may start late, restart, or be slow; the owners
 * only see "connected" and "lost" and decide what to (re)send.
 */
import type net from 'node:net';
import { messageOf } from '../errors/index.js';
import type { Logger } from '../log/logger.js';
import { connect, formatAddress, type Address } from './index.js';

export interface RedialOptions {
  address: Address;
  /** Logged with connection changes: "audit stream", "status channel", … */
  what: string;
  log: Logger;
  connectTimeoutMs?: number;
  retryMinMs?: number;
  retryMaxMs?: number;
  /** A fresh connection: attach handlers and send what the peer needs. */
  onConnected(socket: net.Socket): void;
  /** The connection closed (not called after stop()). */
  onLost?(): void;
  /** How to open the connection; `connect(address)` by default (the syslog sink adds TLS). */
  dial?(timeoutMs: number): Promise<net.Socket>;
}

export class Redialer {
  private readonly opts: RedialOptions & Required<Pick<RedialOptions, 'connectTimeoutMs' | 'retryMinMs' | 'retryMaxMs'>>;
  private current: net.Socket | null = null;
  private retryMs: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;

  constructor(opts: RedialOptions) {
    this.opts = { connectTimeoutMs: 2000, retryMinMs: 100, retryMaxMs: 2000, ...opts };
    this.retryMs = this.opts.retryMinMs;
  }

  get socket(): net.Socket | null {
    return this.current;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.dial();
  }

  /** Stop redialling; the current connection, if any, is left to the caller (see `socket`). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Stop redialling and close the connection, letting what was written leave first (bounded). */
  async close(timeoutMs: number): Promise<void> {
    this.stop();
    const socket = this.current;
    if (!socket || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      socket.end(() => {
        clearTimeout(t);
        resolve();
      });
    });
    socket.destroy();
  }

  private async dial(): Promise<void> {
    if (this.stopped) return;
    let socket: net.Socket;
    try {
      socket = this.opts.dial
        ? await this.opts.dial(this.opts.connectTimeoutMs)
        : await connect(this.opts.address, { timeoutMs: this.opts.connectTimeoutMs });
    } catch (err) {
      this.opts.log.debug({ err: messageOf(err), retry_ms: this.retryMs }, `${this.opts.what} not reachable yet`);
      this.retryLater();
      return;
    }
    if (this.stopped) {
      socket.destroy();
      return;
    }
    this.retryMs = this.opts.retryMinMs;
    this.current = socket;
    socket.on('error', () => {});
    socket.once('close', () => {
      if (this.current === socket) this.current = null;
      if (this.stopped) return;
      this.opts.onLost?.();
      this.retryLater();
    });
    this.opts.log.debug({ address: formatAddress(this.opts.address) }, `${this.opts.what} connected`);
    this.opts.onConnected(socket);
  }

  private retryLater(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.dial(), this.retryMs);
    this.timer.unref();
    this.retryMs = Math.min(this.retryMs * 2, this.opts.retryMaxMs);
  }
}
