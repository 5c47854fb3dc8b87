/**
 * What a listener kind implements. The generic Listener owns accept, limits, metrics, connection
 * tracking and draining; a kind (TCP proxy, egress proxy, relay…) only handles one connection.
 */
import type net from 'node:net';
import type { Logger } from '../log/logger.js';
import type { ListenerMetrics } from '../metrics/registry.js';

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
}

export interface ConnectionOutcome {
  bytesIn: number;
  bytesOut: number;
}

/** Handles one accepted connection; resolves when it is completely closed. Must not reject. */
export type ConnectionHandler = (socket: net.Socket, ctx: ConnectionContext) => Promise<ConnectionOutcome>;
