/**
 * A listening socket with its connections: accept (with a connection limit), per-listener
 * metrics, and graceful drain: stop accepting, let open connections finish until a deadline,
 * then abort what is left.
 *
 * Pass-through kinds (a handler with a `passThrough` plan) and HTTP listeners the native engine
 * can serve (a `nativeHttp` plan) accept on the native fast path when the addon is loaded
 * (./fast-accept.ts); connections it hands back, and every other kind, are accepted here in JS. Both count against the same limit and drain together.
 */
import type net from 'node:net';
import { logger, type Logger } from '../log/logger.js';
import { listenerMetrics, type ListenerMetrics } from '../metrics/registry.js';
import { loadNativeAddon } from '../native/addon.js';
import { listen, formatAddress, type Address, type Listening } from '../transport/index.js';
import { nextConnId } from '../util/conn-id.js';
import { FastAccept, fastPathEnabled, type FastPlan, type ResumedHandBack } from './fast-accept.js';
import type { ConnectionHandler } from './types.js';

export interface ListenerOptions {
  name: string;
  address: Address;
  maxConnections: number;
  handler: ConnectionHandler;
}

export class Listener {
  readonly name: string;
  private readonly opts: ListenerOptions;
  private readonly log;
  private readonly metrics: ListenerMetrics;
  private listening: Listening | undefined;
  private fast: FastAccept | undefined;
  private readonly active = new Map<net.Socket, { abort: AbortController; done: Promise<void> }>();

  constructor(opts: ListenerOptions) {
    this.opts = opts;
    this.name = opts.name;
    this.log = logger('listener', { listener: opts.name });
    this.metrics = listenerMetrics(opts.name);
  }

  /** The bound address (an ephemeral TCP port resolved). */
  get address(): Address {
    return this.listening?.address ?? this.fast?.address ?? this.opts.address;
  }

  get activeConnections(): number {
    return this.active.size + (this.fast?.active ?? 0);
  }

  /** Whether connections are accepted on the native fast path. */
  get fastPath(): boolean {
    return this.fast !== undefined;
  }

  /** TLS identities the fast path has loaded (from 1 on, it terminates TLS itself; 0 on the JS path). */
  get fastPathTlsIdentities(): number {
    return this.fast?.tlsIdentitiesLoaded ?? 0;
  }

  async start(): Promise<void> {
    const { passThrough, nativeHttp } = this.opts.handler;
    const plan: FastPlan | undefined = passThrough
      ? { kind: 'pass_through', plan: passThrough }
      : nativeHttp
        ? { kind: 'http', plan: nativeHttp }
        : undefined;
    const addon = plan && fastPathEnabled() ? loadNativeAddon() : null;
    if (plan && addon) {
      this.fast = await FastAccept.start({
        addon,
        plan,
        address: this.opts.address,
        maxConnections: this.opts.maxConnections,
        log: this.log,
        metrics: this.metrics,
        adopt: (socket, release, resumed) => this.accept(socket, release, resumed),
      });
      if (this.fast) {
        this.log.info({ address: formatAddress(this.fast.address), fast_path: true }, 'listening');
        return;
      }
    }
    this.listening = await listen(this.opts.address, (socket) => this.acceptWithinLimit(socket));
    this.log.info({ address: formatAddress(this.listening.address) }, 'listening');
  }

  /**
   * The limit counts connections until they end, wherever their bytes move. (Node's own
   * server.maxConnections stops counting a socket once the pump takes its fd over.)
   */
  private acceptWithinLimit(socket: net.Socket): void {
    if (this.opts.maxConnections > 0 && this.activeConnections >= this.opts.maxConnections) {
      this.metrics.rejected('max_connections');
      this.log.warn({ limit: this.opts.maxConnections }, 'connection refused: listener is at max_connections');
      socket.destroy();
      return;
    }
    this.accept(socket);
  }

  /**
   * Runs the handler on one connection; `release` (fast path: counted there) when it has ended.
   * `resumed`: the native HTTP engine served it first (and counted it as accepted).
   */
  private accept(socket: net.Socket, release?: () => void, resumed?: ResumedHandBack): void {
    const id = resumed?.connId ?? nextConnId();
    const abort = new AbortController();
    const started = Date.now();
    if (!resumed) this.metrics.accepted();
    // Errors are reported by the handler's outcome; this only keeps a late one from crashing us.
    socket.on('error', () => {});
    const listenerLog = this.log;
    let log: Logger | undefined;
    const done = this.opts
      .handler(socket, {
        id,
        listener: this.name,
        // Made on first use: most connections log nothing of their own, and a child costs ~2 µs.
        get log() {
          return (log ??= listenerLog.child({ conn_id: id }));
        },
        metrics: this.metrics,
        signal: abort.signal,
        established: () => this.metrics.established(Date.now() - started),
        ...(resumed ? { resumed: resumed.facts } : {}),
      })
      .then(
        (o) => this.metrics.closed(o.bytesIn, o.bytesOut, Date.now() - started),
        (err) => {
          // A handler must not reject; if one does, the bug is logged and the connection closed.
          this.log.error({ err }, 'connection handler failed');
          this.metrics.closed(0, 0, Date.now() - started);
          socket.destroy();
        },
      )
      .finally(() => {
        this.active.delete(socket);
        release?.();
      });
    this.active.set(socket, { abort, done });
  }

  /** Stop accepting; open connections continue. */
  async stopAccepting(): Promise<void> {
    await this.listening?.close();
    this.listening = undefined;
    await this.fast?.stop();
  }

  /** Wait for open connections until `deadline` (epoch ms), then abort the rest. */
  async drain(deadline: number): Promise<void> {
    const pending = [...this.active.values()];
    const fast = this.fast;
    if (pending.length === 0 && (fast?.active ?? 0) === 0) return;
    this.log.info({ connections: this.activeConnections, timeout_ms: Math.max(0, deadline - Date.now()) }, 'draining connections');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()));
    });
    const allDone = Promise.all([...pending.map((p) => p.done), fast?.whenIdle()]).then(() => 'drained' as const);
    const result = await Promise.race([allDone, timedOut]);
    clearTimeout(timer);
    if (result === 'timeout') {
      const left = [...this.active.values()];
      this.log.warn({ connections: this.activeConnections }, 'drain timeout: closing remaining connections');
      for (const p of left) p.abort.abort();
      fast?.abortAll();
      await Promise.all([...left.map((p) => p.done), fast?.whenIdle()]);
    }
  }
}
