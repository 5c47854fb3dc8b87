/**
 * Audit records: one per egress attempt, allowed and denied alike, plus an explicit record for any
 * records the inner had to drop. The inner turns each into one JSON line that starts with the
 * stream's `seq`, `boot_id` and the hash of the previous line (shared/audit/chain.ts), so that a
 * reader can prove there is no gap; the evidence records that make the chain checkable (the boot's
 * attestation, signed checkpoints) are defined there too.
 */
export type EgressProto = 'http_connect' | 'http' | 'socks5';

/** `allow`: the tunnel or request went through; `deny`: refused by policy or as malformed;
 * `error`: allowed, but the destination could not be reached. */
export type AuditDecision = 'allow' | 'deny' | 'error';

/**
 * Why an attempt ended as it did: stable strings for the audit `reason` and the metric label.
 * Each has its one-line meaning in EGRESS_REASONS (proxy-inner/egress/reasons.ts), from which the
 * table in docs/egress.md is checked by a test.
 */
export type EgressReason =
  // the policy's decision (shared/egress/policy.ts DecisionReason)
  | 'allowed_by_rule'
  | 'denied_by_rule'
  | 'not_in_allow_list'
  | 'resolved_address_denied'
  // what the client sent
  | 'malformed_destination'
  | 'protocol_disabled'
  | 'http_protocol_error'
  | 'socks_protocol_error'
  | 'socks_no_acceptable_method'
  | 'handshake_timeout'
  | 'handshake_failed'
  | 'sni_unreadable'
  | 'sni_missing'
  | 'sni_mismatch'
  // the outer relay's answer
  | 'outer_guard_refused'
  | 'resolve_failed'
  | 'upstream_refused'
  | 'upstream_timeout'
  | 'upstream_unreachable'
  | 'upstream_proxy_failed'
  | 'relay_rejected_request'
  | 'relay_unavailable'
  | 'relay_bad_address'
  // how an allowed exchange ended early
  | 'client_gone'
  | 'upstream_failed'
  | 'upstream_bad_response';

/** Who ended an exchange that opened (the pump's CloseCause); null when it never opened. */
export type ClosedBy = 'downstream' | 'upstream' | 'aborted' | 'idle_timeout';

export interface EgressAuditRecord {
  type: 'egress';
  ts: string;
  end_ts: string;
  duration_ms: number;
  conn_id: string;
  listener: string;
  proto: EgressProto;
  /** The client's address (`127.0.0.1:54321`). */
  src: string;
  /** Canonical host as judged; null when the request was too malformed to name one. */
  dest_host: string | null;
  dest_port: number | null;
  /** The address the outer connected to (null if it never did, or connected through a proxy by name). */
  dest_ip: string | null;
  /** SNI of the tunnel's TLS ClientHello, when the listener peeks it. */
  sni: string | null;
  decision: AuditDecision;
  /** The policy entry that decided, or null (default deny, malformed input). */
  rule: string | null;
  reason: EgressReason;
  bytes_up: number;
  bytes_down: number;
  closed_by: ClosedBy | null;
  /** How the exchange broke, when it did not end cleanly (`ECONNRESET`, `EPIPE`, …). */
  close_error: string | null;
}

/** Stands in the stream for records the inner's bounded buffer could not hold. */
export interface AuditDroppedRecord {
  type: 'audit_dropped';
  ts: string;
  count: number;
  first_dropped_ts: string;
  last_dropped_ts: string;
}

export type AuditRecord = EgressAuditRecord | AuditDroppedRecord;
