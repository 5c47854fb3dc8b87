/**
 * The handshake parsers of the inner egress proxy, fed split and hostile input: SOCKS5 greeting
 * and request (RFC 1928, hardening.md §1f) and the TLS ClientHello SNI reader, the latter on
 * ClientHellos produced by Node's own TLS client.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { parseGreeting, parseRequest, SocksError } from '../../../proxy-inner/egress/socks5.js';
import { ClientHelloError, parseClientHelloSni } from '../../../proxy-inner/egress/sni.js';
import type { PrefixParse } from '../../../shared/util/read-prefix.js';

/** Feed a parser one byte at a time: it must ask for more until the last byte, then finish. */
function byteByByte<T>(parse: (b: Buffer) => PrefixParse<T>, bytes: Buffer): T {
  for (let n = 1; n < bytes.length; n++)
    assert.equal(parse(bytes.subarray(0, n)).done, false, `complete after ${n} of ${bytes.length} bytes`);
  const r = parse(bytes);
  assert.ok(r.done);
  return r.value;
}

function socksError(fn: () => unknown): SocksError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SocksError);
    return err;
  }
  assert.fail('expected a SocksError');
}

test('SOCKS5 greeting and requests of every address type, split anywhere', () => {
  assert.deepEqual(byteByByte(parseGreeting, Buffer.from([5, 2, 0, 2])), [0, 2]);
  const domain = Buffer.concat([Buffer.from([5, 1, 0, 3, 11]), Buffer.from('example.com'), Buffer.from([1, 187])]);
  assert.deepEqual(byteByByte(parseRequest, domain), { host: 'example.com', port: 443 });
  assert.deepEqual(byteByByte(parseRequest, Buffer.from([5, 1, 0, 1, 10, 0, 0, 1, 0, 80])), { host: '10.0.0.1', port: 80 });
  const v6 = Buffer.from([5, 1, 0, 4, ...Buffer.from('00000000000000000000ffff7f000001', 'hex'), 0x1f, 0x90]);
  assert.deepEqual(byteByByte(parseRequest, v6), { host: '[::ffff:7f00:1]', port: 8080 });
  // Bytes after the request are the client's first tunnel bytes: not consumed.
  const withData = Buffer.concat([domain, Buffer.from('GET')]);
  const r = parseRequest(withData);
  assert.ok(r.done && r.consumed === domain.length);
});

test('SOCKS5 protocol violations carry the reply RFC 1928 prescribes', () => {
  assert.equal(socksError(() => parseGreeting(Buffer.from([4, 1, 0]))).reply, null);
  assert.equal(socksError(() => parseGreeting(Buffer.from([5, 0]))).reply, null);
  assert.equal(socksError(() => parseRequest(Buffer.from([5, 2, 0, 1, 1, 2, 3, 4, 0, 80]))).reply, 0x07, 'BIND');
  assert.equal(socksError(() => parseRequest(Buffer.from([5, 3, 0, 1, 1, 2, 3, 4, 0, 80]))).reply, 0x07, 'UDP ASSOCIATE');
  assert.equal(socksError(() => parseRequest(Buffer.from([5, 1, 0, 9, 1, 2, 3, 4]))).reply, 0x08, 'unknown ATYP');
  assert.equal(socksError(() => parseRequest(Buffer.from([5, 1, 1, 1, 1, 2, 3, 4, 0, 80]))).reply, 0x01, 'RSV');
  assert.equal(socksError(() => parseRequest(Buffer.from([5, 1, 0, 3, 0, 0, 80]))).reply, 0x01, 'empty domain');
  assert.equal(socksError(() => parseRequest(Buffer.from([5, 1, 0, 3, 2, 0xff, 0xfe, 0, 80]))).reply, 0x01, 'not UTF-8');
});

/** The first flight of Node's TLS client, captured by a plain TCP server on loopback. */
async function clientHello(opts: tls.ConnectionOptions): Promise<Buffer> {
  let resolveHello!: (b: Buffer) => void;
  const hello = new Promise<Buffer>((r) => {
    resolveHello = r;
  });
  const server = net.createServer((s) => {
    let buf = Buffer.alloc(0);
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
        resolveHello(buf);
        s.destroy();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = tls.connect({ ...opts, host: '127.0.0.1', port: (server.address() as net.AddressInfo).port });
  client.on('error', () => {});
  const bytes = await hello;
  client.destroy();
  server.close();
  return bytes;
}

test('SNI of real ClientHellos', async () => {
  const named = await clientHello({ servername: 'Allowed.Test' });
  assert.equal(byteByByte(parseClientHelloSni, named), 'Allowed.Test');
  const r = parseClientHelloSni(named);
  assert.ok(r.done && r.consumed === 0, 'the hello is peeked, not consumed');
  const anonymous = await clientHello({ servername: '' });
  const a = parseClientHelloSni(anonymous);
  assert.ok(a.done && a.value === null);
});

test('ClientHello reader refuses what is not a ClientHello', () => {
  assert.throws(() => parseClientHelloSni(Buffer.from('GET / HTTP/1.1\r\n')), ClientHelloError);
  assert.throws(() => parseClientHelloSni(Buffer.from([22, 3, 1, 0, 4, 2, 0, 0, 0])), ClientHelloError, 'ServerHello');
  assert.throws(() => parseClientHelloSni(Buffer.from([22, 3, 1, 0, 4, 1, 0, 1, 0])), ClientHelloError, 'hello longer than its record');
  assert.throws(() => parseClientHelloSni(Buffer.from([22, 3, 1, 0x40, 0x01])), ClientHelloError, 'record over 16 KiB');
});
