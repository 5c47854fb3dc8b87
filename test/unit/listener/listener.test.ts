/**
 * The generic listener: connection limit, metrics, and drain (finish in time, or be aborted at
 * the deadline).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { Listener } from '../../../shared/listener/listener.js';
import type { ConnectionHandler } from '../../../shared/listener/types.js';
import { registry } from '../../../shared/metrics/registry.js';
import { eventually } from '../../helpers/eventually.js';

async function metric(series: string): Promise<number | undefined> {
  const line = (await registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : undefined;
}

/** Holds each connection open until the client closes it or the drain deadline aborts it. */
const holdOpen: ConnectionHandler = (socket, ctx) =>
  new Promise((resolve) => {
    socket.resume();
    ctx.signal.addEventListener('abort', () => socket.destroy());
    socket.on('close', () => resolve({ bytesIn: 0, bytesOut: 0 }));
    socket.on('end', () => socket.end());
  });

function open(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(s));
    s.once('error', reject);
  });
}

const closed = (s: net.Socket) =>
  new Promise<void>((r) => {
    if (s.destroyed) r();
    else s.once('close', () => r());
  });

test('connections over max_connections are closed at accept and counted', async () => {
  const l = new Listener({
    name: 'limit-test',
    address: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    maxConnections: 2,
    handler: holdOpen,
  });
  await l.start();
  const port = (l.address as { port: number }).port;
  const a = await open(port);
  const b = await open(port);
  await eventually('two connections accepted', () => l.activeConnections >= 2);
  const c = await open(port);
  c.on('error', () => {});
  await closed(c);
  assert.equal(l.activeConnections, 2);
  assert.equal(await metric('enclaver_connections_rejected_total{listener="limit-test",reason="max_connections"}'), 1);
  a.destroy();
  b.destroy();
  await l.stopAccepting();
  await l.drain(Date.now() + 2000);
  assert.equal(l.activeConnections, 0);
  assert.equal(await metric('enclaver_connections_active{listener="limit-test"}'), 0);
});

test('drain waits for connections that finish, and aborts those still open at the deadline', async () => {
  const l = new Listener({
    name: 'drain-test',
    address: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    maxConnections: 10,
    handler: holdOpen,
  });
  await l.start();
  const port = (l.address as { port: number }).port;
  const finishing = await open(port);
  const stuck = await open(port);
  stuck.on('error', () => {});
  await eventually('two connections accepted', () => l.activeConnections >= 2);
  await l.stopAccepting();
  await assert.rejects(open(port), 'no new connection after stopAccepting');
  setTimeout(() => finishing.end(), 50);
  await l.drain(Date.now() + 400);
  assert.equal(l.activeConnections, 0, 'the stuck connection was aborted at the deadline');
  assert.equal(finishing.readableEnded || finishing.destroyed || finishing.writableEnded, true);
  await closed(stuck);
});
