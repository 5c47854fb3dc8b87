/**
 * The server name of a TLS ClientHello (RFC 8446 §4.1.2, RFC 6066 §3), read without consuming it.
 *
 * Used by `require_sni_match`: a tunnel to an allowed host whose ClientHello names another host
 * (domain fronting) is refused. Only what is needed is parsed; anything that is not a complete,
 * well-formed ClientHello in one TLS record is an error, and the tunnel is refused.
 */
import { ProxyError } from '../../shared/errors/index.js';
import type { PrefixParse } from '../../shared/util/read-prefix.js';

export class ClientHelloError extends ProxyError {
  constructor(reason: string) {
    super('tls_client_hello', `not a usable TLS ClientHello: ${reason}`, { reason });
  }
}

/** A TLS record is at most 2^14 bytes of payload plus its 5-byte header. */
export const MAX_CLIENT_HELLO_BYTES = 5 + 16384;

class Reader {
  constructor(
    private readonly buf: Buffer,
    private pos: number,
    private readonly end: number,
  ) {}
  need(n: number): void {
    if (this.pos + n > this.end) throw new ClientHelloError('truncated field');
  }
  u8(): number {
    this.need(1);
    return this.buf.readUInt8(this.pos++);
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u24(): number {
    this.need(3);
    const v = this.buf.readUIntBE(this.pos, 3);
    this.pos += 3;
    return v;
  }
  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }
  /** A sub-reader over the next `n` bytes; this reader moves past them. */
  sub(n: number): Reader {
    this.need(n);
    const r = new Reader(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  get left(): number {
    return this.end - this.pos;
  }
}

function serverName(ext: Reader): string {
  const list = ext.sub(ext.u16());
  while (list.left > 0) {
    const type = list.u8();
    const name = list.bytes(list.u16());
    if (type === 0) {
      if (name.length === 0 || name.some((c) => c < 0x21 || c > 0x7e)) throw new ClientHelloError('server name is not printable ASCII');
      return name.toString('ascii');
    }
  }
  throw new ClientHelloError('server_name extension without a host name');
}

/** `done` with the SNI (null when the hello has none) once the whole first record is buffered. */
export function parseClientHelloSni(buf: Buffer): PrefixParse<string | null> {
  if (buf.length >= 1 && buf[0] !== 22) throw new ClientHelloError('first byte is not a TLS handshake record');
  if (buf.length < 5) return { done: false };
  const recordLen = buf.readUInt16BE(3);
  if (recordLen === 0 || recordLen > 16384) throw new ClientHelloError('bad record length');
  if (buf.length < 5 + recordLen) return { done: false };
  const r = new Reader(buf, 5, 5 + recordLen);
  if (r.u8() !== 1) throw new ClientHelloError('first handshake message is not a ClientHello');
  const helloLen = r.u24();
  if (helloLen > r.left) throw new ClientHelloError('ClientHello spans several records');
  const hello = r.sub(helloLen);
  hello.skip(2 + 32); // legacy_version, random
  hello.skip(hello.u8()); // legacy_session_id
  hello.skip(hello.u16()); // cipher_suites
  hello.skip(hello.u8()); // legacy_compression_methods
  let sni: string | null = null;
  if (hello.left > 0) {
    const exts = hello.sub(hello.u16());
    while (exts.left > 0) {
      const type = exts.u16();
      const body = exts.sub(exts.u16());
      if (type === 0) {
        if (sni !== null) throw new ClientHelloError('duplicate server_name extension');
        sni = serverName(body);
      }
    }
  }
  // consumed: 0 — the hello is peeked for the decision and then forwarded untouched.
  return { done: true, value: sni, consumed: 0 };
}
