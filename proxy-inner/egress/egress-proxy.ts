/**
 * The egress listener kind (default tcp://127.0.0.1:10000): HTTP CONNECT, absolute-form HTTP and
 * SOCKS5 on one port (told apart by the first byte), or any subset of them. The generic Listener
 * accepts; this handles one connection until it is closed.
 *
 * The first message is read here, within `handshake_timeout` and a byte limit: a SOCKS5
 * greeting goes to socks5.ts, a request head (parsed strictly by http-head.ts) to connect.ts
 * for CONNECT or to Node's parser (http-forward.ts) for absolute-form requests. Whatever is
 * refused on the way leaves exactly one audit record.
 */
import { messageOf } from '../../shared/errors/index.js';
import { logger } from '../../shared/log/logger.js';
import type { ConnectionHandler } from '../../shared/listener/types.js';
import { PrefixError, readPrefix, type PrefixParse } from '../../shared/util/read-prefix.js';
import { Attempt, handshakeFailure } from './attempt.js';
import { handleConnect } from './connect.js';
import { EgressConnection } from './connection.js';
import { egressContext, type EgressContext, type EgressDeps, type EgressListenerSlice } from './context.js';
import { refuseOnSocket } from './http-answers.js';
import { forwardHttp } from './http-forward.js';
import { HttpProtocolError, MAX_HEAD_BYTES, parseRequestHead, type RequestHead } from './http-head.js';
import { handleSocks5 } from './socks5.js';

const SOCKS5_VERSION = 0x05;

type FirstMessage = { kind: 'socks5' } | { kind: 'http'; head: RequestHead; raw: Buffer };

function firstMessageParser(ctx: EgressContext): (buf: Buffer) => PrefixParse<FirstMessage> {
  const wantsHttp = ctx.protocols.has('http') || ctx.protocols.has('http_connect');
  const wantsSocks = ctx.protocols.has('socks5');
  const { maxHeaders } = ctx.listener.egress;
  // SOCKS5 greetings start with 0x05; an HTTP method with an upper-case letter. The byte is not
  // consumed: the SOCKS5 handler reads the greeting itself.
  const socks: PrefixParse<FirstMessage> = { done: true, value: { kind: 'socks5' }, consumed: 0 };
  return (buf) => {
    if (wantsSocks && (!wantsHttp || buf[0] === SOCKS5_VERSION)) return buf.length > 0 ? socks : { done: false };
    const r = parseRequestHead(buf, maxHeaders);
    return r.done ? { done: true, value: { kind: 'http', head: r.value, raw: buf.subarray(0, r.consumed) }, consumed: r.consumed } : r;
  };
}

/** The first message could not be read: refuse and audit it (once), or just close. */
function firstMessageFailed(ctx: EgressContext, conn: EgressConnection, err: unknown): void {
  const socket = conn.socket;
  if (err instanceof HttpProtocolError) {
    refuseOnSocket(socket, err.status, 'http_protocol_error');
    new Attempt(ctx.deps.audit, conn, err.method === 'CONNECT' ? 'http_connect' : 'http').finishDenied('http_protocol_error');
    return;
  }
  socket.destroy();
  // A client that sent nothing made no attempt (port scans, health checks); one that sent part
  // of a request head did, and it is audited.
  if (err instanceof PrefixError && Number(err.context.received) > 0)
    new Attempt(ctx.deps.audit, conn, 'http').finishDenied(handshakeFailure(err));
  else conn.ctx.log.debug({ err: messageOf(err) }, 'egress connection closed before a handshake');
}

async function serve(ctx: EgressContext, conn: EgressConnection, parseFirst: (buf: Buffer) => PrefixParse<FirstMessage>): Promise<void> {
  const socket = conn.socket;
  let first: { value: FirstMessage; rest: Buffer };
  try {
    first = await readPrefix(socket, parseFirst, {
      timeoutMs: ctx.listener.egress.handshakeTimeoutMs,
      maxBytes: 2 * MAX_HEAD_BYTES,
      what: 'request head',
    });
  } catch (err) {
    firstMessageFailed(ctx, conn, err);
    return;
  }
  const message = first.value;
  if (message.kind === 'socks5') {
    socket.unshift(first.rest);
    await handleSocks5(ctx, conn);
  } else if (message.head.method === 'CONNECT') {
    await handleConnect(ctx, conn, message.head, first.rest);
  } else {
    // Node's parser reads the same bytes again, and frames the body (never parsed by hand).
    if (first.rest.length > 0) socket.unshift(first.rest);
    socket.unshift(message.raw);
    forwardHttp(ctx, conn);
  }
}

export function egressProxy(listener: EgressListenerSlice, deps: EgressDeps): ConnectionHandler {
  const ctx = egressContext(listener, deps);
  const parseFirst = firstMessageParser(ctx);
  // Said once at load: what the parent's guard will let through besides public addresses.
  const ranges = listener.egress.policy.allow.filter((r) => r.kind === 'cidr').map((r) => r.text);
  logger('egress', { listener: listener.name }).info(
    {
      explicit_ranges: ranges,
      parent_host: listener.egress.policy.allow.some((r) => r.kind === 'name' && r.labels.join('.') === 'host'),
    },
    ranges.length > 0
      ? "the parent's guard lets tunnels reach non-public addresses only inside these explicitly allowed ranges; a name resolving to any other non-public address is refused (outer_guard_refused)"
      : "no address ranges allowed explicitly: the parent's guard refuses every non-public address (outer_guard_refused)",
  );
  return async (socket, cctx) => {
    const conn = new EgressConnection(socket, cctx);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    // One listener per connection: the tunnel's pump is reached through conn.abort() too.
    const abort = () => conn.abort();
    cctx.signal.addEventListener('abort', abort, { once: true });
    try {
      await serve(ctx, conn, parseFirst);
    } catch (err) {
      cctx.log.error({ err: messageOf(err) }, 'egress connection failed unexpectedly');
      socket.destroy();
    }
    await closed;
    // With the native pump the socket closes at the hand-over while the tunnel goes on: the
    // connection lasts until its last attempt is finished.
    await conn.settled();
    cctx.signal.removeEventListener('abort', abort);
    return conn.bytes();
  };
}
