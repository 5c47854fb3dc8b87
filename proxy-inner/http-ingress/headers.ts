/**
 * Header rewriting between the client and the app, both ways.
 *
 * Hop-by-hop headers (RFC 9110 §7.6.1: Connection and every field it names, plus the fields
 * that only make sense for one connection) are dropped: each leg has its own connection and its
 * own framing, so the client's `Connection: close` or `Transfer-Encoding` must never reach the
 * app's connection, nor the app's the client's.
 *
 * Forwarding headers say who the client is. The client's own `X-Forwarded-*`, `Forwarded` and
 * `X-Real-IP` are removed and ours written from what the proxy knows (the PROXY v2 header the
 * outer sent, or the socket): an app behind this listener can trust them because a client can
 * never set them.
 */
import { headerPairs } from '../../shared/util/header-pairs.js';

/** Fields that belong to one connection (RFC 9110 §7.6.1, §7.8; RFC 9112 §6.1) and never cross the proxy. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);

/** Fields that claim to describe the client and are therefore only ever written by us. */
const CLIENT_CLAIMS = new Set(['forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip']);

/** What the proxy knows about the request's client, written into the forwarding headers. */
export interface ClientFacts {
  /** The client's IP address (from PROXY v2 or the socket); undefined when unknown (a Unix leg without PROXY header). */
  address: string | undefined;
  proto: 'http' | 'https';
}

/** The field names a Connection header lists (comma-separated tokens), lower-cased. */
function connectionTokens(value: string | string[] | undefined): Set<string> {
  const tokens = new Set<string>();
  if (value === undefined) return tokens;
  for (const line of Array.isArray(value) ? value : [value]) {
    for (const token of line.split(',')) {
      const t = token.trim().toLowerCase();
      if (t) tokens.add(t);
    }
  }
  return tokens;
}

/**
 * The request's headers as the app receives them, from Node's raw [name, value, …] list: hop-by-hop
 * and client claims dropped, `Expect` dropped (Node has already answered any 100-continue), and
 * our forwarding headers appended. Repeated fields stay repeated, in order.
 */
export function upstreamRequestHeaders(rawHeaders: string[], client: ClientFacts, options: { keepUpgrade: boolean }): string[] {
  let connection: string[] | undefined;
  for (const [name, value] of headerPairs(rawHeaders)) if (name.toLowerCase() === 'connection') (connection ??= []).push(value);
  const named = connectionTokens(connection);
  const out: string[] = [];
  let host: string | undefined;
  for (const [name, value] of headerPairs(rawHeaders)) {
    const lower = name.toLowerCase();
    if (lower === 'host') host ??= value;
    if (lower === 'upgrade' && options.keepUpgrade) out.push(name, value);
    else if (!(HOP_BY_HOP.has(lower) || CLIENT_CLAIMS.has(lower) || named.has(lower) || lower === 'expect')) out.push(name, value);
  }
  if (options.keepUpgrade) out.push('connection', 'upgrade');
  if (client.address !== undefined) out.push('x-forwarded-for', client.address);
  out.push('x-forwarded-proto', client.proto);
  if (host !== undefined) out.push('x-forwarded-host', host);
  out.push('forwarded', forwardedElement(client, host));
  return out;
}

/** One RFC 7239 element: `for="[2001:db8::1]";proto=https;host="example.com"`. */
function forwardedElement(client: ClientFacts, host: string | undefined): string {
  const parts: string[] = [];
  if (client.address !== undefined) parts.push(`for=${quoted(client.address.includes(':') ? `[${client.address}]` : client.address)}`);
  else parts.push('for=unknown');
  parts.push(`proto=${client.proto}`);
  if (host !== undefined) parts.push(`host=${quoted(host)}`);
  return parts.join(';');
}

function quoted(value: string): string {
  return /^[A-Za-z0-9.\-_]+$/.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/** The app's response headers as the client receives them (an object from undici, lower-case names). */
export function downstreamResponseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const named = connectionTokens(headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** The same for a raw [name, value, …] list (an Upgrade's response, written by hand). */
export function downstreamRawHeaders(rawHeaders: string[], options: { keepUpgrade: boolean }): string[] {
  const named = new Set<string>();
  for (const [name, value] of headerPairs(rawHeaders)) {
    if (name.toLowerCase() === 'connection') for (const t of connectionTokens(value)) named.add(t);
  }
  const out: string[] = [];
  for (const [name, value] of headerPairs(rawHeaders)) {
    const lower = name.toLowerCase();
    if ((lower === 'upgrade' && options.keepUpgrade) || !(HOP_BY_HOP.has(lower) || named.has(lower))) out.push(name, value);
  }
  return out;
}
