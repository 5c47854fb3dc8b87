/**
 * The outer egress relay (vsock port 17002): one connection per tunnel, one EgressRequest frame
 * in, one EgressResponse frame out, then the pump.
 *
 * It resolves names itself, refuses the whole request if any answer is a non-public address
 * that is not trusted (a name that mixes public and private answers is a rebinding attempt),
 * connects to the checked IP literals in turn within one connect deadline, and reports the
 * address it connected to, which the inner checks against its own policy.
 */
import net from 'node:net';
import { ProxyError, errnoOf, messageOf } from '../../shared/errors/index.js';
import { logger } from '../../shared/log/logger.js';
import { decide, type EgressPolicy, type Rule } from '../../shared/egress/policy.js';
import { canonicalHost, DestinationError } from '../../shared/egress/destination.js';
import { formatIp, type IpAddress } from '../../shared/egress/ip.js';
import {
  encodeEgressAnswer,
  parseEgressRequest,
  type EgressAnswer,
  type EgressRequest,
  type RelayErrorCode,
} from '../../shared/egress/relay-frames.js';
import { pumpedTotal } from '../../shared/metrics/registry.js';
import { activePump, type PumpSession } from '../../shared/pump/index.js';
import { listen, type Address, type Listening } from '../../shared/transport/index.js';
import { formatHostPort } from '../../shared/transport/address.js';
import { readPrefix } from '../../shared/util/read-prefix.js';
import { parseFrame } from '../../shared/wire/frame.js';
import { AddressGuard, type GuardOptions } from './guard.js';
import type { HostsMap } from './hosts-file.js';
import { Resolver, ResolveError } from './resolver.js';
import { relayMetrics } from '../metrics.js';
import { connectThroughProxy, UpstreamProxyError, type UpstreamProxy } from './upstream-proxy.js';

const log = logger('egress-relay');
/** Tunnels held at once (each is two sockets); beyond it the inner's connection is closed at accept. */
const MAX_TUNNELS = 20_000;

export interface EgressRelayOptions {
  /** vsock://any:17002 in production. */
  address: Address;
  connectTimeoutMs?: number;
  /** For the request frame after the inner connected. */
  handshakeTimeoutMs?: number;
  idleTimeoutMs?: number;
  hosts?: HostsMap;
  guard?: GuardOptions;
  upstreamProxy?: UpstreamProxy & {
    /** Destinations (egress rule entries) that go through the proxy; all when absent. */
    hosts?: readonly Rule[];
  };
  /** Replaces the system resolver (tests). */
  resolver?: Resolver;
}

/** Why the relay could not open a tunnel, as the code it answers (the inner's RelayFailure is that code as received). */
class TunnelOpenError extends ProxyError {
  constructor(
    readonly relayCode: RelayErrorCode,
    message: string,
  ) {
    super(`relay_${relayCode}`, message, { relayCode });
  }
}

function connectIp(ip: IpAddress, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    // An IP literal: Node performs no lookup, so autoSelectFamily cannot dial another address.
    const socket = net.connect({ host: formatIp(ip), port, family: ip.family, allowHalfOpen: true, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TunnelOpenError('connect_timeout', `connect to ${formatHostPort(formatIp(ip), port)} timed out`));
    }, timeoutMs);
    socket.once('error', (err) => {
      clearTimeout(timer);
      const errno = errnoOf(err);
      const code: RelayErrorCode = errno === 'ECONNREFUSED' ? 'connect_refused' : errno === 'ETIMEDOUT' ? 'connect_timeout' : 'unreachable';
      reject(new TunnelOpenError(code, `connect to ${formatHostPort(formatIp(ip), port)}: ${errno ?? messageOf(err)}`));
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
  });
}

/** The relay is not a Listener; its tunnels are counted under this name. */
const RELAY_METRICS_LABEL = 'egress_relay';

export class EgressRelay {
  private listening: Listening | undefined;
  private readonly resolver: Resolver;
  private readonly guard: AddressGuard;
  private readonly proxyHosts: EgressPolicy | null;
  private readonly sessions = new Set<PumpSession>();
  private readonly pending = new Set<net.Socket>();

  constructor(private readonly opts: EgressRelayOptions) {
    this.resolver = opts.resolver ?? new Resolver(opts.hosts);
    this.guard = new AddressGuard(opts.guard);
    this.proxyHosts = opts.upstreamProxy?.hosts ? { allow: opts.upstreamProxy.hosts, deny: [] } : null;
  }

  get bound(): string | undefined {
    return this.listening?.bound;
  }

  async start(): Promise<void> {
    const accept = (s: net.Socket) => {
      this.accept(s).catch((err: unknown) => {
        log.error({ err: messageOf(err) }, 'relay connection failed unexpectedly');
        s.destroy();
      });
    };
    this.listening = await listen(this.opts.address, accept, {
      maxConnections: MAX_TUNNELS,
      onDrop: () => log.warn({ limit: MAX_TUNNELS }, 'egress tunnel refused: the relay holds its maximum of tunnels'),
    });
    log.info(
      {
        address: this.listening.bound,
        guard: this.guard.describe(),
        upstream_proxy: this.opts.upstreamProxy
          ? `${this.opts.upstreamProxy.kind}://${formatHostPort(this.opts.upstreamProxy.host, this.opts.upstreamProxy.port)}`
          : undefined,
      },
      'egress relay listening',
    );
  }

  async stop(): Promise<void> {
    const closing = this.listening?.close();
    for (const s of this.sessions) s.abort('shutdown');
    for (const s of this.pending) s.destroy();
    await closing;
  }

  private async accept(inner: net.Socket): Promise<void> {
    inner.on('error', () => {});
    this.pending.add(inner);
    let req: EgressRequest;
    let rest: Buffer;
    try {
      const r = await readPrefix(inner, parseFrame, {
        timeoutMs: this.opts.handshakeTimeoutMs ?? 10_000,
        maxBytes: 4096,
        what: 'egress request frame',
      });
      req = parseEgressRequest(r.value);
      rest = r.rest;
    } catch (err) {
      this.answer(inner, { ok: false, code: 'bad_request', message: messageOf(err) });
      return;
    }
    let upstream: { socket: net.Socket; address: string | null; headDown: Buffer };
    const asked = Date.now();
    try {
      upstream = await this.open(req);
    } catch (err) {
      const code: RelayErrorCode =
        err instanceof TunnelOpenError
          ? err.relayCode
          : err instanceof ResolveError
            ? 'resolve_failed'
            : err instanceof UpstreamProxyError
              ? err.timedOut
                ? 'connect_timeout'
                : 'upstream_proxy_failed'
              : err instanceof DestinationError
                ? 'bad_request'
                : 'unreachable';
      relayMetrics.answered(code, Date.now() - asked);
      log.info({ conn_id: req.conn_id, host: req.host, port: req.port, code, err: messageOf(err) }, 'egress tunnel refused');
      this.answer(inner, { ok: false, code, message: messageOf(err) });
      return;
    }
    this.pending.delete(inner);
    if (inner.destroyed) {
      upstream.socket.destroy();
      return;
    }
    relayMetrics.answered('connected', Date.now() - asked);
    inner.write(encodeEgressAnswer({ ok: true, address: upstream.address }));
    const session = activePump().run(inner, upstream.socket, {
      headUp: rest,
      headDown: upstream.headDown,
      idleTimeoutMs: this.opts.idleTimeoutMs ?? 0,
    });
    this.sessions.add(session);
    relayMetrics.opened();
    const result = await session.done;
    relayMetrics.closed();
    this.sessions.delete(session);
    pumpedTotal.inc({ listener: RELAY_METRICS_LABEL, path: result.path });
    // Checked first: the fields would be gathered for every tunnel only to be thrown away at info.
    if (log.isLevelEnabled('debug'))
      log.debug(
        {
          conn_id: req.conn_id,
          host: req.host,
          port: req.port,
          address: upstream.address,
          bytes_up: result.bytesUp,
          bytes_down: result.bytesDown,
          closed_by: result.closedBy,
        },
        'egress tunnel closed',
      );
  }

  private answer(inner: net.Socket, a: EgressAnswer): void {
    this.pending.delete(inner);
    if (inner.writable) inner.end(encodeEgressAnswer(a));
    setTimeout(() => inner.destroy(), 1000).unref();
  }

  /** The upstream proxy this destination goes through, or null when it is dialled directly. */
  private proxyFor(host: string, port: number): UpstreamProxy | null {
    const proxy = this.opts.upstreamProxy;
    if (!proxy) return null;
    if (!this.proxyHosts) return proxy;
    return decide(this.proxyHosts, { host: canonicalHost(host), port }).allowed ? proxy : null;
  }

  private async open(req: EgressRequest): Promise<{ socket: net.Socket; address: string | null; headDown: Buffer }> {
    const timeoutMs = this.opts.connectTimeoutMs ?? 5000;
    const proxy = this.proxyFor(req.host, req.port);
    if (proxy) {
      const { socket, rest } = await connectThroughProxy(proxy, canonicalHost(req.host).text, req.port, timeoutMs);
      return { socket, address: null, headDown: rest };
    }
    const deadline = Date.now() + timeoutMs;
    const { addresses, trusted } = await this.resolver.resolve(req.host);
    const refused = addresses.find((a) => !this.guard.permits(a, trusted, req.allow_ranges));
    if (refused) throw new TunnelOpenError('guard_refused', `${req.host} resolves to the non-public address ${formatIp(refused)}`);
    let last: unknown;
    for (const ip of addresses) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        const socket = await connectIp(ip, req.port, left);
        return { socket, address: formatIp(ip), headDown: Buffer.alloc(0) };
      } catch (err) {
        last = err;
      }
    }
    throw last ?? new TunnelOpenError('connect_timeout', `connect to ${formatHostPort(req.host, req.port)} timed out`);
  }
}
