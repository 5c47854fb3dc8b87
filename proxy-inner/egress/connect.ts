/**
 * HTTP/1.1 CONNECT (RFC 9110 §9.3.6): `CONNECT host:port`, answered `200` once the outer has
 * connected and the connected address passed the policy, then a raw tunnel.
 */
import type http from 'node:http';
import type net from 'node:net';
import { canonicalHost, DestinationError, parseAuthority, type Destination } from '../../shared/egress/destination.js';
import { Attempt } from './attempt.js';
import type { EgressContext } from './context.js';
import { refuseOnSocket } from './http-answers.js';
import { isRefusal, malformedRefusal, openUpstream } from './open-upstream.js';
import { runTunnel } from './tunnel.js';

/**
 * The CONNECT target, refusing what HAProxy's request-target tests refuse: no port, a path or
 * URL instead of an authority, duplicate Host headers, and a Host that names another authority.
 */
function connectTarget(req: http.IncomingMessage): Destination {
  const dest = parseAuthority(req.url ?? '');
  const hosts = req.headersDistinct.host ?? [];
  if (hosts.length > 1) throw new DestinationError('duplicate Host headers', req.url ?? '');
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
    if (!same) throw new DestinationError('Host header does not match the CONNECT authority', req.url ?? '');
  }
  return dest;
}

export async function handleConnect(ctx: EgressContext, req: http.IncomingMessage, client: net.Socket, head: Buffer): Promise<void> {
  client.on('error', () => {});
  const attempt = new Attempt(ctx.audit, ctx.listener, 'http_connect', client);
  if (!ctx.protocols.has('http_connect')) {
    refuseOnSocket(client, 405);
    attempt.finish({ decision: 'deny', reason: 'protocol_disabled', rule: null, destIp: null, bytesUp: 0, bytesDown: 0, closedBy: null });
    return;
  }
  try {
    attempt.dest = connectTarget(req);
  } catch (err) {
    if (!(err instanceof DestinationError)) throw err;
    refuseOnSocket(client, 400);
    attempt.finishRefused(malformedRefusal());
    return;
  }
  const opened = await openUpstream(ctx.upstream, attempt.dest, attempt.connId);
  if (isRefusal(opened)) {
    refuseOnSocket(client, opened.status);
    attempt.finishRefused(opened);
    return;
  }
  await runTunnel(ctx, attempt, client, opened, head, () => {
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  });
}
