/**
 * The native fast path of a Listener: for pass-through kinds (a handler with a `passThrough`
 * plan) the addon's pump threads accept, dial, write or read the PROXY v2 header and pump, and
 * this module hears about connections in batches, not one callback each. It keeps what the JS
 * path gives users: the same metrics, the same access-log line, max_connections, drain.
 *
 * For HTTP listeners the handler can serve natively (a `nativeHttp` plan: plain HTTP/1.1, routes
 * inside the native glob subset) the pump threads run the HTTP engine instead
 * (native/src/http/): this module hears one record per request and writes the same access line
 * and route metrics the JS path writes; connections it hands back between requests arrive here
 * `resumed`, and the handler carries on with them without a PROXY header.
 *
 * Whatever the pump thread does not finish by itself (a refused or slow dial, a PROXY header it
 * does not accept in full) comes back here as a socket plus the bytes already read, and runs
 * through the listener's ordinary handler: one code path for every unusual case.
 *
 * TLS listeners terminate TLS on the pump threads too, with an OpenSSL context made from the
 * PEM of the identity the JS path uses (shared/tls/identity.ts), loaded here and re-loaded when
 * the identity changes. Until it is loaded, connections are handed back. A connection whose
 * handshake has begun stays native: its failures come back as `notProxied` records, reported
 * as the JS handler reports them ("connection not proxied", rejected tls).
 *
 * ENCLAVER_FASTPATH=0 turns it off (the JS path then accepts every connection).
 */
import net from 'node:net';
import {
  errnoMessage,
  errnoName,
  type FastBatch,
  type FastClosed,
  type FastEndpoint,
  type FastHttpOptions,
  type FastListenOptions,
  type FastNotProxied,
  type FastResumed,
  type NativeAddon,
} from '../native/addon.js';
import { socketFromFd } from '../native/fd-socket.js';
import { logBatch, type Logger } from '../log/logger.js';
import type { ListenerMetrics } from '../metrics/registry.js';
import { configureNativePump } from '../pump/native-pump.js';
import { listenNative, nativeEndpoint, type Address } from '../transport/index.js';
import { fastConnId, nextConnId } from '../util/conn-id.js';
import { messageOf, TransportError } from '../errors/index.js';
import { nodeDefaultCiphers, pemIdentityOf, type TlsContextSource } from '../tls/identity.js';
import type { NativeHttpPlan, PassThroughPlan, ResumedConnection } from './types.js';

export const ENV_FASTPATH = 'ENCLAVER_FASTPATH';

let override: boolean | undefined;

/** Whether listeners may use the fast path (ENCLAVER_FASTPATH=0 says no; tests may override). */
export function fastPathEnabled(): boolean {
  return override ?? process.env[ENV_FASTPATH] !== '0';
}

/** For tests that run the same assertions on both paths in one process. */
export function useFastPath(enabled: boolean | undefined): void {
  override = enabled;
}

/** How long the pump thread waits for a PROXY header before JS takes the connection over. */
const HEADER_WAIT_MS = 5000;

/** What the pump threads run for a listener: a pass-through pump, or the HTTP engine. */
export type FastPlan = { kind: 'pass_through'; plan: PassThroughPlan } | { kind: 'http'; plan: NativeHttpPlan };

/** A connection the HTTP engine handed back between requests: its id and client, its PROXY header consumed. */
export interface ResumedHandBack {
  connId: string;
  facts: ResumedConnection;
}

export interface FastAcceptOptions {
  addon: NativeAddon;
  address: Address;
  plan: FastPlan;
  maxConnections: number;
  log: Logger;
  metrics: ListenerMetrics;
  /** Runs a handed-back connection through the ordinary handler; `release` when it has ended. */
  adopt(socket: net.Socket, release: () => void, resumed?: ResumedHandBack): void;
}

function resumedHandBack(r: FastResumed): ResumedHandBack {
  return { connId: fastConnId(r.conn), facts: { clientAddress: r.clientAddress, clientPort: r.clientPort } };
}

/** The engine's options, or why this HTTP listener stays on the JS path. */
function httpOptions(addon: NativeAddon, plan: NativeHttpPlan, log: Logger): FastHttpOptions | string {
  const endpoints: FastEndpoint[] = [];
  for (const [i, address] of plan.clusters.entries()) {
    const endpoint = nativeEndpoint(address);
    if (!endpoint) return `cluster ${i} has no endpoint the pump threads can dial`;
    endpoints.push(endpoint);
  }
  for (const route of plan.options.routes) {
    for (const [globs, host] of [
      [route.hosts, true],
      [route.paths, false],
    ] as const) {
      for (const glob of globs) {
        const problem = addon.httpGlobProblem(glob, host);
        if (problem) return `route ${route.name}: the ${host ? 'host' : 'path'} glob ${JSON.stringify(glob)} has ${problem}`;
      }
    }
  }
  // Decided at start, as a pass-through's records: a log level changed later applies to new listeners.
  return { ...plan.options, endpoints, requestRecords: log.isLevelEnabled(plan.accessLevel) };
}

/** A socket for an fd the fast path handed back: paused, with the bytes already read in front. */
function handedBack(fd: number, head: Buffer): net.Socket {
  let socket: net.Socket;
  try {
    socket = new net.Socket({ fd, allowHalfOpen: true, readable: true, writable: true, pauseOnCreate: true } as net.SocketConstructorOpts);
  } catch {
    // libuv knows TCP and Unix sockets by their fd; AF_VSOCK only through a pipe handle.
    socket = socketFromFd(fd, { paused: true });
  }
  if (head.length > 0) socket.unshift(head);
  return socket;
}

export class FastAccept {
  readonly address: Address;
  private readonly opts: FastAcceptOptions;
  private readonly handle: number;
  private readonly unlink: () => void;
  /** Connections the pump threads own now (started, not yet reported closed). */
  private pumped = 0;
  /** Handed-back connections still counted against max_connections by the pump threads. */
  private handedBackOpen = 0;
  /** Pump threads that have not reported the stop yet. */
  private threadsAccepting: number;
  private stopped = false;
  private closed = false;
  private onStopped: (() => void) | undefined;
  /** Bumped per identity load: a slow load finishing after a newer one is dropped. */
  private tlsGeneration = 0;
  /** Identity loads the pump threads have taken (0: TLS connections still go to JS). */
  private tlsLoads = 0;
  private readonly idleWaiters: (() => void)[] = [];

  /** Starts accepting, or returns undefined when this address or plan needs the JS path. */
  static async start(opts: FastAcceptOptions): Promise<FastAccept | undefined> {
    const { plan } = opts;
    let options: Omit<FastListenOptions, 'listenFd' | 'maxConnections' | 'headerTimeoutMs'>;
    if (plan.kind === 'pass_through') {
      const endpoint = nativeEndpoint(plan.plan.endpoint);
      if (!endpoint) return undefined;
      options = {
        endpoint,
        expectProxy: plan.plan.expectProxyProtocol,
        sendProxy: plan.plan.sendProxyProtocol,
        idleTimeoutMs: plan.plan.idleTimeoutMs,
        connectTimeoutMs: plan.plan.connectTimeoutMs,
        // Decided at start: a log level changed later applies to new listeners.
        records: plan.plan.logsEveryConnection(),
        ...(plan.plan.tls ? { tls: true, handshakeTimeoutMs: plan.plan.tls.handshakeTimeoutMs } : {}),
      };
    } else {
      const http = httpOptions(opts.addon, plan.plan, opts.log);
      if (typeof http === 'string') {
        opts.log.info({ reason: http }, 'HTTP listener served in JavaScript: outside what the native HTTP engine does');
        return undefined;
      }
      options = {
        http,
        expectProxy: plan.plan.expectProxyProtocol,
        sendProxy: false,
        idleTimeoutMs: http.idleTimeoutMs,
        connectTimeoutMs: plan.plan.connectTimeoutMs,
        records: false,
      };
    }
    const listening = await listenNative(opts.addon, opts.address);
    if (!listening) return undefined;
    return new FastAccept(opts, listening.address, { ...options, listenFd: listening.fd }, listening.unlink);
  }

  private constructor(
    opts: FastAcceptOptions,
    address: Address,
    options: Omit<FastListenOptions, 'maxConnections' | 'headerTimeoutMs'>,
    unlink: () => void,
  ) {
    this.opts = opts;
    this.address = address;
    this.unlink = unlink;
    // The same pump threads as the JS path's native pump: configured once, whoever starts them.
    configureNativePump(opts.addon);
    this.handle = opts.addon.fastListen({ ...options, maxConnections: opts.maxConnections, headerTimeoutMs: HEADER_WAIT_MS }, (batch) =>
      this.onBatch(batch),
    );
    this.threadsAccepting = opts.addon.pumpStats().threads;
    const tls = opts.plan.kind === 'pass_through' ? opts.plan.plan.tls?.context : undefined;
    if (tls) {
      // Not awaited: a KMS-sealed key may need listeners that start after this one.
      void this.loadTls(tls);
      tls.onChange?.(() => void this.loadTls(tls));
    }
  }

  /** Gives the pump threads the identity's PEM; any failure leaves connections to the JS path. */
  private async loadTls(source: TlsContextSource): Promise<void> {
    const generation = ++this.tlsGeneration;
    const { log } = this.opts;
    let pem;
    try {
      const context = await source();
      pem = pemIdentityOf(context);
    } catch {
      return; // the JS path reports the same failure for each connection it gets
    }
    if (generation !== this.tlsGeneration || this.closed) return;
    if (!pem) {
      log.warn('TLS identity not readable by the fast path: TLS is terminated in JS for this listener');
      return;
    }
    try {
      this.opts.addon.fastSetTls(this.handle, {
        certificate: pem.certificate.toString(),
        key: pem.key.toString(),
        ...nodeDefaultCiphers(),
      });
      this.tlsLoads++;
    } catch (err) {
      log.warn({ error: messageOf(err) }, 'TLS identity refused by the fast path: TLS is terminated in JS for this listener');
    }
  }

  /** How many identities the pump threads have been given: from 1 on, they terminate TLS themselves. */
  get tlsIdentitiesLoaded(): number {
    return this.tlsLoads;
  }

  /** Connections open on the fast path (handed-back ones are the Listener's own). */
  get active(): number {
    return this.pumped;
  }

  /** Stop accepting; resolves once the listening socket is closed and all it accepted is reported. */
  stop(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const done = new Promise<void>((resolve) => {
      this.onStopped = resolve;
    });
    this.opts.addon.fastStop(this.handle);
    this.unlink();
    return done;
  }

  /** Ends every fast-path connection now; each is still reported (closed_by aborted). */
  abortAll(): void {
    if (!this.closed) this.opts.addon.fastAbortAll(this.handle);
  }

  /** Resolves once no connection is open on the fast path. */
  whenIdle(): Promise<void> {
    if (this.pumped === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private onBatch(batch: FastBatch): void {
    const { metrics, log } = this.opts;
    if (batch.accepted > 0) metrics.accepted(batch.accepted);
    this.pumped += batch.accepted;
    const { summed } = batch;
    const { plan } = this.opts;
    if (summed.count > 0) {
      metrics.closed(summed.bytesIn, summed.bytesOut, summed.durationMs, summed.count);
      // Pump paths are a pass-through's; the HTTP engine's bytes are all its own.
      if (plan.kind === 'pass_through') {
        if (summed.count > summed.copied) metrics.pumped('splice', summed.count - summed.copied);
        if (summed.copied > 0) metrics.pumped('copy', summed.copied);
      }
    }
    this.pumped -= summed.count;
    for (let i = 0; i < batch.rejected; i++) {
      metrics.rejected('max_connections');
      log.warn({ limit: this.opts.maxConnections }, 'connection refused: listener is at max_connections');
    }
    if (batch.closed.length > 0)
      logBatch(() => {
        for (const c of batch.closed) this.report(c);
      });
    this.pumped -= batch.closed.length;
    for (const n of batch.notProxied) this.notProxied(n);
    this.pumped -= batch.notProxied.length;
    if (batch.requests.length > 0 && plan.kind === 'http') {
      const { request } = plan.plan;
      logBatch(() => {
        for (const r of batch.requests) request(r, log, () => fastConnId(r.conn));
      });
    }
    if (plan.kind === 'http') for (const sums of batch.routes) plan.plan.routeSums(sums);
    for (const f of batch.fallbacks) {
      this.handedBackOpen++;
      // A connection the HTTP engine served first was counted as accepted then; it is JS's from here.
      if (f.resumed) this.pumped--;
      this.opts.adopt(handedBack(f.fd, f.head), () => this.release(), f.resumed ? resumedHandBack(f.resumed) : undefined);
    }
    if (batch.stopped && --this.threadsAccepting === 0) {
      this.stopped = true;
      this.onStopped?.();
    }
    if (this.pumped === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
    this.closeWhenDone();
  }

  private report(c: FastClosed): void {
    const { metrics } = this.opts;
    // Records are asked for by pass-through plans only (the HTTP engine reports requests instead).
    if (this.opts.plan.kind !== 'pass_through') return;
    const { plan } = this.opts.plan;
    metrics.closed(c.bytesIn, c.bytesOut, c.durationMs);
    metrics.pumped(c.copied ? 'copy' : 'splice');
    const error = c.errno !== undefined && c.errorSide !== undefined ? { code: errnoName(c.errno), side: c.errorSide } : undefined;
    if (error) metrics.error(error.code);
    plan.closed({
      connId: nextConnId(),
      client: c.client,
      bytesIn: c.bytesIn,
      bytesOut: c.bytesOut,
      durationMs: c.durationMs,
      closedBy: c.closedBy,
      ...(error ? { error } : {}),
    });
  }

  /** What the handler's `fail` reports for a connection it could not proxy, for a committed TLS connection. */
  private notProxied(n: FastNotProxied): void {
    const { metrics, log } = this.opts;
    // Only TLS pass-through plans commit connections natively (the HTTP engine hands back instead).
    if (this.opts.plan.kind !== 'pass_through') return;
    const { plan } = this.opts.plan;
    let failure = { reason: 'TLS handshake', code: n.code ?? 'tls_handshake_failed', error: n.message };
    if (n.stage === 'cluster') {
      const errno = n.errno ?? 0;
      const err = new TransportError('connect', plan.endpointText, errnoMessage(errno), errnoName(errno));
      failure = { reason: `cannot reach cluster ${plan.tls?.clusterName ?? ''}`, code: err.code, error: err.message };
    }
    metrics.closed(0, 0, n.durationMs);
    metrics.error(failure.code);
    if (n.stage === 'tls') metrics.rejected('tls');
    log.warn({ conn_id: nextConnId(), client: n.client, ...failure }, 'connection not proxied');
  }

  private release(): void {
    this.handedBackOpen--;
    if (!this.closed) this.opts.addon.fastRelease(this.handle);
    this.closeWhenDone();
  }

  /** After the stop and the last connection, the native listener is freed (it keeps Node alive until then). */
  private closeWhenDone(): void {
    if (this.closed || !this.stopped || this.pumped > 0 || this.handedBackOpen > 0) return;
    this.closed = true;
    this.opts.addon.fastClose(this.handle);
  }
}
