/**
 * Clients that go away while the outer is still connecting (CONNECT or SOCKS5): the tunnel the
 * relay then opens must be closed and audited, never left to a pump that waits for a close that
 * already happened. A client that hangs up is noticed by the pump's first read; a connection the
 * proxy itself destroyed meanwhile (drain deadline at shutdown) never reaches the pump at all.
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

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'client-gone-'));
let stub: RelayStub;
let listener: Listener;
const records: EgressAuditRecord[] = [];

before(async () => {
  stub = await startRelayStub(dir);
  // The relay answers only after the app has already gone.
  stub.answerWith(() => ({ answer: { ok: true, address: '93.184.216.34' }, delayMs: 150 }));
  listener = await startEgressListener(
    { protocols: ['http_connect', 'socks5'], allow: ['**'], connect_timeout: '2s', handshake_timeout: '2s' },
    stub.path,
    records,
    100,
  );
});

after(async () => {
  await listener.stopAccepting();
  await stub.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function askAndLeave(bytes: Buffer): Promise<void> {
  const addr = listener.address;
  assert.ok(addr.kind === 'tcp');
  const s = net.connect(addr.port, '127.0.0.1');
  s.on('error', () => {});
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write(bytes);
  await new Promise((r) => setTimeout(r, 30));
  s.destroy();
}

test('clients that hang up before the answer: the tunnel is closed and audited', async () => {
  records.length = 0;
  await askAndLeave(Buffer.from('CONNECT far.example:443 HTTP/1.1\r\nHost: far.example:443\r\n\r\n'));
  await askAndLeave(Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 3, 11]), Buffer.from('far.example'), Buffer.from([1, 187])]));
  await eventually('two records', () => records.length === 2);
  // Each record is written when its attempt ends; the two may end in either order.
  const seen = records.map((r) => [r.proto, r.decision, r.closed_by, r.bytes_up, r.dest_ip]);
  assert.deepEqual(
    seen.sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    [
      ['http_connect', 'allow', 'downstream', 0, '93.184.216.34'],
      ['socks5', 'allow', 'downstream', 0, '93.184.216.34'],
    ],
  );
  await eventually('both relay connections closed', () => stub.connections.length === 2 && stub.connections.every((c) => c.destroyed));
  assert.equal(listener.activeConnections, 0);
});

test('a connection destroyed by the drain deadline while the outer connects: client_gone', async () => {
  records.length = 0;
  const addr = listener.address;
  assert.ok(addr.kind === 'tcp');
  const s = net.connect(addr.port, '127.0.0.1');
  s.on('error', () => {});
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write('CONNECT far.example:443 HTTP/1.1\r\nHost: far.example:443\r\n\r\n');
  await eventually('three requests at the relay', () => stub.seen.length === 3);
  await listener.drain(Date.now());
  await eventually('one record', () => records.length === 1);
  assert.deepEqual([records[0]!.reason, records[0]!.closed_by], ['client_gone', 'downstream']);
  await eventually('the third relay connection closed', () => stub.connections.length === 3 && stub.connections[2]!.destroyed);
  s.destroy();
});
