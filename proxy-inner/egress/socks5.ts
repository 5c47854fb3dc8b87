/**
 * SOCKS5 (RFC 1928): no-auth method only, CONNECT only, IPv4 / domain / IPv6 address types.
 *
 * Hardening (hardening.md §1f): version and RSV checked, NMETHODS=0 refused, zero-length domains
 * refused, the domain bytes go through the same canonicaliser as every other host (so `127.1`
 * or `::ffff:127.0.0.1` in a domain field are judged as the address they are), split reads are
 * handled by the prefix reader with a byte cap, and a refused request is answered and closed
 * without reading anything the client sent after it.
 */
import type net from 'node:net';
import { ProxyError } from '../../shared/errors/index.js';
import { canonicalHost, DestinationError, type Destination } from '../../shared/egress/destination.js';
import { formatIp } from '../../shared/egress/ip.js';
import { readPrefix, type PrefixParse } from '../../shared/util/read-prefix.js';
import { Attempt, handshakeFailure } from './attempt.js';
import type { EgressConnection } from './connection.js';
import type { EgressContext } from './context.js';
import { isRefusal, malformedRefusal, openUpstream, SocksReply } from './open-upstream.js';
import { runTunnel } from './tunnel.js';

const VERSION = 5;
const METHOD_NO_AUTH = 0x00;
const METHOD_NONE_ACCEPTABLE = 0xff;
const CMD_CONNECT = 0x01;
const ATYP_IPV4 = 0x01;
const ATYP_DOMAIN = 0x03;
const ATYP_IPV6 = 0x04;

/** A protocol violation, with the reply the client gets (null: close without a reply). */
export class SocksError extends ProxyError {
  constructor(
    readonly reply: number | null,
    reason: string,
  ) {
    super('socks_protocol', `SOCKS5: ${reason}`, { reply, reason });
  }
}

export function parseGreeting(buf: Buffer): PrefixParse<number[]> {
  if (buf.length < 2) return { done: false };
  if (buf[0] !== VERSION) throw new SocksError(null, `version ${buf[0]} is not 5`);
  const n = buf.readUInt8(1);
  if (n === 0) throw new SocksError(null, 'no authentication methods offered');
  if (buf.length < 2 + n) return { done: false };
  return { done: true, value: [...buf.subarray(2, 2 + n)], consumed: 2 + n };
}

export interface SocksRequest {
  /** The host as sent: a domain string or the canonical text of an address. */
  host: string;
  port: number;
}

export function parseRequest(buf: Buffer): PrefixParse<SocksRequest> {
  if (buf.length < 4) return { done: false };
  if (buf[0] !== VERSION) throw new SocksError(SocksReply.GeneralFailure, `version ${buf[0]} is not 5`);
  if (buf[2] !== 0) throw new SocksError(SocksReply.GeneralFailure, 'reserved byte is not zero');
  if (buf[1] !== CMD_CONNECT) throw new SocksError(SocksReply.CommandNotSupported, `command ${buf[1]} is not supported (CONNECT only)`);
  const atyp = buf.readUInt8(3);
  let addrEnd: number;
  let host: () => string;
  switch (atyp) {
    case ATYP_IPV4:
      addrEnd = 8;
      host = () => formatIp({ family: 4, bytes: Uint8Array.from(buf.subarray(4, 8)) });
      break;
    case ATYP_IPV6:
      addrEnd = 20;
      host = () => `[${formatIp({ family: 6, bytes: Uint8Array.from(buf.subarray(4, 20)) })}]`;
      break;
    case ATYP_DOMAIN: {
      if (buf.length < 5) return { done: false };
      const len = buf.readUInt8(4);
      if (len === 0) throw new SocksError(SocksReply.GeneralFailure, 'empty domain name');
      addrEnd = 5 + len;
      host = () => {
        try {
          return new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(5, addrEnd));
        } catch {
          throw new SocksError(SocksReply.GeneralFailure, 'domain name is not UTF-8');
        }
      };
      break;
    }
    default:
      throw new SocksError(SocksReply.AddressTypeNotSupported, `address type ${atyp} is not supported`);
  }
  if (buf.length < addrEnd + 2) return { done: false };
  return { done: true, value: { host: host(), port: buf.readUInt16BE(addrEnd) }, consumed: addrEnd + 2 };
}

/** Replies carry 0.0.0.0:0 as BND: the parent's addresses are none of the app's business. */
export function socksReply(code: number): Buffer {
  return Buffer.from([VERSION, code, 0, ATYP_IPV4, 0, 0, 0, 0, 0, 0]);
}

/** The success reply (bound address unspecified), shared: the pump only reads it. */
const SUCCEEDED = socksReply(SocksReply.Succeeded);

function toDestination(req: SocksRequest): Destination {
  if (req.port === 0) throw new DestinationError('port 0', `${req.host}:0`);
  return { host: canonicalHost(req.host), port: req.port };
}

function closeWith(socket: net.Socket, reply: Buffer | null): void {
  if (reply && socket.writable) socket.end(reply);
  else socket.destroy();
  socket.once('finish', () => socket.destroy());
  setTimeout(() => socket.destroy(), 1000).unref();
}

export async function handleSocks5(ctx: EgressContext, conn: EgressConnection): Promise<void> {
  const client = conn.socket;
  const attempt = new Attempt(ctx.deps.audit, conn, 'socks5');
  const limits = { timeoutMs: ctx.listener.egress.handshakeTimeoutMs, maxBytes: 1024 };
  let request: SocksRequest;
  let rest: Buffer;
  try {
    const greeting = await readPrefix(client, parseGreeting, { ...limits, what: 'SOCKS5 greeting' });
    if (!greeting.value.includes(METHOD_NO_AUTH)) {
      closeWith(client, Buffer.from([VERSION, METHOD_NONE_ACCEPTABLE]));
      attempt.finishDenied('socks_no_acceptable_method');
      return;
    }
    client.write(Buffer.from([VERSION, METHOD_NO_AUTH]));
    if (greeting.rest.length > 0) client.unshift(greeting.rest);
    const r = await readPrefix(client, parseRequest, { ...limits, what: 'SOCKS5 request' });
    request = r.value;
    rest = r.rest;
  } catch (err) {
    const reply = err instanceof SocksError && err.reply !== null ? socksReply(err.reply) : null;
    closeWith(client, reply);
    attempt.finishDenied(err instanceof SocksError ? 'socks_protocol_error' : handshakeFailure(err));
    return;
  }
  let dest: Destination;
  try {
    dest = toDestination(request);
  } catch (err) {
    if (!(err instanceof DestinationError)) throw err;
    closeWith(client, socksReply(malformedRefusal().socksReply));
    attempt.finishRefused(malformedRefusal());
    return;
  }
  attempt.dest = dest;
  const opened = await openUpstream(ctx, dest, attempt.connId);
  if (isRefusal(opened)) {
    closeWith(client, socksReply(opened.socksReply));
    attempt.finishRefused(opened);
    return;
  }
  await runTunnel(ctx, conn, attempt, dest, opened, rest, SUCCEEDED);
}
