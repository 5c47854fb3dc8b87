/**
 * HTTP/1.1 CONNECT (RFC 9110 §9.3.6): `CONNECT host:port`, answered `200` once the outer has
 * connected and the connected address passed the policy, then a raw tunnel. The request head
 * was already read and checked by http-head.ts; this only judges its target.
 */
import { canonicalHost, DestinationError, parseAuthority, type Destination } from '../../shared/egress/destination.js';
import { Attempt } from './attempt.js';
import type { EgressConnection } from './connection.js';
import type { EgressContext } from './context.js';
import { refuseOnSocket } from './http-answers.js';
import { headerValues, type RequestHead } from './http-head.js';
import { isRefusal, malformedRefusal, openUpstream } from './open-upstream.js';
import { runTunnel } from './tunnel.js';

const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection Established\r\n\r\n', 'latin1');

/**
 * The CONNECT target, refusing what HAProxy's request-target tests refuse: no port, a path or
 * URL instead of an authority, duplicate Host headers, a Host that names another authority, and
 * a request body (content on CONNECT has no meaning: bytes after the head are tunnel bytes).
 */
function connectTarget(head: RequestHead): Destination {
  const dest = parseAuthority(head.target);
  const hosts = headerValues(head.headers, 'host');
  if (hosts.length > 1) throw new DestinationError('duplicate Host headers', head.target);
  if (
    headerValues(head.headers, 'transfer-encoding').length > 0 ||
    headerValues(head.headers, 'content-length').some((v) => Number(v) !== 0)
  ) {
    throw new DestinationError('a CONNECT request has no body', head.target);
  }
  const host = hosts[0];
  if (host !== undefined && host !== '') {
    const bracketed = host.startsWith('[');
    const colon = bracketed ? host.indexOf(']:') + 1 : host.lastIndexOf(':');
    const hostPart = colon > 0 ? host.slice(0, colon) : host;
    const portPart = colon > 0 ? host.slice(colon + 1) : undefined;
    let same: boolean;
    try {
      same = canonicalHost(hostPart).text === dest.host.text && (portPart === undefined || Number(portPart) === dest.port);
    } catch {
      same = false;
    }
    if (!same) throw new DestinationError('Host header does not match the CONNECT authority', head.target);
  }
  return dest;
}

/** `rest`: bytes the client sent behind the head (early tunnel data), forwarded only if allowed. */
export async function handleConnect(ctx: EgressContext, conn: EgressConnection, head: RequestHead, rest: Buffer): Promise<void> {
  const client = conn.socket;
  const attempt = new Attempt(ctx.deps.audit, conn, 'http_connect');
  if (!ctx.protocols.has('http_connect')) {
    refuseOnSocket(client, 405, 'protocol_disabled');
    attempt.finishDenied('protocol_disabled');
    return;
  }
  let dest: Destination;
  try {
    dest = connectTarget(head);
  } catch (err) {
    if (!(err instanceof DestinationError)) throw err;
    refuseOnSocket(client, 400, 'malformed_destination');
    attempt.finishRefused(malformedRefusal());
    return;
  }
  attempt.dest = dest;
  const opened = await openUpstream(ctx, dest, attempt.connId);
  if (isRefusal(opened)) {
    refuseOnSocket(client, opened.status, opened.reason);
    attempt.finishRefused(opened);
    return;
  }
  await runTunnel(ctx, conn, attempt, dest, opened, rest, ESTABLISHED);
}
