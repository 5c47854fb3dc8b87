/**
 * The deadlines every HTTP-parsing listener gets from shared/listener/http-kind.ts (KMS proxy,
 * IMDS endpoint, attestation API, admin): a half-sent request is closed at the head deadline,
 * an idle keep-alive connection after its response, and the admin endpoint holds at most
 * MAX_ADMIN_CONNECTIONS. Observed by close events: on the old code these connections stayed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { AdminServer, MAX_ADMIN_CONNECTIONS } from '../../../shared/admin/server.js';
import { httpListenerKind } from '../../../shared/listener/http-kind.js';
import { Listener } from '../../../shared/listener/listener.js';
import { parseAddress } from '../../../shared/transport/index.js';

function open(port: number): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  return new Promise((resolve) => s.once('connect', () => resolve(s)));
}

/** Everything the server said until it closed the connection. */
function closedWith(s: net.Socket): Promise<string> {
  let got = '';
  s.on('data', (c: Buffer) => {
    got += c.toString();
  });
  return new Promise((resolve) => s.once('close', () => resolve(got)));
}

test('an HTTP listener kind closes half-sent requests and idle keep-alive connections', async () => {
  const listener = new Listener({
    name: 'api',
    address: parseAddress('tcp://127.0.0.1:0'),
    maxConnections: 100,
    handler: httpListenerKind((_req, res) => res.end('answer'), { headMs: 300, keepAliveMs: 300 }),
  });
  await listener.start();
  const a = listener.address;
  assert.ok(a.kind === 'tcp');
  try {
    const half = await Promise.all(Array.from({ length: 50 }, () => open(a.port)));
    for (const s of half) s.write('GET /x HTTP/1.1\r\nHost: a\r\nX-Slow: ');
    const served = await open(a.port);
    const said = closedWith(served);
    served.write('GET /y HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.deepEqual(
      await Promise.all(half.map(closedWith)),
      half.map(() => ''),
      'closed without an answer',
    );
    assert.match(await said, /^HTTP\/1\.1 200 OK[^]*answer$/, 'answered, then closed when idle');
  } finally {
    await listener.stopAccepting();
  }
});

test('the admin endpoint: deadlines, and at most MAX_ADMIN_CONNECTIONS at once', async () => {
  const admin = new AdminServer({ headMs: 60_000, keepAliveMs: 60_000 });
  const listening = await admin.start(parseAddress('tcp://127.0.0.1:0'));
  assert.ok(listening.address.kind === 'tcp');
  const port = listening.address.port;
  try {
    const held: net.Socket[] = [];
    for (let i = 0; i < MAX_ADMIN_CONNECTIONS; i++) held.push(await open(port));
    const extra = await open(port);
    assert.equal(await closedWith(extra), '', 'the connection over the limit is closed unanswered');
    const live = closedWith(held[0]!);
    held[0]!.write('GET /live HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.match(await live, /^HTTP\/1\.1 200 OK[^]*\r\n\r\n[^]*live\n/, 'the connections within the limit are served');
    for (const s of held) s.destroy();
  } finally {
    await admin.close();
  }
  const quick = new AdminServer({ headMs: 300, keepAliveMs: 300 });
  const l2 = await quick.start(parseAddress('tcp://127.0.0.1:0'));
  assert.ok(l2.address.kind === 'tcp');
  try {
    const half = await open(l2.address.port);
    half.write('GET /metrics HTTP/1.1\r\nHo');
    assert.equal(await closedWith(half), '', 'a half-sent admin request is closed');
  } finally {
    await quick.close();
  }
});
