/**
 * What a hostile or broken client gets from the egress port, in-process against a stand-in
 * relay (issue 9): every request refused by a parser — the strict head parser for the first
 * request, Node's llhttp for keep-alive requests and bodies — is answered, closed and audited
 * exactly once as `http_protocol_error` with no destination, and never reaches the relay; a
 * request refused in its body is audited with that reason, not `client_gone`; the header-count
 * limit answers 431 instead of truncating; headers named like Object.prototype members are
 * forwarded intact; 502/504 answers name their reason code.
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { EgressAuditRecord } from '../../../shared/audit/record.js';
import type { Listener } from '../../../shared/listener/listener.js';
import { startEgressListener } from '../../helpers/egress.js';
import { startRelayStub, type RelayStub } from '../../helpers/relay-stub.js';
import { eventually } from '../../helpers/eventually.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'egress-proto-'));
let stub: RelayStub;
let listener: Listener;
let upstream: http.Server;
let upstreamPort: number;
const records: EgressAuditRecord[] = [];

before(async () => {
  stub = await startRelayStub(dir);
  // The destination echoes what it received: method, path and the raw header pairs.
  upstream = http.createServer((req, res) => {
    let body = 0;
    req.on('data', (c: Buffer) => {
      body += c.length;
    });
    req.on('end', () => res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.rawHeaders, body })));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamPort = (upstream.address() as net.AddressInfo).port;
  listener = await startEgressListener({ allow: ['**'], connect_timeout: '5s', max_headers: 100 }, stub.path, records, 1000);
});

after(async () => {
  await listener.stopAccepting();
  await listener.drain(Date.now());
  await stub.close();
  upstream.closeAllConnections();
  upstream.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  records.length = 0;
  stub.seen.length = 0;
  stub.answerWith(() => ({ answer: { ok: true, address: '127.0.0.1' }, pipeTo: upstreamPort }));
});

function port(): number {
  const a = listener.address;
  assert.ok(a.kind === 'tcp');
  return a.port;
}

/**
 * Send each request once the proxy answered the one before (the destination's answers end in
 * `}`), read until the proxy closes: all it said.
 */
async function exchange(...requests: Array<string | Buffer>): Promise<string> {
  const s = net.connect(port(), '127.0.0.1');
  s.on('error', () => {});
  let got = '';
  let answered = () => {};
  s.on('data', (c: Buffer) => {
    got += c.toString('latin1');
    if (got.endsWith('}')) answered();
  });
  await new Promise<void>((r) => s.once('connect', () => r()));
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  for (const [i, request] of requests.entries()) {
    const response = new Promise<void>((r) => {
      answered = r;
    });
    s.write(request);
    if (i < requests.length - 1) await Promise.race([response, closed]);
  }
  await closed;
  return got;
}

const status = (response: string) => Number(/^HTTP\/1\.1 ([0-9]{3})/.exec(response)?.[1]);

test('each request a parser refuses: answered, closed, audited once as http_protocol_error, never relayed', async () => {
  const abs = `http://a.test:${0}/`;
  const cases: Array<[string, string | Buffer, number, 'http' | 'http_connect']> = [
    ['CL+TE', `POST ${abs} HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n`, 400, 'http'],
    ['duplicate Content-Length', `POST ${abs} HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc`, 400, 'http'],
    ['bad Transfer-Encoding', `POST ${abs} HTTP/1.1\r\nTransfer-Encoding: ,chunked\r\n\r\n`, 400, 'http'],
    ['obs-fold', `GET ${abs} HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n`, 400, 'http'],
    ['bare LF', `GET ${abs} HTTP/1.1\nHost: a.test\n\n`, 400, 'http'],
    ['bare CR', `GET ${abs} HTTP/1.1\rHost: a.test\r\n\r\n`, 400, 'http'],
    ['NUL', `GET ${abs} HTTP/1.1\r\nX-A: a\0b\r\n\r\n`, 400, 'http'],
    ['space before colon', 'CONNECT a.test:443 HTTP/1.1\r\nHost : a.test:443\r\n\r\n', 400, 'http_connect'],
    ['oversize header', `GET ${abs} HTTP/1.1\r\nX-A: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'http'],
    ['1,100 headers', `GET ${abs} HTTP/1.1\r\n${'X-A: 1\r\n'.repeat(1100)}\r\n`, 431, 'http'],
    ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 505, 'http'],
    ['SOCKS4 bytes', Buffer.from([4, 1, 0, 80, 127, 0, 0, 1, 0x61, 0]), 400, 'http'],
    ['lower-case method', 'connect a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n', 400, 'http'],
    ['CONNECT with a body', 'CONNECT a.test:443 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello', 400, 'http_connect'],
  ];
  for (const [name, input, want, proto] of cases) {
    records.length = 0;
    const response = await exchange(input);
    assert.equal(status(response), want, `${name}: ${response.split('\r\n')[0]}`);
    await eventually(`the record of ${name}`, () => records.length >= 1);
    assert.equal(records.length, 1, name);
    const r = records[0]!;
    // A CONNECT with a body is a malformed destination request rather than a framing attack.
    const reason = name === 'CONNECT with a body' ? 'malformed_destination' : 'http_protocol_error';
    assert.deepEqual(
      [r.decision, r.reason, r.proto, r.dest_host, r.dest_port, r.closed_by],
      ['deny', reason, proto, null, null, null],
      name,
    );
    assert.match(response, new RegExp(`\r\nX-Enclaver-Reason: ${reason}\r\n`), name);
  }
  assert.equal(stub.seen.length, 0, 'nothing refused reached the relay');
  await eventually('every connection closed', () => listener.activeConnections === 0);
});

test('keep-alive requests refused by llhttp are audited once each; a body refused after the head is not client_gone', async () => {
  const ok = `GET http://a.test:${upstreamPort}/one HTTP/1.1\r\nHost: a.test\r\n\r\n`;
  const response = await exchange(
    ok,
    `POST http://a.test:${upstreamPort}/two HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n`,
  );
  assert.equal(status(response), 200);
  assert.match(response, /HTTP\/1\.1 400 Bad Request[^]*X-Enclaver-Reason: http_protocol_error/);
  await eventually('two records', () => records.length >= 2);
  assert.deepEqual(
    records.map((r) => [r.decision, r.reason, r.dest_host]),
    [
      ['allow', 'allowed_by_rule', 'a.test'],
      ['deny', 'http_protocol_error', null],
    ],
  );

  records.length = 0;
  const chunked = await exchange(
    `POST http://a.test:${upstreamPort}/c HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`,
  );
  assert.equal(status(chunked), 400, chunked);
  await eventually('the chunked record', () => records.length >= 1);
  assert.equal(records.length, 1);
  assert.deepEqual([records[0]!.decision, records[0]!.reason, records[0]!.dest_host], ['deny', 'http_protocol_error', 'a.test']);

  records.length = 0;
  const many = await exchange(ok, `GET http://a.test:${upstreamPort}/two HTTP/1.1\r\n${'X-A: 1\r\n'.repeat(101)}\r\n`);
  assert.match(many, /HTTP\/1\.1 431 /, 'over the limit on a keep-alive request: 431, not a truncated forward');
  await eventually('two records', () => records.length >= 2);
  assert.deepEqual(
    records.map((r) => r.reason),
    ['allowed_by_rule', 'http_protocol_error'],
  );
});

test('headers named __proto__, constructor and toString are forwarded intact, and exactly 100 headers pass', async () => {
  const names = ['__proto__', 'constructor', 'toString', 'hasOwnProperty'];
  const extra = Array.from({ length: 100 - names.length - 2 }, (_, i) => `X-H${i}: ${i}\r\n`).join('');
  const response = await exchange(
    `GET http://a.test:${upstreamPort}/p HTTP/1.1\r\nHost: a.test\r\n${names.map((n) => `${n}: v-${n}\r\n`).join('')}${extra}Connection: close\r\n\r\n`,
  );
  assert.equal(status(response), 200, response);
  const echoed = JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)) as { headers: string[] };
  for (const n of names) {
    const i = echoed.headers.indexOf(n);
    assert.ok(i >= 0, `${n} reached the destination`);
    assert.equal(echoed.headers[i + 1], `v-${n}`);
  }
  assert.ok(echoed.headers.includes('X-H93'), 'the last of 100 headers reached the destination');
});

test('502 and 504 answers carry the reason code in a header and the body, nothing else', async () => {
  const rows = [
    ['connect_refused', 502, 'upstream_refused'],
    ['connect_timeout', 504, 'upstream_timeout'],
    ['resolve_failed', 502, 'resolve_failed'],
  ] as const;
  for (const [code, want, reason] of rows) {
    stub.answerWith(() => ({ answer: { ok: false, code, message: 'connect 10.9.8.7:443: ECONNREFUSED (an internal detail)' } }));
    for (const request of [
      `CONNECT far.test:443 HTTP/1.1\r\nHost: far.test:443\r\n\r\n`,
      `GET http://far.test/ HTTP/1.1\r\nHost: far.test\r\nConnection: close\r\n\r\n`,
    ]) {
      const response = await exchange(request);
      assert.equal(status(response), want, response);
      assert.match(response, new RegExp(`\\r\\nX-Enclaver-Reason: ${reason}\\r\\n`));
      assert.match(response.slice(response.indexOf('\r\n\r\n')), new RegExp(`\\(${reason}\\)\\n$`));
      assert.doesNotMatch(response, /10\.9\.8\.7|ECONNREFUSED/, "the outer's message stays in the logs");
    }
  }
});
