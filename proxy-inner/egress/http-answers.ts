/**
 * What HTTP clients are told when a destination is refused or unreachable. The body names the
 * cause in general terms only: policy details and the parent's network stay private.
 */
import type net from 'node:net';

export type RefusalStatus = 400 | 403 | 405 | 502 | 504;

const TEXT: Record<RefusalStatus, [string, string]> = {
  400: ['Bad Request', 'the destination is malformed'],
  403: ['Forbidden', 'the egress policy does not allow this destination'],
  405: ['Method Not Allowed', 'this proxy protocol is not enabled on this listener'],
  502: ['Bad Gateway', 'the destination could not be reached'],
  504: ['Gateway Timeout', 'the destination did not answer in time'],
};

export function refusalBody(status: RefusalStatus): string {
  return `enclaver-proxy: ${TEXT[status][1]}\n`;
}

export function statusText(status: RefusalStatus): string {
  return TEXT[status][0];
}

/**
 * Answer on a raw socket (CONNECT) and close it: RFC 9931 — a proxy rejecting CONNECT must close
 * the connection without processing any data the client sent after the request.
 */
export function refuseOnSocket(socket: net.Socket, status: RefusalStatus): void {
  const body = refusalBody(status);
  if (socket.writable) {
    socket.end(`HTTP/1.1 ${status} ${statusText(status)}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  // Whatever the client sent behind the request is discarded, never read.
  socket.once('finish', () => socket.destroy());
  setTimeout(() => socket.destroy(), 1000).unref();
}
