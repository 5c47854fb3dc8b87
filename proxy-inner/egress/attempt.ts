/**
 * One egress attempt as the audit log sees it: who asked for what, what was decided, and how it
 * ended. Every code path of every protocol ends in exactly one `finish*` call, which emits the
 * one audit record of the attempt.
 */
import type { AuditDecision, ClosedBy, EgressAuditRecord, EgressProto, EgressReason } from '../../shared/audit/record.js';
import type { Destination } from '../../shared/egress/destination.js';
import type { PumpResult } from '../../shared/pump/index.js';
import { PrefixError } from '../../shared/util/read-prefix.js';
import type { EgressConnection } from './connection.js';
import type { Refusal } from './open-upstream.js';

export type AuditSink = (record: EgressAuditRecord) => void;

/** The reason for a handshake that did not complete: out of time, or the client broke it off. */
export function handshakeFailure(err: unknown): 'handshake_timeout' | 'handshake_failed' {
  return err instanceof PrefixError && err.code === 'prefix_timeout' ? 'handshake_timeout' : 'handshake_failed';
}

export interface Outcome {
  decision: AuditDecision;
  reason: EgressReason;
  rule: string | null;
  destIp: string | null;
  bytesUp: number;
  bytesDown: number;
  closedBy: ClosedBy | null;
  /** OS error name when the exchange ended by an error rather than cleanly. */
  closeError?: string | null;
}

export class Attempt {
  readonly connId: string;
  private readonly started = Date.now();
  dest: Destination | null = null;
  sni: string | null = null;
  private finished = false;

  constructor(
    private readonly sink: AuditSink,
    private readonly conn: EgressConnection,
    readonly proto: EgressProto,
  ) {
    this.connId = conn.beginAttempt();
  }

  get isFinished(): boolean {
    return this.finished;
  }

  finish(o: Outcome): void {
    if (this.finished) return;
    this.finished = true;
    this.emit(o);
    this.conn.endAttempt();
  }

  /** Refused before anything was opened (policy, malformed input, protocol errors). */
  finishDenied(reason: EgressReason): void {
    this.finish({ decision: 'deny', reason, rule: null, destIp: null, bytesUp: 0, bytesDown: 0, closedBy: null });
  }

  private emit(o: Outcome): void {
    const end = Date.now();
    this.sink({
      type: 'egress',
      ts: new Date(this.started).toISOString(),
      end_ts: new Date(end).toISOString(),
      duration_ms: end - this.started,
      conn_id: this.connId,
      listener: this.conn.ctx.listener,
      proto: this.proto,
      src: this.conn.src,
      dest_host: this.dest?.host.text ?? null,
      dest_port: this.dest?.port ?? null,
      dest_ip: o.destIp,
      sni: this.sni,
      decision: o.decision,
      rule: o.rule,
      reason: o.reason,
      bytes_up: o.bytesUp,
      bytes_down: o.bytesDown,
      closed_by: o.closedBy,
      close_error: o.closeError ?? null,
    });
  }

  finishRefused(r: Refusal): void {
    this.finish({ decision: r.decision, reason: r.reason, rule: r.rule, destIp: r.destIp, bytesUp: 0, bytesDown: 0, closedBy: null });
  }

  finishTunnel(result: PumpResult, destIp: string | null, rule: string | null): void {
    this.conn.tunnel = { up: result.bytesUp, down: result.bytesDown };
    this.finish({
      decision: 'allow',
      reason: 'allowed_by_rule',
      rule,
      destIp,
      bytesUp: result.bytesUp,
      bytesDown: result.bytesDown,
      closedBy: result.closedBy,
      closeError: result.error?.code ?? null,
    });
  }
}
