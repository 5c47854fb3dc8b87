/**
 * PROXY protocol v2 (haproxy.org/download/2.9/doc/proxy-protocol.txt): how the real client's
 * address crosses the vsock leg, where the inner side would otherwise only see the outer.
 */
import net from 'node:net';
import { ProxyError } from '../errors/index.js';
import type { PrefixParse } from '../util/read-prefix.js';

const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const HEADER_BYTES = 16;
/** Addresses plus generous room for TLVs; anything larger is hostile. */
export const MAX_HEADER_BYTES = 16 + 536 + 1024;

export interface Endpoint {
  address: string;
  port: number;
}

export type ProxyHeader =
  /** The sender relays a connection from `source` that arrived at `destination`. */
  | { command: 'proxy'; family: 'tcp4' | 'tcp6'; source: Endpoint; destination: Endpoint }
  /** The sender speaks for itself (health checks) or could not tell the address (UNIX, UNSPEC). */
  | { command: 'local' | 'proxy'; family: 'unspec' | 'unix' };

export class ProxyProtocolError extends ProxyError {}

function parseV4(b: Buffer, off: number): { source: Endpoint; destination: Endpoint } {
  const ip = (o: number) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
  return {
    source: { address: ip(off), port: b.readUInt16BE(off + 8) },
    destination: { address: ip(off + 4), port: b.readUInt16BE(off + 10) },
  };
}

function ipv6Text(b: Buffer, o: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(o + i * 2).toString(16));
  // Round-trip through the URL parser for the canonical compressed form.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

export function parseProxyHeader(buf: Buffer): PrefixParse<ProxyHeader> {
  const cmp = Math.min(buf.length, SIGNATURE.length);
  if (!buf.subarray(0, cmp).equals(SIGNATURE.subarray(0, cmp))) {
    throw new ProxyProtocolError('proxy_header_missing', 'connection did not start with a PROXY protocol v2 header');
  }
  if (buf.length < HEADER_BYTES) return { done: false };
  const verCmd = buf.readUInt8(12);
  if (verCmd >> 4 !== 2)
    throw new ProxyProtocolError('proxy_header_version', `PROXY protocol version ${verCmd >> 4} is not supported (expected 2)`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) throw new ProxyProtocolError('proxy_header_command', `unknown PROXY command ${cmd}`);
  const fam = buf.readUInt8(13);
  const len = buf.readUInt16BE(14);
  if (HEADER_BYTES + len > MAX_HEADER_BYTES)
    throw new ProxyProtocolError('proxy_header_too_large', `PROXY header of ${HEADER_BYTES + len} bytes exceeds ${MAX_HEADER_BYTES}`);
  if (buf.length < HEADER_BYTES + len) return { done: false };
  const consumed = HEADER_BYTES + len;
  if (cmd === 0) return { done: true, value: { command: 'local', family: 'unspec' }, consumed };
  switch (fam) {
    case 0x11:
      if (len < 12) throw new ProxyProtocolError('proxy_header_short', 'PROXY TCP4 header too short for its addresses');
      return { done: true, value: { command: 'proxy', family: 'tcp4', ...parseV4(buf, HEADER_BYTES) }, consumed };
    case 0x21: {
      if (len < 36) throw new ProxyProtocolError('proxy_header_short', 'PROXY TCP6 header too short for its addresses');
      const o = HEADER_BYTES;
      return {
        done: true,
        value: {
          command: 'proxy',
          family: 'tcp6',
          source: { address: ipv6Text(buf, o), port: buf.readUInt16BE(o + 32) },
          destination: { address: ipv6Text(buf, o + 16), port: buf.readUInt16BE(o + 34) },
        },
        consumed,
      };
    }
    case 0x31:
    case 0x32:
      return { done: true, value: { command: 'proxy', family: 'unix' }, consumed };
    default:
      return { done: true, value: { command: 'proxy', family: 'unspec' }, consumed };
  }
}

function ipBytes(address: string, family: 4 | 6): Buffer {
  if (family === 4) return Buffer.from(address.split('.').map(Number));
  const url = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  const [head, tail] = url.includes('::') ? (url.split('::') as [string, string]) : [url, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** Header for a connection from `source` to `destination`; LOCAL when either is unknown or not IP. */
export function encodeProxyHeader(source: Endpoint | undefined, destination: Endpoint | undefined): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  SIGNATURE.copy(header);
  const mapped = (a: string) => (a.startsWith('::ffff:') && net.isIPv4(a.slice(7)) ? a.slice(7) : a);
  const src = source && { ...source, address: mapped(source.address) };
  const dst = destination && { ...destination, address: mapped(destination.address) };
  if (!src || !dst || net.isIP(src.address) === 0 || net.isIP(src.address) !== net.isIP(dst.address)) {
    header[12] = 0x20; // LOCAL
    header[13] = 0x00;
    header.writeUInt16BE(0, 14);
    return header;
  }
  header[12] = 0x21; // v2, PROXY
  const family = net.isIPv4(src.address) ? 4 : 6;
  const ipLen = family === 4 ? 4 : 16;
  header[13] = family === 4 ? 0x11 : 0x21;
  header.writeUInt16BE(ipLen * 2 + 4, 14);
  const body = Buffer.alloc(ipLen * 2 + 4);
  ipBytes(src.address, family).copy(body, 0);
  ipBytes(dst.address, family).copy(body, ipLen);
  body.writeUInt16BE(src.port, ipLen * 2);
  body.writeUInt16BE(dst.port, ipLen * 2 + 2);
  return Buffer.concat([header, body]);
}
