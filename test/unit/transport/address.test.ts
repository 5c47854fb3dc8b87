import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatAddress, parseAddress } from '../../../shared/transport/address.js';
import { AddressError } from '../../../shared/errors/index.js';

test('addresses parse into their kinds', () => {
  assert.deepEqual(parseAddress('tcp://127.0.0.1:10000'), { kind: 'tcp', host: '127.0.0.1', port: 10000 });
  assert.deepEqual(parseAddress('tcp://[::1]:8080'), { kind: 'tcp', host: '::1', port: 8080 });
  assert.deepEqual(parseAddress('tcp://localhost:0'), { kind: 'tcp', host: 'localhost', port: 0 });
  assert.deepEqual(parseAddress('unix:///run/x.sock'), { kind: 'unix', path: '/run/x.sock' });
  assert.deepEqual(parseAddress('vsock://16:8443'), { kind: 'vsock', cid: 16, port: 8443 });
  assert.deepEqual(parseAddress('vsock://any:17002'), { kind: 'vsock', cid: 0xffffffff, port: 17002 });
  assert.deepEqual(parseAddress('vsock://parent:17002'), { kind: 'vsock', cid: 3, port: 17002 });
});

test('formatting round-trips', () => {
  for (const a of ['tcp://127.0.0.1:10000', 'tcp://[::1]:8080', 'unix:///run/x.sock', 'vsock://16:8443', 'vsock://any:1']) {
    assert.equal(formatAddress(parseAddress(a)), a);
  }
  assert.equal(formatAddress(parseAddress('vsock://parent:5')), 'vsock://3:5');
});

test('malformed addresses are refused with the reason', () => {
  const bad: [string, RegExp][] = [
    ['', /empty address/],
    ['127.0.0.1:80', /expected a URI/],
    ['tcp://127.0.0.1', /expected tcp:\/\/HOST:PORT/],
    ['tcp://127.0.0.1:65536', /out of range/],
    ['tcp://[127.0.0.1]:80', /not an IPv6 address/],
    ['tcp://a b:80', /whitespace/],
    ['tcp://exa_mple.com:80', /not a valid host/],
    ['unix://relative.sock', /absolute path/],
    [`unix:///${'x'.repeat(120)}`, /107 bytes/],
    ['vsock://16', /expected vsock:\/\/CID:PORT/],
    ['vsock://16:0', /port 0 is not allowed/],
    ['vsock://99999999999:1', /out of range/],
    ['vsock://16:4294967295', /VMADDR_PORT_ANY/],
    ['ftp://x:1', /unknown scheme "ftp"/],
  ];
  for (const [input, re] of bad) {
    assert.throws(
      () => parseAddress(input),
      (err: unknown) => err instanceof AddressError && re.test(err.message),
      input,
    );
  }
});
