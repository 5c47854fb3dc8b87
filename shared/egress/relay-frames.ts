/**
 * The egress handshake between inner and outer (docs/wire-protocol.md): one EgressRequest frame
 * from the inner on a fresh connection to vsock port 17002, one EgressResponse frame back, then
 * raw tunnel bytes both ways.
 *
 * Both sides validate what they receive: the outer because the inner's requests are the only
 * thing that decides where it connects, the inner because the outer is untrusted.
 */
import { FrameError, FrameType, encodeFrame, type Frame } from '../wire/frame.js';
import { formatCidr, parseCidr, type IpCidr } from './ip.js';

/**
 * Version 2 (field `v`) adds `allow_ranges`. A version-1 request (no `v`) still parses, with no
 * ranges; a version-1 outer ignores the field, so its guard simply refuses as before.
 */
export const EGRESS_REQUEST_VERSION = 2;
/** More ranges than this in one request is a malformed frame (a policy has a handful). */
export const MAX_ALLOW_RANGES = 256;

export interface EgressRequest {
  /** Canonical host as the inner's policy judged it: lower-case LDH name or IP literal (no brackets). */
  host: string;
  port: number;
  /** The inner's connection id, so both sides' logs can be joined. */
  conn_id: string;
  /**
   * The address ranges the inner's policy allows explicitly for this port (its CIDR allow
   * entries): the outer's private-address guard lets the tunnel reach a non-public address
   * inside them. The inner stays the decider; the guard keeps refusing the rest (a name that
   * resolves somewhere private that the policy never named).
   */
  allow_ranges: IpCidr[];
}

/** Why the outer could not open a tunnel; the inner maps each to an HTTP status or SOCKS reply. */
export const RELAY_ERROR_CODES = [
  'bad_request',
  'resolve_failed',
  'guard_refused',
  'connect_refused',
  'connect_timeout',
  'unreachable',
  'upstream_proxy_failed',
] as const;
export type RelayErrorCode = (typeof RELAY_ERROR_CODES)[number];

export type EgressAnswer =
  /** `address`: the IP literal the outer connected to; null when an upstream proxy connected by name. */
  { ok: true; address: string | null } | { ok: false; code: RelayErrorCode; message: string };

export function encodeEgressRequest(req: EgressRequest): Buffer {
  return encodeFrame(FrameType.EgressRequest, {
    v: EGRESS_REQUEST_VERSION,
    host: req.host,
    port: req.port,
    conn_id: req.conn_id,
    allow_ranges: req.allow_ranges.map(formatCidr),
  });
}

export function encodeEgressAnswer(answer: EgressAnswer): Buffer {
  return encodeFrame(FrameType.EgressResponse, { ...answer });
}

function expectType(frame: Frame, type: FrameType): Record<string, unknown> {
  if (frame.type !== type)
    throw new FrameError('frame_unexpected', `expected a ${FrameType[type]} frame, got ${FrameType[frame.type] ?? frame.type}`, {
      type: frame.type,
    });
  return frame.payload;
}

function invalid(what: string, field: string): FrameError {
  return new FrameError('frame_invalid', `${what}: field "${field}" is missing or has the wrong type`, { field });
}

export function parseEgressRequest(frame: Frame): EgressRequest {
  const p = expectType(frame, FrameType.EgressRequest);
  const { v, host, port, conn_id, allow_ranges } = p;
  if (v !== undefined && v !== 1 && v !== EGRESS_REQUEST_VERSION) {
    // The value is the peer's: only a number is echoed (anything else may not even stringify).
    const shown = typeof v === 'number' ? String(v) : `of type ${typeof v}`;
    throw new FrameError('frame_version', `egress request version ${shown} is not 1 or ${EGRESS_REQUEST_VERSION}`, { version: shown });
  }
  if (typeof host !== 'string' || host.length === 0 || host.length > 300) throw invalid('egress request', 'host');
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw invalid('egress request', 'port');
  if (typeof conn_id !== 'string' || conn_id.length > 64) throw invalid('egress request', 'conn_id');
  const ranges: IpCidr[] = [];
  if (v === EGRESS_REQUEST_VERSION) {
    if (!Array.isArray(allow_ranges) || allow_ranges.length > MAX_ALLOW_RANGES) throw invalid('egress request', 'allow_ranges');
    for (const text of allow_ranges) {
      const c = typeof text === 'string' && text.length <= 64 ? parseCidr(text) : null;
      if (!c) throw invalid('egress request', 'allow_ranges');
      ranges.push(c);
    }
  }
  return { host, port, conn_id, allow_ranges: ranges };
}

export function parseEgressAnswer(frame: Frame): EgressAnswer {
  const p = expectType(frame, FrameType.EgressResponse);
  if (p.ok === true) {
    if (p.address !== null && (typeof p.address !== 'string' || p.address.length > 64)) throw invalid('egress answer', 'address');
    return { ok: true, address: p.address };
  }
  if (p.ok !== false) throw invalid('egress answer', 'ok');
  const code = (RELAY_ERROR_CODES as readonly unknown[]).includes(p.code) ? (p.code as RelayErrorCode) : 'unreachable';
  // The message is the outer's; it is logged, never shown to the app, and kept short.
  const message = typeof p.message === 'string' ? p.message.slice(0, 300) : '';
  return { ok: false, code, message };
}
