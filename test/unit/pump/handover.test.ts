/**
 * The moment a handshake hands a socket to the pump: bytes and FINs that arrived while JS owned
 * the socket must not be lost. (A paused net.Socket still emits 'end' when EOF arrives with no
 * data buffered — a FIN seen during the handshake must still become a FIN on the other leg.)
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { activePump, jsPump, type Pump } from '../../../shared/pump/index.js';
import { readPrefix } from '../../../shared/util/read-prefix.js';

async function socketPair(): Promise<[net.Socket, net.Socket, () => void]> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  await new Promise<void>((r) => client.once('connect', () => r()));
  return [client, await accepted, () => server.close()];
}

function collect(s: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  return new Promise((r) => s.once('end', () => r(Buffer.concat(chunks))));
}

const pumps: Pump[] = [...new Set([jsPump, activePump()])];
for (const pump of pumps) {
  test(`${pump.kind} pump: handshake leftovers and an early FIN reach the other leg`, async () => {
    const [client, downstream, closeA] = await socketPair();
    const [upstreamPeer, upstream, closeB] = await socketPair();
    // The client sends a 4-byte "handshake", payload, and FIN all at once.
    client.end(Buffer.concat([Buffer.from('HELO'), Buffer.from('payload-after-handshake')]));
    const { value, rest } = await readPrefix(
      downstream,
      (b) => (b.length >= 4 ? { done: true, value: b.subarray(0, 4).toString(), consumed: 4 } : { done: false }),
      { timeoutMs: 2000, maxBytes: 64, what: 'test handshake' },
    );
    assert.equal(value, 'HELO');
    // Let the FIN arrive while nobody listens for it.
    await new Promise((r) => setTimeout(r, 50));
    upstream.resume();
    upstreamPeer.resume();
    const atPeer = collect(upstreamPeer);
    const atClient = collect(client);
    const session = pump.run(downstream, upstream, { headUp: rest });
    assert.equal((await atPeer).toString(), 'payload-after-handshake', 'leftover bytes and the FIN crossed');
    upstreamPeer.end('reply');
    assert.equal((await atClient).toString(), 'reply', 'the other direction still works after the early FIN');
    const result = await session.done;
    assert.equal(result.bytesUp, 'payload-after-handshake'.length);
    assert.equal(result.bytesDown, 5);
    assert.equal(result.closedBy, 'downstream');
    closeA();
    closeB();
  });
}
