/**
 * Property tests of everything that parses bytes from the other side or from the app: on any
 * input each parser either answers or throws its own typed error (a ProxyError), never a
 * TypeError or RangeError that would escape as a crash, and never loops or over-reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ProxyError } from '../../../shared/errors/index.js';
import { canonicalHost, parseAuthority } from '../../../shared/egress/destination.js';
import { parseEgressAnswer, parseEgressRequest } from '../../../shared/egress/relay-frames.js';
import { parseAuditAck, parseAuditRecord } from '../../../shared/audit/stream.js';
import { FrameType, encodeFrame, parseFrame } from '../../../shared/wire/frame.js';
import { parseGreeting, parseRequest } from '../../../proxy-inner/egress/socks5.js';
import { parseClientHelloSni } from '../../../proxy-inner/egress/sni.js';
import { parseRequestHead } from '../../../proxy-inner/egress/http-head.js';

function typedOrOk(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ProxyError, `untyped ${String(err)}`);
  }
}

const RUNS = { numRuns: 2000 };

test('byte parsers: SOCKS5 greeting and request, ClientHello, wire frames', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const b = Buffer.from(bytes);
      typedOrOk(() => parseGreeting(b));
      typedOrOk(() => parseRequest(Buffer.concat([Buffer.from([5, 1, 0]), b])));
      typedOrOk(() => parseClientHelloSni(Buffer.concat([Buffer.from([22, 3, 1, b.length >> 8, b.length & 0xff]), b])));
      typedOrOk(() => parseFrame(b));
    }),
    RUNS,
  );
});

test('HTTP request heads: bytes, and heads assembled from HTTP-ish pieces, split anywhere', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      typedOrOk(() => parseRequestHead(Buffer.concat([Buffer.from('CONNECT a:1 HTTP/1.1\r\n'), Buffer.from(bytes)]), 100));
    }),
    RUNS,
  );
  const piece = fc.constantFrom(
    'CONNECT',
    'GET',
    ' ',
    'a.test:443',
    'http://a/',
    'HTTP/1.1',
    'HTTP/2.0',
    '\r\n',
    '\n',
    '\r',
    ':',
    ' : ',
    'Host',
    'Content-Length',
    'Transfer-Encoding',
    'chunked',
    '0',
    '\t',
    '\0',
    '\x80',
    'X',
  );
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 40 }), fc.nat(400), (pieces, cut) => {
      const b = Buffer.from(pieces.join(''), 'latin1');
      typedOrOk(() => {
        const r = parseRequestHead(b.subarray(0, Math.min(cut, b.length)), 5);
        if (r.done) assert.ok(r.consumed <= b.length && r.consumed >= 4);
      });
    }),
    RUNS,
  );
});

test('frame payloads of the egress and audit channels', () => {
  const json = fc.dictionary(
    fc.constantFrom('v', 'host', 'port', 'conn_id', 'allow_ranges', 'ok', 'address', 'code', 'message', 'boot_id', 'seq', 'record'),
    fc.jsonValue(),
  );
  fc.assert(
    fc.property(json, (payload) => {
      for (const type of [FrameType.EgressRequest, FrameType.EgressResponse, FrameType.AuditRecord, FrameType.AuditAck]) {
        const r = parseFrame(encodeFrame(type, payload));
        assert.ok(r.done);
        typedOrOk(() => parseEgressRequest(r.value));
        typedOrOk(() => parseEgressAnswer(r.value));
        typedOrOk(() => parseAuditRecord(r.value));
        typedOrOk(() => parseAuditAck(r.value));
      }
    }),
    RUNS,
  );
});

test('hosts and authorities: anything is canonical or refused, and canonical forms are fixed points', () => {
  const hostish = fc.oneof(
    fc.string({ maxLength: 80 }),
    fc.domain(),
    fc.ipV4Extended(),
    fc.ipV6().map((v) => `[${v}]`),
    fc.webAuthority(),
  );
  fc.assert(
    fc.property(hostish, (h) => {
      typedOrOk(() => parseAuthority(h));
      let c;
      try {
        c = canonicalHost(h);
      } catch (err) {
        assert.ok(err instanceof ProxyError);
        return;
      }
      const again = canonicalHost(c.kind === 'ip' && c.ip.family === 6 ? `[${c.text}]` : c.text);
      assert.deepEqual([again.kind, again.text], [c.kind, c.text]);
    }),
    RUNS,
  );
});
