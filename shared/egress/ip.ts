/**
 * IP addresses as the network will treat them, whatever text they arrived as.
 *
 * Egress decisions must be taken on the address a connection would really reach. Resolvers and
 * URL parsers accept many spellings of one IPv4 address (inet_aton's `127.1`, `0x7f.1`, `0177.0.0.1`,
 * `2130706433`), and IPv6 can carry an IPv4 address inside it (mapped, compatible, NAT64, 6to4,
 * Teredo). This module turns every such spelling into bytes, and tells which IPv4 addresses an
 * IPv6 address stands for, so that policy and guard rules are applied to what is really dialled.
 */
import { itemAt, lastOf } from '../util/checked.js';

export type IpFamily = 4 | 6;

export interface IpAddress {
  family: IpFamily;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

export interface IpCidr {
  address: IpAddress;
  prefix: number;
}

/** One inet_aton part: decimal, octal (leading 0) or hex (0x). Null when it is none of them. */
function parseLegacyPart(part: string): number | null {
  if (/^0[xX][0-9a-fA-F]*$/.test(part)) return part.length === 2 ? 0 : parseInt(part.slice(2), 16);
  if (/^0[0-7]+$/.test(part)) return parseInt(part.slice(1), 8);
  if (/^(0|[1-9][0-9]*)$/.test(part)) return Number(part);
  return null;
}

/**
 * IPv4 in every form inet_aton and the WHATWG host parser accept: one to four parts, each decimal,
 * octal or hex, the last part filling the remaining bytes (`127.1` is 127.0.0.1, `2130706433` too).
 * Returns null for anything that is not such an address, including out-of-range parts.
 */
export function parseIPv4Any(text: string): IpAddress | null {
  const parts = text.split('.');
  if (parts.length === 0 || parts.length > 4) return null;
  const values: number[] = [];
  for (const p of parts) {
    // Long digit strings would lose precision as numbers; any of them is out of range anyway.
    if (p.length === 0 || p.length > 34) return null;
    const v = parseLegacyPart(p);
    if (v === null || !Number.isFinite(v)) return null;
    values.push(v);
  }
  const last = lastOf(values, 'IPv4 part');
  const leading = values.slice(0, -1);
  if (leading.some((v) => v > 255)) return null;
  const lastBytes = 4 - leading.length;
  if (last >= 2 ** (8 * lastBytes)) return null;
  const bytes = new Uint8Array(4);
  leading.forEach((v, i) => {
    bytes[i] = v;
  });
  for (let i = 0; i < lastBytes; i++) bytes[3 - i] = Math.floor(last / 2 ** (8 * i)) % 256;
  return { family: 4, bytes };
}

/** Strict dotted quad (`a.b.c.d`, decimal, no leading zeros): the only IPv4 form inside IPv6 text. */
export function parseIPv4Strict(text: string): IpAddress | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const bytes = new Uint8Array(4);
  for (const [i, p] of parts.entries()) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    bytes[i] = v;
  }
  return { family: 4, bytes };
}

/** RFC 4291 text, with an optional trailing dotted quad. Zone IDs (`%eth0`) are refused. */
export function parseIPv6(text: string): IpAddress | null {
  if (text.length === 0 || text.length > 45 || !/^[0-9a-fA-F:.]+$/.test(text)) return null;
  let head = text;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    const v4 = parseIPv4Strict(text.slice(lastColon + 1));
    if (!v4) return null;
    tail = [group16(v4.bytes, 0), group16(v4.bytes, 2)];
    head = text.slice(0, lastColon + 1);
    // `::1.2.3.4` leaves `::`; `a::1.2.3.4` leaves `a::`; `a:b:…:1.2.3.4` leaves a trailing single colon.
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const halves = head.split('::');
  if (halves.length > 2) return null;
  const groupsOf = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const left = groupsOf(itemAt(halves, 0, 'IPv6 half'));
  const right = halves.length === 2 ? groupsOf(itemAt(halves, 1, 'IPv6 half')) : [];
  if (!left || !right) return null;
  const explicit = left.length + right.length + tail.length;
  let groups: number[];
  if (halves.length === 2) {
    if (explicit > 7) return null;
    groups = [...left, ...new Array<number>(8 - explicit).fill(0), ...right, ...tail];
  } else {
    if (explicit !== 8) return null;
    groups = [...left, ...tail];
  }
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return { family: 6, bytes };
}

/** 127.0.0.1: where the parent instance (Enclaver's `host`) is reached from the outer. */
export const IPV4_LOOPBACK: IpAddress = { family: 4, bytes: Uint8Array.of(127, 0, 0, 1) };

/** The big-endian 16-bit group at `offset` (a DataView read throws RangeError past the end). */
function group16(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint16(offset);
}

export function formatIp(ip: IpAddress): string {
  const b = ip.bytes;
  if (ip.family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(group16(b, i));
  // RFC 5952: compress the longest run (of at least two) zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

function bitsEqual(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  const full = bits >> 3;
  for (let i = 0; i < full; i++) if (a[i] !== b[i]) return false;
  const rem = bits & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return (itemAt(a, full, 'address byte') & mask) === (itemAt(b, full, 'address byte') & mask);
}

export function cidrContains(cidr: IpCidr, ip: IpAddress): boolean {
  return cidr.address.family === ip.family && bitsEqual(cidr.address.bytes, ip.bytes, cidr.prefix);
}

/** `a.b.c.d/n` or `v6/n` (strict forms only: a rule is written by a person, not an attacker). */
export function parseCidr(text: string): IpCidr | null {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const address = parseIPv4Strict(addrText) ?? parseIPv6(addrText);
  if (!address) return null;
  const max = address.family === 4 ? 32 : 128;
  if (slash < 0) return { address, prefix: max };
  const prefixText = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return null;
  const prefix = Number(prefixText);
  if (prefix > max) return null;
  return { address, prefix };
}

export function formatCidr(c: IpCidr): string {
  const max = c.address.family === 4 ? 32 : 128;
  return c.prefix === max ? formatIp(c.address) : `${formatIp(c.address)}/${c.prefix}`;
}

function builtinCidr(text: string): IpCidr {
  const c = parseCidr(text);
  if (!c) throw new Error(`bad built-in prefix ${text}`);
  return c;
}

const MAPPED = builtinCidr('::ffff:0:0/96');
const COMPATIBLE = builtinCidr('::/96');
const NAT64_WELL_KNOWN = builtinCidr('64:ff9b::/96');
const NAT64_LOCAL = builtinCidr('64:ff9b:1::/48');
const SIX_TO_FOUR = builtinCidr('2002::/16');
const TEREDO = builtinCidr('2001::/32');

function v4At(bytes: Uint8Array, ...idx: number[]): IpAddress {
  return { family: 4, bytes: Uint8Array.from(idx.map((i) => itemAt(bytes, i, 'address byte'))) };
}

/**
 * The IPv4 address an IPv4-mapped IPv6 address is (`::ffff:127.0.0.1` is 127.0.0.1 on the wire of a
 * dual-stack socket), else the address itself. Used as the canonical form of every destination.
 */
export function unmapIp(ip: IpAddress): IpAddress {
  return ip.family === 6 && cidrContains(MAPPED, ip) ? v4At(ip.bytes, 12, 13, 14, 15) : ip;
}

/**
 * Every IPv4 address this IPv6 address leads to through a translation mechanism: compatible
 * (`::a.b.c.d`), NAT64 (RFC 6052 well-known /96 and RFC 8215 local-use /48), 6to4 (bits 16–47),
 * Teredo (server in bits 32–63, client XOR-obfuscated in the last 32 bits). Rules that refuse an
 * IPv4 range must refuse these disguises of it too.
 */
export function embeddedIPv4(ip: IpAddress): IpAddress[] {
  if (ip.family !== 6) return [];
  const b = ip.bytes;
  const out: IpAddress[] = [];
  if (cidrContains(MAPPED, ip)) out.push(v4At(b, 12, 13, 14, 15));
  // `::` and `::1` are IPv6's own unspecified and loopback addresses, not compatible addresses.
  if (cidrContains(COMPATIBLE, ip) && !b.subarray(0, 15).every((x) => x === 0)) out.push(v4At(b, 12, 13, 14, 15));
  if (cidrContains(NAT64_WELL_KNOWN, ip)) out.push(v4At(b, 12, 13, 14, 15));
  // RFC 6052 §2.2 for a /48 prefix: IPv4 in octets 6–7 and 9–10 (octet 8 is the reserved "u" octet).
  if (cidrContains(NAT64_LOCAL, ip)) out.push(v4At(b, 6, 7, 9, 10));
  if (cidrContains(SIX_TO_FOUR, ip)) out.push(v4At(b, 2, 3, 4, 5));
  if (cidrContains(TEREDO, ip)) {
    out.push(v4At(b, 4, 5, 6, 7));
    out.push({ family: 4, bytes: v4At(b, 12, 13, 14, 15).bytes.map((x) => x ^ 0xff) });
  }
  return out;
}

/** The address plus every IPv4 address hidden in it: what CIDR rules must all be checked against. */
export function addressesToJudge(ip: IpAddress): IpAddress[] {
  const canonical = unmapIp(ip);
  return [canonical, ...embeddedIPv4(canonical)];
}

/**
 * Ranges that are not the public Internet (hardening.md §1a/§1b): unspecified, private, loopback,
 * link-local (incl. the instance metadata service), CGNAT, benchmarking, documentation,
 * multicast and reserved space, for both families.
 */
export const NON_PUBLIC_RANGES: readonly IpCidr[] = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.88.99.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
  '::/128',
  '::1/128',
  'fe80::/10',
  'fc00::/7',
  'fec0::/10',
  'ff00::/8',
  '100::/64',
  '2001:db8::/32',
].map(builtinCidr);

/** True when the address, or any IPv4 address hidden in it, is outside the public Internet. */
export function isNonPublic(ip: IpAddress): boolean {
  return addressesToJudge(ip).some((a) => NON_PUBLIC_RANGES.some((r) => cidrContains(r, a)));
}
