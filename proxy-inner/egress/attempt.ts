/**
 * One egress attempt as the audit log sees it: who asked for what, what was decided, and how it
 * ended. Every code path of every protocol ends in exactly one `finish*` call, which emits the
 * one audit record of the attempt.
 */
import type net from 'node:net';
import type { ConnectionContext } from '../../shared/listener/types.js';
import type { AuditDecision, EgressAuditRecord, EgressProto } from '../../shared/audit/record.js';
import type { Destination } from '../../shared/egress/destination.js';
import type { PumpResult } from '../../shared/pump/index.js';
import type { Refusal } from './open-upstream.js';

export type AuditSink = (record: EgressAuditRecord) => void;

export interface Outcome {
  decision: AuditDecision;
  reason: string;
  rule: string | null;
  destIp: string | null;
  bytesUp: number;
  bytesDown: number;
  closedBy: string | null;
  /** OS error name when the exchange ended by an error rather than cleanly. */
  closeError?: string | null;
}

interface ConnectionState {
  ctx: ConnectionContext;
  attempts: number;
  /** Attempts not finished yet: a tunnel outlives its JS socket when the native pump carries it. */
  open: number;
  settled: (() => void)[];
  /** Payload bytes of the connection's tunnel, exact from the pump (the socket's own counters stop at the hand-over). */
  tunnel: { up: number; down: number } | null;
}

const connections = new WeakMap<net.Socket, ConnectionState>();

/** Remember the listener's context of an accepted socket, for handlers that only get the socket. */
export function registerConnection(socket: net.Socket, ctx: ConnectionContext): void {
  connections.set(socket, { ctx, attempts: 0, open: 0, settled: [], tunnel: null });
}

/** Resolves once every attempt on the connection has finished (and been audited). */
export function connectionSettled(socket: net.Socket): Promise<void> {
  const c = connections.get(socket);
  if (!c || c.open === 0) return Promise.resolve();
  return new Promise((resolve) => c.settled.push(resolve));
}

export function tunnelBytesOf(socket: net.Socket): { up: number; down: number } | null {
  return connections.get(socket)?.tunnel ?? null;
}

export function connectionOf(socket: net.Socket): ConnectionContext | undefined {
  return connections.get(socket)?.ctx;
}

/** The connection id for the first attempt on a socket, `<id>.<n>` for later keep-alive requests. */
function attemptId(socket: net.Socket): string {
  const c = connections.get(socket);
  if (!c) return 'unregistered';
  c.attempts += 1;
  return c.attempts === 1 ? c.ctx.id : `${c.ctx.id}.${c.attempts}`;
}

function socketSource(s: net.Socket): string {
  if (s.remoteAddress === undefined) return 'unix';
  return s.remoteAddress.includes(':') ? `[${s.remoteAddress}]:${s.remotePort}` : `${s.remoteAddress}:${s.remotePort}`;
}

export class Attempt {
  readonly connId: string;
  readonly src: string;
  private readonly started = new Date();
  dest: Destination | null = null;
  sni: string | null = null;
  private finished = false;

  private readonly connection: ConnectionState | undefined;

  constructor(private readonly sink: AuditSink, private readonly listener: string, readonly proto: EgressProto, client: net.Socket) {
    this.connId = attemptId(client);
    this.src = socketSource(client);
    this.connection = connections.get(client);
    if (this.connection) this.connection.open += 1;
  }

  finish(o: Outcome): void {
    if (this.finished) return;
    this.finished = true;
    this.emit(o);
    const c = this.connection;
    if (c && --c.open === 0) for (const resolve of c.settled.splice(0)) resolve();
  }

  private emit(o: Outcome): void {
    const end = new Date();
    this.sink({
      type: 'egress',
      ts: this.started.toISOString(),
      end_ts: end.toISOString(),
      duration_ms: end.getTime() - this.started.getTime(),
      conn_id: this.connId,
      listener: this.listener,
      proto: this.proto,
      src: this.src,
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
    if (this.connection) this.connection.tunnel = { up: result.bytesUp, down: result.bytesDown };
    this.finish({
      decision: 'allow', reason: 'allowed_by_rule', rule, destIp,
      bytesUp: result.bytesUp, bytesDown: result.bytesDown, closedBy: result.closedBy, closeError: result.error?.code ?? null,
    });
  }
}

