/**
 * The drain deadline reaches an egress tunnel whose bytes the pump carries (the JS socket is gone
 * by then): the tunnel ends as `aborted`, the client sees the close, and the attempt is audited
 * once with the bytes that crossed before. One drain listener per connection reaches both the
 * socket and the pump (EgressConnection.abort), so this guards the path it took over.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { EgressAuditRecord } from '../../../shared/audit/record.js';
import type { Listener } from '../../../shared/listener/listener.js';
import { startEgressListener } from '../../helpers/egress.js';
import { startRelayStub, type RelayStub } from '../../helpers/relay-stub.js';
import { eventually } from '../../helpers/eventually.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drain-tunnel-'));
let stub: RelayStub;
let listener: Listener;
let echo: net.Server;
const records: EgressAuditRecord[] = [];

before(async () => {
  // The destination echoes and never closes: only the drain deadline ends the tunnel.
  echo = net.createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const echoPort = (echo.address() as net.AddressInfo).port;
  stub = await startRelayStub(dir);
  stub.answerWith(() => ({ answer: { ok: true, address: '93.184.216.34' }, pipeTo: echoPort }));
  listener = await startEgressListener(
    { protocols: ['http_connect'], allow: ['**'], connect_timeout: '5s', handshake_timeout: '5s' },
    stub.path,
    records,
    100,
  );
});

after(async () => {
  await listener.stopAccepting();
  await stub.close();
  await new Promise<void>((r) => echo.close(() => r()));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the drain deadline ends an open tunnel: aborted, audited once, the client sees the close', async () => {
  const addr = listener.address;
  assert.ok(addr.kind === 'tcp');
  const s = net.connect(addr.port, '127.0.0.1');
  s.on('error', () => {});
  let closed = false;
  s.once('close', () => {
    closed = true;
  });
  let received = '';
  s.on('data', (c: Buffer) => {
    received += c.toString('latin1');
  });
  s.write('CONNECT far.example:443 HTTP/1.1\r\nHost: far.example:443\r\n\r\n');
  await eventually('the 200', () => received.startsWith('HTTP/1.1 200'));
  s.write('ping');
  await eventually('the echo through the tunnel', () => received.endsWith('ping'));
  assert.equal(listener.activeConnections, 1);

  await listener.drain(Date.now());
  await eventually('the client sees the close', () => closed);
  await eventually('one record', () => records.length === 1);
  const [r] = records;
  assert.ok(r);
  assert.deepEqual(
    [r.decision, r.reason, r.closed_by, r.bytes_up, r.bytes_down, r.dest_ip],
    ['allow', 'allowed_by_rule', 'aborted', 4, 4, '93.184.216.34'],
  );
  assert.equal(listener.activeConnections, 0);
});
