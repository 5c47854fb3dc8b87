/**
 * Prometheus metrics of one process (prom-client). Listener metrics are labelled by listener
 * name, so every listener kind reports the same series and dashboards need no per-kind queries.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { PumpPath } from '../pump/types.js';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'enclaver_process_' });

export const connectionsTotal = new Counter({
  name: 'enclaver_connections_total', help: 'Connections accepted, by listener.', labelNames: ['listener'] as const, registers: [registry],
});
export const connectionsActive = new Gauge({
  name: 'enclaver_connections_active', help: 'Connections open now, by listener.', labelNames: ['listener'] as const, registers: [registry],
});
export const connectionsRejected = new Counter({
  name: 'enclaver_connections_rejected_total', help: 'Connections refused before proxying, by listener and reason (limit, proxy_protocol, …).', labelNames: ['listener', 'reason'] as const, registers: [registry],
});
export const bytesTotal = new Counter({
  name: 'enclaver_bytes_total', help: 'Bytes proxied, by listener and direction (in = client to upstream, out = upstream to client).', labelNames: ['listener', 'direction'] as const, registers: [registry],
});
export const errorsTotal = new Counter({
  name: 'enclaver_errors_total', help: 'Connection errors, by listener and error code (connect_econnrefused, connect_etimedout, ECONNRESET, …).', labelNames: ['listener', 'code'] as const, registers: [registry],
});
export const connectionDuration = new Counter({
  name: 'enclaver_connection_seconds_total', help: 'Summed lifetime of closed connections, by listener.', labelNames: ['listener'] as const, registers: [registry],
});

export const pumpedTotal = new Counter({
  name: 'enclaver_pumped_connections_total',
  help: 'Pass-through connections by listener and how their bytes moved: splice (zero-copy), copy (native read/write fallback), js (JavaScript streams), none (failed before pumping).',
  labelNames: ['listener', 'path'] as const, registers: [registry],
});

/** The handles one listener uses, bound to its label once. */
export interface ListenerMetrics {
  /** `count` connections at once (the fast path reports in batches). */
  accepted(count?: number): void;
  /** `count` connections that moved these bytes and lasted this long in total. */
  closed(bytesIn: number, bytesOut: number, durationMs: number, count?: number): void;
  rejected(reason: string): void;
  error(code: string): void;
  /** A pass-through connection ended; `path` says whether it was spliced or copied. */
  pumped(path: PumpPath, count?: number): void;
}

export function listenerMetrics(listener: string): ListenerMetrics {
  const labels = { listener };
  // Touch every series so a listener shows up in /metrics before its first connection.
  connectionsTotal.inc(labels, 0);
  connectionsActive.set(labels, 0);
  bytesTotal.inc({ listener, direction: 'in' }, 0);
  bytesTotal.inc({ listener, direction: 'out' }, 0);
  return {
    accepted(count = 1) {
      connectionsTotal.inc(labels, count);
      connectionsActive.inc(labels, count);
    },
    closed(bytesIn, bytesOut, durationMs, count = 1) {
      connectionsActive.dec(labels, count);
      bytesTotal.inc({ listener, direction: 'in' }, bytesIn);
      bytesTotal.inc({ listener, direction: 'out' }, bytesOut);
      connectionDuration.inc(labels, durationMs / 1000);
    },
    rejected(reason) {
      connectionsRejected.inc({ listener, reason });
    },
    error(code) {
      errorsTotal.inc({ listener, code });
    },
    pumped(path, count = 1) {
      pumpedTotal.inc({ listener, path }, count);
    },
  };
}
