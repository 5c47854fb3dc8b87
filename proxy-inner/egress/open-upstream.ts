/**
 * The step every egress protocol shares once it has a destination: decide, ask the outer to
 * connect, check the address it connected to, and either hand back an open upstream or a refusal
 * that each protocol turns into its own answer (HTTP status or SOCKS reply).
 */
import type net from 'node:net';
import { ProxyError } from '../../shared/errors/index.js';
import { formatIp, parseIPv4Strict, parseIPv6, type IpAddress } from '../../shared/egress/ip.js';
import type { Destination } from '../../shared/egress/destination.js';
import { decide, decideConnected, explicitRanges } from '../../shared/egress/policy.js';
import type { AuditDecision, EgressReason } from '../../shared/audit/record.js';
import type { EgressContext } from './context.js';
import type { RefusalStatus } from './http-answers.js';
import { dialRelay, RelayError, type RelayFailure } from './relay-client.js';

export interface Refusal {
  decision: Exclude<AuditDecision, 'allow'>;
  reason: EgressReason;
  rule: string | null;
  /** The HTTP status for CONNECT / absolute-form clients. */
  status: Exclude<RefusalStatus, 405 | 431 | 505>;
  /** The SOCKS5 reply code (RFC 1928 §6). */
  socksReply: number;
  destIp: string | null;
}

export interface Opened {
  socket: net.Socket;
  headDown: Buffer;
  destIp: string | null;
  rule: string | null;
}

/** Carries a refusal through APIs that only pass errors (the HTTP agent's createConnection). */
export class RefusedError extends ProxyError {
  constructor(readonly refusal: Refusal) {
    super(`egress_${refusal.reason}`, `egress refused: ${refusal.reason}`, { ...refusal });
  }
}

export const SocksReply = {
  Succeeded: 0x00,
  GeneralFailure: 0x01,
  NotAllowed: 0x02,
  NetworkUnreachable: 0x03,
  HostUnreachable: 0x04,
  ConnectionRefused: 0x05,
  TtlExpired: 0x06,
  CommandNotSupported: 0x07,
  AddressTypeNotSupported: 0x08,
} as const;

export function malformedRefusal(): Refusal {
  return {
    decision: 'deny',
    reason: 'malformed_destination',
    rule: null,
    status: 400,
    socksReply: SocksReply.GeneralFailure,
    destIp: null,
  };
}

function relayRefusal(failure: RelayFailure): Refusal {
  const base = { rule: null, destIp: null } as const;
  switch (failure) {
    // The outer's own guard is a policy too, and says so the same way.
    case 'guard_refused':
      return { ...base, decision: 'deny', reason: 'outer_guard_refused', status: 403, socksReply: SocksReply.NotAllowed };
    case 'connect_timeout':
      return { ...base, decision: 'error', reason: 'upstream_timeout', status: 504, socksReply: SocksReply.HostUnreachable };
    case 'connect_refused':
      return { ...base, decision: 'error', reason: 'upstream_refused', status: 502, socksReply: SocksReply.ConnectionRefused };
    case 'resolve_failed':
      return { ...base, decision: 'error', reason: 'resolve_failed', status: 502, socksReply: SocksReply.HostUnreachable };
    case 'unreachable':
      return { ...base, decision: 'error', reason: 'upstream_unreachable', status: 502, socksReply: SocksReply.NetworkUnreachable };
    case 'upstream_proxy_failed':
      return { ...base, decision: 'error', reason: 'upstream_proxy_failed', status: 502, socksReply: SocksReply.GeneralFailure };
    case 'bad_request':
      return { ...base, decision: 'error', reason: 'relay_rejected_request', status: 502, socksReply: SocksReply.GeneralFailure };
    case 'relay_unavailable':
      return { ...base, decision: 'error', reason: 'relay_unavailable', status: 502, socksReply: SocksReply.GeneralFailure };
  }
}

function parseReported(address: string): IpAddress | null {
  return parseIPv4Strict(address) ?? parseIPv6(address);
}

export async function openUpstream(ctx: EgressContext, dest: Destination, connId: string): Promise<Opened | Refusal> {
  const { policy, connectTimeoutMs } = ctx.listener.egress;
  const first = decide(policy, dest);
  if (!first.allowed)
    return { decision: 'deny', reason: first.reason, rule: first.rule, status: 403, socksReply: SocksReply.NotAllowed, destIp: null };
  let tunnel;
  try {
    tunnel = await dialRelay(ctx.deps.relay, connectTimeoutMs, {
      host: dest.host.text,
      port: dest.port,
      conn_id: connId,
      allow_ranges: explicitRanges(policy, dest),
    });
  } catch (err) {
    if (err instanceof RelayError) return { ...relayRefusal(err.failure), rule: first.rule };
    throw err;
  }
  if (tunnel.address === null) return { socket: tunnel.socket, headDown: tunnel.headDown, destIp: null, rule: first.rule };
  const connected = parseReported(tunnel.address);
  if (!connected) {
    tunnel.socket.destroy();
    return { ...relayRefusal('relay_unavailable'), reason: 'relay_bad_address', rule: first.rule };
  }
  const destIp = formatIp(connected);
  const second = decideConnected(policy, dest, first, connected);
  if (!second.allowed) {
    // Cut before a byte of the client's flows: the outer sees the tunnel close straight away.
    tunnel.socket.destroy();
    return { decision: 'deny', reason: second.reason, rule: second.rule, status: 403, socksReply: SocksReply.NotAllowed, destIp };
  }
  return { socket: tunnel.socket, headDown: tunnel.headDown, destIp, rule: first.rule };
}

export function isRefusal(r: Opened | Refusal): r is Refusal {
  return 'status' in r;
}
