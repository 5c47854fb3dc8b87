/**
 * Prometheus metrics of one process (prom-client). Listener metrics are labelled by listener
 * name, so every listener kind reports the same series and dashboards need no per-kind queries.
 *
 * Naming follows Prometheus' conventions, checked by `promtool check metrics` in the tests
 * (test/integration/metrics-naming.test.ts): one `enclaver_` prefix (prom-client's own
 * `process_*`/`nodejs_*` names get it once, not `enclaver_process_process_*`), counters end in
 * `_total` and nothing else does, base units in the name (`_seconds`, `_bytes`), and HELP texts
 * list only label values the code emits. Byte directions are named once for every metric:
 * `client_to_upstream` (from whoever connected to the listener, towards where it forwards) and
 * `upstream_to_client`.
 */
import type { PumpPath } from '../pump/types.js';
import { Counter, Gauge, Histogram, loadDefaultMetrics, Registry } from './prom.js';

export const registry = new Registry();
let processMetrics = false;

/**
 * prom-client's process metrics (`enclaver_process_*`, `enclaver_nodejs_*`), registered once: by
 * SideRuntime right after its listeners are up (loading them is ~45 ms of CPU that accepting does
 * not need), or by the first scrape if one comes sooner. Their CPU counters count from here.
 */
export function registerProcessMetrics(): void {
  if (processMetrics) return;
  processMetrics = true;
  // The event-loop lag histogram samples every 100 ms, not prom-client's 10: its timer woke each
  // idle process 100 times a second (~1% of a core on 2 vCPUs; see docs/decisions.md). A stall
  // longer than 100 ms is still always seen, as it delays the sampling timer.
  loadDefaultMetrics()({ register: registry, prefix: 'enclaver_', eventLoopMonitoringPrecision: 100 });
  // prom-client also exports the active handles/requests/resources as gauges named `…_total`, a
  // counter's suffix; the same values are there without the suffix.
  for (const metric of registry.getMetricsAsArray()) {
    if (metric.name.endsWith('_total') && metric instanceof Gauge) registry.removeSingleMetric(metric.name);
  }
}

/** The Prometheus text of every metric of this process (what /metrics and the inner's export serve). */
export async function renderMetrics(): Promise<{ body: string; contentType: string }> {
  registerProcessMetrics();
  return { body: await registry.metrics(), contentType: registry.contentType };
}

/** The direction label's values, for every byte counter. */
export const DIRECTIONS = { up: 'client_to_upstream', down: 'upstream_to_client' } as const;

/** Connection lifetimes and set-up times: sub-millisecond on loopback up to long-lived tunnels. */
const CONNECTION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600];
const HANDSHAKE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Why a listener refused a connection before proxying it (ListenerMetrics.rejected). */
export type RejectReason = 'max_connections' | 'proxy_protocol' | 'tls';

export const connectionsTotal = new Counter({
  name: 'enclaver_connections_total',
  help: 'Connections accepted, by listener.',
  labelNames: ['listener'] as const,
  registers: [registry],
});
export const connectionsActive = new Gauge({
  name: 'enclaver_connections_active',
  help: 'Connections open now, by listener.',
  labelNames: ['listener'] as const,
  registers: [registry],
});
export const connectionsRejected = new Counter({
  name: 'enclaver_connections_rejected_total',
  help: 'Connections refused before proxying, by listener and reason (max_connections, proxy_protocol, tls).',
  labelNames: ['listener', 'reason'] as const,
  registers: [registry],
});
export const bytesTotal = new Counter({
  name: 'enclaver_bytes_total',
  help: 'Bytes proxied, by listener and direction (client_to_upstream, upstream_to_client).',
  labelNames: ['listener', 'direction'] as const,
  registers: [registry],
});
export const errorsTotal = new Counter({
  name: 'enclaver_errors_total',
  help: 'Connections that ended in an error, by listener and error code (the code of the failed step, e.g. connect_econnrefused).',
  labelNames: ['listener', 'code'] as const,
  registers: [registry],
});
export const connectionDuration = new Histogram({
  name: 'enclaver_connection_duration_seconds',
  help: 'Lifetime of closed connections, from accept to close, by listener.',
  labelNames: ['listener'] as const,
  buckets: CONNECTION_BUCKETS,
  registers: [registry],
});
export const handshakeDuration = new Histogram({
  name: 'enclaver_handshake_duration_seconds',
  help: 'Time from accept until bytes flow to the upstream (PROXY header, TLS handshake, proxy handshake, policy, upstream connect), by listener; not observed for connections the native fast path carries whole.',
  labelNames: ['listener'] as const,
  buckets: HANDSHAKE_BUCKETS,
  registers: [registry],
});

export const pumpedTotal = new Counter({
  name: 'enclaver_pumped_connections_total',
  help: 'Pass-through connections by listener and how their bytes moved: splice (zero-copy), copy (native read/write fallback), js (JavaScript streams), none (failed before pumping).',
  labelNames: ['listener', 'path'] as const,
  registers: [registry],
});

/** The handles one listener uses, bound to its label once. */
export interface ListenerMetrics {
  /** `count` connections at once (the fast path reports in batches). */
  accepted(count?: number): void;
  /** The connection is set up and bytes flow to the upstream, `ms` after it was accepted. */
  established(ms: number): void;
  /** `count` connections that moved these bytes and lasted this long in total. */
  closed(bytesIn: number, bytesOut: number, durationMs: number, count?: number): void;
  rejected(reason: RejectReason): void;
  error(code: string): void;
  /** A pass-through connection ended; `path` says whether it was spliced or copied. */
  pumped(path: PumpPath, count?: number): void;
}

export function listenerMetrics(listener: string): ListenerMetrics {
  const labels = { listener };
  const up = bytesTotal.labels({ listener, direction: DIRECTIONS.up });
  const down = bytesTotal.labels({ listener, direction: DIRECTIONS.down });
  const duration = connectionDuration.labels(labels);
  const handshake = handshakeDuration.labels(labels);
  // Touch every series so a listener shows up in /metrics before its first connection.
  connectionsTotal.inc(labels, 0);
  connectionsActive.set(labels, 0);
  up.inc(0);
  down.inc(0);
  return {
    accepted(count = 1) {
      connectionsTotal.inc(labels, count);
      connectionsActive.inc(labels, count);
    },
    established(ms) {
      handshake.observe(ms / 1000);
    },
    closed(bytesIn, bytesOut, durationMs, count = 1) {
      connectionsActive.dec(labels, count);
      up.inc(bytesIn);
      down.inc(bytesOut);
      // A batch reports its total time only: each of its connections is counted at the mean, so the
      // histogram's count and sum stay exact while its buckets blur for batched (fast-path) lines.
      for (let i = 0; i < count; i++) duration.observe(durationMs / count / 1000);
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
