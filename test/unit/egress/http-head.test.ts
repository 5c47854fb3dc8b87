/**
 * The strict request-head parser of the egress port (proxy-inner/egress/http-head.ts): what it
 * accepts it accepts split at any byte; what hardening.md §1e lists it refuses, with the status
 * the client gets, as soon as the refused bytes are there (not after a blank line that may
 * never come).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpProtocolError, MAX_HEAD_BYTES, parseRequestHead, type HeadStatus } from '../../../proxy-inner/egress/http-head.js';

const parse = (b: Buffer | string, maxHeaders = 100) => parseRequestHead(typeof b === 'string' ? Buffer.from(b, 'latin1') : b, maxHeaders);

function refusal(input: Buffer | string, maxHeaders = 100): HttpProtocolError {
  try {
    parse(input, maxHeaders);
  } catch (err) {
    assert.ok(err instanceof HttpProtocolError, String(err));
    return err;
  }
  assert.fail(`accepted: ${JSON.stringify(String(input).slice(0, 80))}`);
}

test('a CONNECT head split at every byte: incomplete until the blank line, then the head and its length', () => {
  const text = 'CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n__proto__: x\r\nUser-Agent:  curl/8 \r\n\r\n';
  const bytes = Buffer.concat([Buffer.from(text, 'latin1'), Buffer.from('\x16\x03\x01early', 'latin1')]);
  for (let n = 1; n < text.length; n++) assert.equal(parse(bytes.subarray(0, n)).done, false, `complete after ${n} bytes`);
  const r = parse(bytes);
  assert.ok(r.done);
  assert.equal(r.consumed, text.length, 'bytes behind the head are not consumed');
  assert.deepEqual(r.value, {
    method: 'CONNECT',
    target: 'api.test:443',
    headers: ['Host', 'api.test:443', '__proto__', 'x', 'User-Agent', 'curl/8'],
  });
});

test('hostile heads are refused with the status the client is told', () => {
  const rows: Array<[string, Buffer | string, HeadStatus]> = [
    ['CL+TE', 'POST http://a/ HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
    ['duplicate Content-Length', 'POST http://a/ HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n', 400],
    ['Content-Length with a sign', 'POST http://a/ HTTP/1.1\r\nContent-Length: +3\r\n\r\n', 400],
    ['Transfer-Encoding: ,chunked', 'POST http://a/ HTTP/1.1\r\nTransfer-Encoding: ,chunked\r\n\r\n', 400],
    ['Transfer-Encoding: gzip, chunked', 'POST http://a/ HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 400],
    ['obs-fold', 'GET http://a/ HTTP/1.1\r\nX-A: 1\r\n  folded\r\n\r\n', 400],
    ['bare LF, before any blank line', 'GET http://a/ HTTP/1.1\nHost: a', 400],
    ['bare CR', 'GET http://a/ HTTP/1.1\rHost: a', 400],
    ['NUL in a value', 'GET http://a/ HTTP/1.1\r\nX-A: a\0b\r\n\r\n', 400],
    ['space before the colon', 'CONNECT a:443 HTTP/1.1\r\nHost : a:443\r\n\r\n', 400],
    ['empty header name', 'GET http://a/ HTTP/1.1\r\n: x\r\n\r\n', 400],
    ['lower-case method', 'connect a:443 HTTP/1.1\r\n\r\n', 400],
    ['SOCKS4 on the shared port', Buffer.from([4, 1, 0, 80, 127, 0, 0, 1, 0]), 400],
    ['TLS on the proxy port', Buffer.from([0x16, 3, 1, 0, 5]), 400],
    ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 505],
    ['HTTP/0.9-style request line', 'GET /\r\n\r\n', 400],
    ['space inside the target', 'GET http://a/b c HTTP/1.1\r\n\r\n', 400],
    ['oversize head', `GET http://a/ HTTP/1.1\r\nX-A: ${'a'.repeat(MAX_HEAD_BYTES)}`, 431],
    ['101 header fields', `CONNECT a:443 HTTP/1.1\r\n${'X-A: 1\r\n'.repeat(101)}\r\n`, 431],
  ];
  for (const [name, input, status] of rows) assert.equal(refusal(input).status, status, name);
  // The limit is the configured one, and exactly it is allowed.
  assert.ok(parse(`CONNECT a:443 HTTP/1.1\r\n${'X-A: 1\r\n'.repeat(100)}\r\n`).done);
  assert.equal(refusal(`CONNECT a:443 HTTP/1.1\r\n${'X-A: 1\r\n'.repeat(11)}\r\n`, 10).status, 431);
  // The method is kept for the audit record's protocol when it was readable.
  assert.equal(refusal('CONNECT a:443 HTTP/1.1\r\nHost : a\r\n\r\n').method, 'CONNECT');
});
