/**
 * Destinations, parsed once into one canonical form before anything else looks at them.
 *
 * A CONNECT authority, an absolute-form URL host and a SOCKS5 address all end here. The result is
 * either an IP address (from any of its disguises) or a lower-case LDH hostname in punycode with
 * no trailing dot; anything else is refused before a rule is consulted or a connection is made
 * (hardening.md §1: "parse the target once into a canonical form and reject anything else").
 */
import { domainToASCII } from 'node:url';
import { ProxyError } from '../errors/index.js';
import { formatHostPort } from '../transport/address.js';
import { lastOf } from '../util/checked.js';
import { formatIp, parseIPv4Any, parseIPv6, unmapIp, type IpAddress } from './ip.js';

export type DestinationHost =
  | { kind: 'ip'; ip: IpAddress; /** canonical text: dotted quad or RFC 5952 */ text: string }
  | { kind: 'name'; /** lower-case, punycode, no trailing dot */ text: string };

export interface Destination {
  host: DestinationHost;
  port: number;
}

/** A destination refused as malformed: it never reaches the policy, the relay or a resolver. */
export class DestinationError extends ProxyError {
  constructor(reason: string, input: string) {
    // The input is kept short in the context: it is attacker-chosen and goes to logs and audit.
    super('malformed_destination', `malformed destination: ${reason}`, { reason, input: input.slice(0, 300) });
  }
}

const MAX_NAME = 253;
const MAX_LABEL = 63;
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
/** WHATWG "ends in a number": such a host is an IPv4 address or it is invalid, never a name. */
const NUMERIC_LABEL = /^(?:[0-9]+|0x[0-9a-f]*)$/;

function ipHost(ip: IpAddress): DestinationHost {
  const canonical = unmapIp(ip);
  return { kind: 'ip', ip: canonical, text: formatIp(canonical) };
}

/**
 * Canonicalise a host as received (no port). Accepts `[v6]`, bare IPv6, every IPv4 spelling, and
 * hostnames (IDN converted to punycode); refuses userinfo, percent-encoding, zone IDs, control
 * characters, empty or over-long labels and names.
 */
export function canonicalHost(raw: string): DestinationHost {
  if (raw.length === 0) throw new DestinationError('empty host', raw);
  if (raw.length > 1024) throw new DestinationError('host is too long', raw);
  // Control characters (CR, LF, NUL, …), spaces and URL delimiters never belong in a host; refusing
  // them here is what stops `evil.com\0.allowed.com` and `a@b` tricks.
  // eslint-disable-next-line no-control-regex -- matching control characters is the point of this check
  if (/[\x00-\x20\x7f@%/\\?#]/.test(raw)) throw new DestinationError('host contains a forbidden character', raw);
  if (raw.startsWith('[') || raw.endsWith(']')) {
    const inner = /^\[([^\]]*)\]$/.exec(raw)?.[1];
    const ip = inner === undefined ? null : parseIPv6(inner);
    if (!ip) throw new DestinationError('bracketed host is not an IPv6 address', raw);
    return ipHost(ip);
  }
  if (raw.includes(':')) {
    const ip = parseIPv6(raw);
    if (!ip) throw new DestinationError('host with a colon is not an IPv6 address', raw);
    return ipHost(ip);
  }
  let name = raw;
  // Non-ASCII hosts are compared in punycode (UTS-46 maps e.g. U+3002 to a dot, as browsers do).
  if (/[\u0080-\uffff]/.test(name)) {
    name = domainToASCII(name);
    if (name === '') throw new DestinationError('not a valid internationalised domain name', raw);
  }
  name = name.toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name.length === 0) throw new DestinationError('empty host', raw);
  const labels = name.split('.');
  if (NUMERIC_LABEL.test(lastOf(labels, 'host label'))) {
    const ip = parseIPv4Any(name);
    if (!ip) throw new DestinationError('numeric host is not a valid IPv4 address', raw);
    return ipHost(ip);
  }
  if (name.length > MAX_NAME) throw new DestinationError(`name is longer than ${MAX_NAME} bytes`, raw);
  for (const label of labels) {
    if (label.length === 0) throw new DestinationError('empty label', raw);
    if (label.length > MAX_LABEL) throw new DestinationError(`label longer than ${MAX_LABEL} bytes`, raw);
    if (!LDH_LABEL.test(label)) throw new DestinationError('label is not letters, digits and inner hyphens', raw);
  }
  return { kind: 'name', text: name };
}

/** A TCP port as text: 1–65535, decimal, no sign, no leading zero, nothing after it. */
export function parsePortText(text: string, input: string = text): number {
  if (!/^[1-9][0-9]{0,4}$/.test(text))
    throw new DestinationError(text === '' ? 'missing port' : 'port is not a number from 1 to 65535', input);
  const port = Number(text);
  if (port > 65535) throw new DestinationError('port is out of range', input);
  return port;
}

/**
 * `host:port` or `[v6]:port` (CONNECT's authority-form; RFC 9110 §9.3.6 requires the port).
 * With `defaultPort`, a missing port is allowed and replaced (absolute-form `http://host/`).
 */
export function parseAuthority(raw: string, defaultPort?: number): Destination {
  if (raw.length === 0) throw new DestinationError('empty authority', raw);
  let hostText: string;
  let portText: string | undefined;
  if (raw.startsWith('[')) {
    const close = raw.indexOf(']');
    if (close < 0) throw new DestinationError('unterminated IPv6 bracket', raw);
    hostText = raw.slice(0, close + 1);
    const after = raw.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) throw new DestinationError('unexpected text after IPv6 bracket', raw);
      portText = after.slice(1);
    }
  } else {
    const colon = raw.lastIndexOf(':');
    if (colon >= 0 && raw.indexOf(':') !== colon) throw new DestinationError('IPv6 addresses must be in brackets', raw);
    hostText = colon < 0 ? raw : raw.slice(0, colon);
    portText = colon < 0 ? undefined : raw.slice(colon + 1);
  }
  let port: number;
  if (portText === undefined) {
    if (defaultPort === undefined) throw new DestinationError('authority has no port', raw);
    port = defaultPort;
  } else {
    port = parsePortText(portText, raw);
  }
  return { host: canonicalHost(hostText), port };
}

/** The authority as it should be written in a CONNECT line, a Host header or a log. */
export function formatDestination(d: Destination): string {
  // Only an IPv6 address has a colon in its canonical text: formatHostPort brackets exactly those.
  return formatHostPort(d.host.text, d.port);
}
