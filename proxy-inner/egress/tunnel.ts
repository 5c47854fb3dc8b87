/**
 * The data phase of a CONNECT or SOCKS5 tunnel: tell the client it is open, optionally check the
 * TLS ClientHello's SNI against the requested host, then hand both sockets to the pump.
 */
import type net from 'node:net';
import { canonicalHost, DestinationError, type Destination } from '../../shared/egress/destination.js';
import { pumpedTotal } from '../../shared/metrics/registry.js';
import { activePump } from '../../shared/pump/index.js';
import { readPrefix } from '../../shared/util/read-prefix.js';
import type { Attempt } from './attempt.js';
import type { EgressConnection } from './connection.js';
import type { EgressContext } from './context.js';
import type { Opened } from './open-upstream.js';
import { MAX_CLIENT_HELLO_BYTES, parseClientHelloSni } from './sni.js';

type SniVerdict =
  | { ok: true; sni: string | null; buffered: Buffer }
  | { ok: false; sni: string | null; reason: 'sni_unreadable' | 'sni_missing' | 'sni_mismatch' };

/** Read the ClientHello (leaving it to be forwarded) and compare its SNI with the requested host. */
async function checkSni(ctx: EgressContext, client: net.Socket, head: Buffer, dest: Destination): Promise<SniVerdict> {
  if (head.length > 0) client.unshift(head);
  let sni: string | null;
  let buffered: Buffer;
  try {
    const r = await readPrefix(client, parseClientHelloSni, {
      timeoutMs: ctx.listener.egress.handshakeTimeoutMs,
      maxBytes: MAX_CLIENT_HELLO_BYTES,
      what: 'TLS ClientHello',
    });
    sni = r.value;
    buffered = r.rest;
  } catch {
    return { ok: false, sni: null, reason: 'sni_unreadable' };
  }
  const host = dest.host;
  if (sni === null) {
    // A client that asked for an IP address has no name to send; one that asked for a name must.
    return host.kind === 'ip' ? { ok: true, sni, buffered } : { ok: false, sni, reason: 'sni_missing' };
  }
  let canonical: string;
  try {
    canonical = canonicalHost(sni).text;
  } catch (err) {
    if (err instanceof DestinationError) return { ok: false, sni, reason: 'sni_mismatch' };
    throw err;
  }
  return canonical === host.text ? { ok: true, sni: canonical, buffered } : { ok: false, sni: canonical, reason: 'sni_mismatch' };
}

/** The app went away while the outer was connecting: close the tunnel it asked for. */
function clientGone(client: net.Socket, attempt: Attempt, opened: Opened): boolean {
  if (!client.destroyed) return false;
  opened.socket.destroy();
  attempt.finish({
    decision: 'allow',
    reason: 'client_gone',
    rule: opened.rule,
    destIp: opened.destIp,
    bytesUp: 0,
    bytesDown: 0,
    closedBy: 'downstream',
  });
  return true;
}

/**
 * `dest` is the destination `opened` reached (what the SNI must name). `acceptance` is the client's "tunnel open" answer (`200`, SOCKS success). Without an SNI check
 * it goes to the pump as the first downstream bytes: the pump's thread writes it, not the event
 * loop (a loopback write runs the receiver's TCP path too: ~14% of the inner's CPU per CONNECT,
 * issue 13). With the SNI check the client must have it before it sends its ClientHello.
 */
export async function runTunnel(
  ctx: EgressContext,
  conn: EgressConnection,
  attempt: Attempt,
  dest: Destination,
  opened: Opened,
  head: Buffer,
  acceptance: Buffer,
): Promise<void> {
  const client = conn.socket;
  // A pump given an already-closed socket would wait for a close that has happened.
  if (clientGone(client, attempt, opened)) return;
  let headUp = head;
  let headDown = opened.headDown.length === 0 ? acceptance : Buffer.concat([acceptance, opened.headDown]);
  if (ctx.listener.egress.requireSniMatch) {
    client.write(acceptance);
    headDown = opened.headDown;
    const verdict = await checkSni(ctx, client, head, dest);
    attempt.sni = verdict.sni;
    if (!verdict.ok) {
      client.destroy();
      opened.socket.destroy();
      attempt.finish({
        decision: 'deny',
        reason: verdict.reason,
        rule: opened.rule,
        destIp: opened.destIp,
        bytesUp: 0,
        bytesDown: 0,
        closedBy: null,
      });
      return;
    }
    headUp = verdict.buffered;
    if (clientGone(client, attempt, opened)) return;
  }
  conn.ctx.established();
  // Drain's deadline reaches the tunnel through the pump (conn.abort): the JS socket may be gone by then.
  const result = await conn.carry(activePump().run(client, opened.socket, { headUp, headDown, idleTimeoutMs: ctx.listener.idleTimeoutMs }));
  pumpedTotal.inc({ listener: ctx.listener.name, path: result.path });
  // The pump counted the acceptance it wrote: the audit counts the tunnel's bytes only.
  const proxyBytes = headDown.length - opened.headDown.length;
  attempt.finishTunnel({ ...result, bytesDown: Math.max(0, result.bytesDown - proxyBytes) }, opened.destIp, opened.rule);
}
