/**
 * What each audit `reason` means, in one line: the table in docs/egress.md must list exactly
 * these (checked by test/unit/egress/reasons.test.ts), and the `Record` type makes the compiler
 * refuse a reason that is used but not described here.
 */
import type { EgressReason } from '../../shared/audit/record.js';

export const EGRESS_REASONS: Readonly<Record<EgressReason, string>> = {
  allowed_by_rule: 'allowed: `rule` names the allow entry',
  denied_by_rule: 'refused by the deny entry in `rule`',
  not_in_allow_list: 'refused: no allow entry matches (default deny)',
  resolved_address_denied: 'the name is allowed, but the address the outer connected to is in a deny range',
  malformed_destination: 'the requested host or port is not a valid destination (400 / SOCKS 0x01)',
  protocol_disabled: "the protocol is not in this listener's `protocols` (405)",
  http_protocol_error:
    'the request is not strict HTTP/1.x: CL+TE, duplicate Content-Length, bad chunking, obs-fold, ' +
    'bare CR/LF, NUL, space before a colon, too many or too large headers, HTTP/2 preface, not HTTP at all (400/431/505)',
  socks_protocol_error: 'the SOCKS5 greeting or request breaks RFC 1928',
  socks_no_acceptable_method: 'the SOCKS5 client offered no method this proxy accepts (no-auth only)',
  handshake_timeout: 'the request head or SOCKS5 handshake was not complete within `handshake_timeout`',
  handshake_failed: 'the client closed or broke the connection in the middle of its handshake',
  sni_unreadable: '`require_sni_match`: no readable TLS ClientHello in time',
  sni_missing: '`require_sni_match`: the ClientHello names no server although a name was requested',
  sni_mismatch: '`require_sni_match`: the ClientHello names another host (domain fronting)',
  outer_guard_refused: "the outer's guard refused a non-public address the policy did not allow explicitly (DNS rebinding)",
  resolve_failed: 'the outer could not resolve the name (502)',
  upstream_refused: 'the destination refused the connection (502)',
  upstream_timeout: 'the destination did not accept in `connect_timeout` (504)',
  upstream_unreachable: 'no route to the destination (502)',
  upstream_proxy_failed: "the outer's upstream proxy refused or failed (502)",
  relay_rejected_request: 'the outer refused the relay request frame (502)',
  relay_unavailable: 'the outer relay could not be reached or broke the protocol (502)',
  relay_bad_address: 'the outer reported a connected address that is not an IP address (502)',
  client_gone: 'allowed, but the client went away before the exchange completed',
  upstream_failed: 'allowed, but the destination connection failed during the request (502)',
  upstream_bad_response: "allowed, but the destination's response could not be forwarded (502)",
};
