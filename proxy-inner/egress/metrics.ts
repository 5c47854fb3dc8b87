/**
 * Egress metrics, counted from the same records the audit log gets, so the two always agree:
 * attempts by decision and reason, and tunnel bytes by direction (per listener).
 */
import { Counter, Gauge } from '../../shared/metrics/prom.js';
import type { EgressAuditRecord } from '../../shared/audit/record.js';
import { DIRECTIONS, registry } from '../../shared/metrics/registry.js';
import type { AuditSenderStats } from '../audit/sender.js';

const attempts = new Counter({
  name: 'enclaver_egress_attempts_total',
  help: 'Egress attempts, by listener, protocol, decision (allow, deny, error) and reason (denied_by_rule, not_in_allow_list, resolved_address_denied, …).',
  labelNames: ['listener', 'proto', 'decision', 'reason'] as const,
  registers: [registry],
});

const bytes = new Counter({
  name: 'enclaver_egress_bytes_total',
  help: 'Bytes through egress tunnels and forwarded requests, by listener and direction (client_to_upstream: from the app, upstream_to_client: to it).',
  labelNames: ['listener', 'direction'] as const,
  registers: [registry],
});

export function countEgress(r: EgressAuditRecord): void {
  attempts.inc({ listener: r.listener, proto: r.proto, decision: r.decision, reason: r.reason });
  if (r.bytes_up) bytes.inc({ listener: r.listener, direction: DIRECTIONS.up }, r.bytes_up);
  if (r.bytes_down) bytes.inc({ listener: r.listener, direction: DIRECTIONS.down }, r.bytes_down);
}

/** Audit stream health: records waiting for the outer, and records lost to a full buffer. */
export function auditStreamMetrics(stats: () => AuditSenderStats): void {
  new Gauge({
    name: 'enclaver_audit_unacknowledged',
    help: 'Audit records held by the inner until the outer acknowledges them.',
    registers: [registry],
    collect() {
      this.set(stats().buffered);
    },
  });
  // A counter that follows the sender's own running total: each scrape adds what was dropped since the last one.
  let reported = 0;
  new Counter({
    name: 'enclaver_audit_dropped_total',
    help: 'Audit records dropped because the buffer was full (each drop is reported in an audit_dropped record).',
    registers: [registry],
    collect() {
      const total = stats().droppedTotal;
      if (total > reported) this.inc(total - reported);
      reported = total;
    },
  });
}
