/**
 * Deadlines of the egress port (issue 9): half-sent CONNECT requests are closed at
 * `handshake_timeout` and audited, silent connections are closed without a record, and an idle
 * keep-alive connection of absolute-form HTTP is closed at `keep_alive_timeout`. Observed by the
 * clients' close events, never by sleeping: on the old code these waits never end.
 */
import { after, before, test } from 'node:test';
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

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'egress-deadline-'));
let stub: RelayStub;
let listener: Listener;
let upstream: http.Server;
const records: EgressAuditRecord[] = [];

before(async () => {
  stub = await startRelayStub(dir);
  upstream = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upstreamPort = (upstream.address() as net.AddressInfo).port;
  stub.answerWith(() => ({ answer: { ok: true, address: '127.0.0.1' }, pipeTo: upstreamPort }));
  listener = await startEgressListener(
    { allow: ['**'], handshake_timeout: '300ms', keep_alive_timeout: '300ms' },
    stub.path,
    records,
    1000,
  );
});

after(async () => {
  await listener.stopAccepting();
  await stub.close();
  upstream.closeAllConnections();
  upstream.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function open(): Promise<net.Socket> {
  const a = listener.address;
  assert.ok(a.kind === 'tcp');
  const s = net.connect(a.port, '127.0.0.1');
  s.on('error', () => {});
  return new Promise((resolve) => s.once('connect', () => resolve(s)));
}

const closed = (s: net.Socket) => new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));

test('200 half-sent CONNECTs and SOCKS5 greetings are closed and audited; silent connections are closed unaudited', async () => {
  records.length = 0;
  const half = await Promise.all(Array.from({ length: 200 }, () => open()));
  half.forEach((s, i) => s.write(i % 2 === 0 ? 'CONNECT a.test:443 HTTP/1.1\r\nHost: a.te' : Buffer.from([5, 2, 0])));
  const silent = await Promise.all(Array.from({ length: 20 }, () => open()));
  await Promise.all([...half, ...silent].map(closed));
  await eventually(
    'a record for each half-sent handshake, every connection closed',
    () => records.length >= 200 && listener.activeConnections === 0,
  );
  assert.equal(listener.activeConnections, 0);
  assert.equal(records.length, 200, 'one record per half-sent handshake, none for silence');
  assert.deepEqual(new Set(records.map((r) => `${r.decision} ${r.reason}`)), new Set(['deny handshake_timeout']));
  assert.equal(stub.seen.length, 0);
});

test('an idle keep-alive connection is closed after its response; a request on it before then is served', async () => {
  const s = await open();
  let got = '';
  s.on('data', (c: Buffer) => {
    got += c.toString();
  });
  s.write(`GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n`);
  await closed(s);
  assert.match(got, /^HTTP\/1\.1 200 OK[^]*ok$/);
});
