/**
 * What a listener kind implements. The generic Listener owns accept, limits, metrics, connection
 * tracking and draining; a kind (TCP proxy, egress proxy, relay…) only handles one connection.
 */
import type net from 'node:net';
import type { Logger } from '../log/logger.js';
import type { FastHttpOptions, FastRequest, FastRouteSums } from '../native/addon.js';
import type { ListenerMetrics } from '../metrics/registry.js';
import type { Address } from '../transport/index.js';
import type { CloseCause, PumpEnd } from '../pump/types.js';
import type { TlsContextSource } from '../tls/identity.js';

export interface ConnectionContext {
  /** Process-unique id, also used in audit records and access logs. */
  id: string;
  listener: string;
  log: Logger;
  metrics: ListenerMetrics;
  /** Aborted when the drain deadline passes during shutdown: finish or close now. */
  signal: AbortSignal;
  /** Call when the connection is set up and bytes start to flow upstream: records the handshake time. */
  established(): void;
  /** Set when the native HTTP engine served this connection first and handed it over between requests. */
  resumed?: ResumedConnection;
}

/** What the native HTTP engine knew about a connection it handed to JS: its PROXY header is consumed. */
export interface ResumedConnection {
  clientAddress: string | undefined;
  clientPort: number | undefined;
}

export interface ConnectionOutcome {
  bytesIn: number;
  bytesOut: number;
}

/** How a pass-through connection ended, as the access log reports it on either path. */
export interface ClosedConnection {
  connId: string;
  /** "ip:port" of the client (from the PROXY header when one was received); absent when not IP. */
  client: string | undefined;
  /** Client bytes (a PROXY header this side sent is not counted). */
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  closedBy: CloseCause;
  error?: { code: string; side: PumpEnd };
}

/**
 * A connection JS has nothing to decide about: accept, [read a PROXY header], dial the cluster's
 * first endpoint, [write a PROXY header], pump. A Listener whose handler carries this plan may
 * run such connections on the native fast path (shared/listener/fast-accept.ts); anything the
 * fast path does not finish by itself still goes through the handler.
 */
export interface PassThroughPlan {
  endpoint: Address;
  /** The access-log `upstream` field. */
  endpointText: string;
  expectProxyProtocol: boolean;
  sendProxyProtocol: boolean;
  idleTimeoutMs: number;
  connectTimeoutMs: number;
  /** Whether `closed` writes anything for a connection that ended cleanly (else it is only counted). */
  logsEveryConnection(): boolean;
  /** Reports one connection that ended: the same line the handler writes for its own. */
  closed(connection: ClosedConnection): void;
  /** Terminate TLS (on the pump threads) with this identity; connections go to JS until it is loaded. */
  tls?: { context: TlsContextSource; handshakeTimeoutMs: number; clusterName: string };
}

/** One request, as the access log and route metrics take it (the native engine's records, or the JS path's). */
export type NativeHttpRequest = Omit<FastRequest, 'conn'>;

/**
 * An HTTP listener the native engine can serve (plain HTTP/1.1, routes inside the glob subset):
 * what the addon needs, and where its per-request records go.
 */
export interface NativeHttpPlan {
  /** The engine's options, but for the endpoints (`clusters` says where each cluster index dials) and whether lines are written. */
  options: Omit<FastHttpOptions, 'endpoints' | 'requestRecords'>;
  /** The level of the access lines: when the listener's logger is above it, requests are only summed per route. */
  accessLevel: 'info' | 'debug';
  /** Per cluster index, its first endpoint. */
  clusters: Address[];
  expectProxyProtocol: boolean;
  connectTimeoutMs: number;
  /**
   * The access line and route metrics of one natively served request. `log` is the listener's
   * logger; the line goes to a child with the connection's `conn_id`, made only when it is written.
   */
  request(r: NativeHttpRequest, log: Logger, connId: () => string): void;
  /** Requests summed per route (no request lines): the route metrics only. */
  routeSums(sums: FastRouteSums): void;
}

/** Handles one accepted connection; resolves when it is completely closed. Must not reject. */
export interface ConnectionHandler {
  (socket: net.Socket, ctx: ConnectionContext): Promise<ConnectionOutcome>;
  /** Set by kinds whose connections the native fast path can run (TCP pass-through). */
  passThrough?: PassThroughPlan;
  /** Set by HTTP listeners the native HTTP engine can serve. */
  nativeHttp?: NativeHttpPlan;
}
