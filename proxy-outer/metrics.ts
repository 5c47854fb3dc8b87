/**
 * The outer's own metrics, defined in one place (STYLE.md "Stats"): the egress relay (tunnels by
 * outcome, open tunnels, connect latency), the audit collector (records received, acknowledged,
 * written, sink errors) and the enclave's state as the status channel reports it. Listener
 * metrics (connections, bytes, durations) are shared with the inner: shared/metrics/registry.ts.
 * They join the process registry only when an outer starts (`registerOuterMetrics`): the same
 * binary runs the inner, whose /metrics must not list the relay's zeros.
 */
import { Counter, Gauge, Histogram, type Metric } from '../shared/metrics/prom.js';
import { RELAY_ERROR_CODES, type RelayErrorCode } from '../shared/egress/relay-frames.js';
import { registry } from '../shared/metrics/registry.js';
import type { EnclaveStatus } from '../shared/wire/status.js';

/** `connected`, or why the relay could not open the tunnel (the code it answers the inner with). */
export type RelayOutcome = 'connected' | RelayErrorCode;

const relayTunnels = new Counter({
  name: 'enclaver_relay_tunnels_total',
  help: `Egress tunnels the relay was asked to open, by outcome (connected, ${RELAY_ERROR_CODES.join(', ')}).`,
  labelNames: ['outcome'] as const,
  registers: [],
});
const relayTunnelsActive = new Gauge({
  name: 'enclaver_relay_tunnels_active',
  help: 'Egress tunnels open through the relay now.',
  registers: [],
});
const relayConnectDuration = new Histogram({
  name: 'enclaver_relay_connect_duration_seconds',
  help: "Time from the inner's request to a connected upstream (or to the failure), resolving included, by result (connected, failed).",
  labelNames: ['result'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [],
});

export const relayMetrics = {
  /** The relay answered the inner's request `ms` after reading it. */
  answered(outcome: RelayOutcome, ms: number): void {
    relayTunnels.inc({ outcome });
    relayConnectDuration.observe({ result: outcome === 'connected' ? 'connected' : 'failed' }, ms / 1000);
  },
  opened(): void {
    relayTunnelsActive.inc();
  },
  closed(): void {
    relayTunnelsActive.dec();
  },
};
for (const outcome of ['connected', ...RELAY_ERROR_CODES] as const) relayTunnels.inc({ outcome }, 0);

const auditReceived = new Counter({
  name: 'enclaver_audit_records_received_total',
  help: 'Audit records received from the inner, re-sent duplicates included.',
  registers: [],
});
const auditAcknowledged = new Counter({
  name: 'enclaver_audit_records_acknowledged_total',
  help: 'Audit records acknowledged to the inner (written, or known to be written already).',
  registers: [],
});
const auditWritten = new Counter({
  name: 'enclaver_audit_records_written_total',
  help: 'Audit records handed to the audit sinks (stdout, file, syslog), each once.',
  registers: [],
});
const auditSinkErrors = new Counter({
  name: 'enclaver_audit_sink_errors_total',
  help: 'Writes of audit records to a sink (file, stdout, syslog) that failed; nothing is acknowledged, so the inner keeps and re-sends them.',
  registers: [],
});

export const auditCollectorMetrics = {
  received(n: number): void {
    auditReceived.inc(n);
  },
  acknowledged(n: number): void {
    auditAcknowledged.inc(n);
  },
  written(n: number): void {
    auditWritten.inc(n);
  },
  sinkError(): void {
    auditSinkErrors.inc();
  },
};

const ENCLAVE_STATES = ['unknown', 'starting', 'running', 'exited', 'fatal'] as const;
const enclaveUp = new Gauge({
  name: 'enclaver_enclave_up',
  help: '1 while the enclave reports its app running, else 0.',
  registers: [],
});
const enclaveState = new Gauge({
  name: 'enclaver_enclave_state',
  help: `The enclave's state as its status channel last reported it: 1 for the current state, 0 for the others (${ENCLAVE_STATES.join(', ')}).`,
  labelNames: ['state'] as const,
  registers: [],
});

/** Reflect the enclave's latest status (undefined: none received yet). */
export function setEnclaveState(status: EnclaveStatus | undefined): void {
  const current = status?.state ?? 'unknown';
  for (const state of ENCLAVE_STATES) enclaveState.set({ state }, state === current ? 1 : 0);
  enclaveUp.set(current === 'running' ? 1 : 0);
}

const OUTER_METRICS: Metric[] = [
  relayTunnels,
  relayTunnelsActive,
  relayConnectDuration,
  auditReceived,
  auditAcknowledged,
  auditWritten,
  auditSinkErrors,
  enclaveUp,
  enclaveState,
];
let registered = false;

/** Adds the outer's metrics to the process registry that /metrics serves (once). */
export function registerOuterMetrics(): void {
  if (registered) return;
  registered = true;
  for (const metric of OUTER_METRICS) registry.registerMetric(metric);
  setEnclaveState(undefined);
}
