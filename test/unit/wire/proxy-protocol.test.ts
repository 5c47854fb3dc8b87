import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { encodeProxyHeader, parseProxyHeader, ProxyProtocolError } from '../../../shared/proxy-protocol/v2.js';

test('IPv4 and IPv6 headers round-trip', () => {
  const v4 = encodeProxyHeader({ address: '10.1.2.3', port: 40000 }, { address: '127.0.0.1', port: 8443 });
  assert.equal(v4.length, 28);
  assert.deepEqual(parseProxyHeader(Buffer.concat([v4, Buffer.from('rest')])), {
    done: true,
    consumed: 28,
    value: {
      command: 'proxy',
      family: 'tcp4',
      source: { address: '10.1.2.3', port: 40000 },
      destination: { address: '127.0.0.1', port: 8443 },
    },
  });
  const v6 = encodeProxyHeader({ address: '2001:db8::1', port: 1 }, { address: '::1', port: 2 });
  const r = parseProxyHeader(v6);
  assert.ok(r.done);
  assert.deepEqual(r.value, {
    command: 'proxy',
    family: 'tcp6',
    source: { address: '2001:db8::1', port: 1 },
    destination: { address: '::1', port: 2 },
  });
});

test('IPv4-mapped IPv6 clients are sent as IPv4; unknown addresses as LOCAL', () => {
  const r = parseProxyHeader(encodeProxyHeader({ address: '::ffff:192.0.2.9', port: 5 }, { address: '::ffff:127.0.0.1', port: 6 }));
  assert.ok(r.done && r.value.family === 'tcp4' && 'source' in r.value && r.value.source.address === '192.0.2.9');
  const local = parseProxyHeader(encodeProxyHeader(undefined, undefined));
  assert.deepEqual(local, { done: true, consumed: 16, value: { command: 'local', family: 'unspec' } });
});

test('a partial header asks for more bytes; a wrong one is refused by name', () => {
  const full = encodeProxyHeader({ address: '1.2.3.4', port: 1 }, { address: '5.6.7.8', port: 2 });
  for (let n = 0; n < full.length; n++) assert.deepEqual(parseProxyHeader(full.subarray(0, n)), { done: false });
  assert.throws(
    () => parseProxyHeader(Buffer.from('GET / HTTP/1.1\r\n')),
    (e: unknown) => e instanceof ProxyProtocolError && e.code === 'proxy_header_missing',
  );
  const v1 = Buffer.from(full);
  v1[12] = 0x11;
  assert.throws(
    () => parseProxyHeader(v1),
    (e: unknown) => e instanceof ProxyProtocolError && e.code === 'proxy_header_version',
  );
  const huge = Buffer.from(full);
  huge.writeUInt16BE(60000, 14);
  assert.throws(
    () => parseProxyHeader(huge),
    (e: unknown) => e instanceof ProxyProtocolError && e.code === 'proxy_header_too_large',
  );
  const short = Buffer.from(full);
  short.writeUInt16BE(4, 14);
  assert.throws(
    () => parseProxyHeader(short),
    (e: unknown) => e instanceof ProxyProtocolError && e.code === 'proxy_header_short',
  );
});

test('fuzz: arbitrary bytes after the signature never crash the parser', () => {
  const sig = encodeProxyHeader(undefined, undefined).subarray(0, 12);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (tail) => {
      try {
        parseProxyHeader(Buffer.concat([sig, Buffer.from(tail)]));
      } catch (err) {
        assert.ok(err instanceof ProxyProtocolError, String(err));
      }
    }),
    { numRuns: 2000 },
  );
});
