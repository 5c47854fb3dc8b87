/**
 * What HTTP clients are told when a request is refused or its destination unreachable. The
 * status says what kind of failure it was; the audit reason code (EGRESS_REASONS) says which
 * one, in the `X-Enclaver-Reason` header and in the body, so an app's logs show why without
 * anyone reading the audit log. Nothing else is said: no rule, no address, no OS error text
 * (policy details and the parent's network stay private).
 */
import type net from 'node:net';
import type { EgressReason } from '../../shared/audit/record.js';

export type RefusalStatus = 400 | 403 | 405 | 431 | 502 | 504 | 505;

export const REASON_HEADER = 'X-Enclaver-Reason';

const TEXT: Record<RefusalStatus, [string, string]> = {
  400: ['Bad Request', 'the request or its destination is malformed'],
  403: ['Forbidden', 'the egress policy does not allow this destination'],
  405: ['Method Not Allowed', 'this proxy protocol is not enabled on this listener'],
  431: ['Request Header Fields Too Large', 'the request has too many or too large header fields'],
  502: ['Bad Gateway', 'the destination could not be reached'],
  504: ['Gateway Timeout', 'the destination did not answer in time'],
  505: ['HTTP Version Not Supported', 'only HTTP/1.0 and HTTP/1.1 are proxied'],
};

/** Reasons whose 403 is not the enclave's policy: saying "the policy" would send users the wrong way. */
const REASON_TEXT: Partial<Record<EgressReason, string>> = {
  outer_guard_refused: "the parent refuses this non-public address: the enclave's policy allows it only by name, not by address",
};

export function refusalBody(status: RefusalStatus, reason: EgressReason): string {
  return `enclaver-proxy: ${REASON_TEXT[reason] ?? TEXT[status][1]} (${reason})\n`;
}

export function statusText(status: RefusalStatus): string {
  return TEXT[status][0];
}

/**
 * Answer on a raw socket (CONNECT, a refused request head) and close it: RFC 9931 — a proxy
 * rejecting CONNECT must close the connection without processing any data the client sent
 * after the request.
 */
export function refuseOnSocket(socket: net.Socket, status: RefusalStatus, reason: EgressReason): void {
  const body = refusalBody(status, reason);
  if (socket.writable) {
    socket.end(
      `HTTP/1.1 ${status} ${statusText(status)}\r\nContent-Type: text/plain\r\n${REASON_HEADER}: ${reason}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  // Whatever the client sent behind the request is discarded, never read.
  socket.once('finish', () => socket.destroy());
  setTimeout(() => socket.destroy(), 1000).unref();
}
