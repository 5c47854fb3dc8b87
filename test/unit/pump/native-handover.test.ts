/**
 * What the native pump does with sockets it cannot take at once: a TLS socket (its bytes exist
 * only in JS) runs on the JS pump; a socket still connecting, or with writes Node has not flushed,
 * is handed over once Node is done with it.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { describe, it } from 'node:test';
import { loadNativeAddon } from '../../../shared/native/addon.js';
import { createNativePump } from '../../../shared/pump/index.js';
import { selfSignedLoopbackCertificate } from '../../helpers/tls.js';

const addon = loadNativeAddon();
const skip = addon ? false : 'native addon unavailable';
if (skip) console.log(`# skipping: ${skip}`);

/** A loopback server that answers every connection with what it received, after the client's FIN. */
async function replyServer(): Promise<{ port: number; close: () => void }> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => s.end(`got:${Buffer.concat(chunks).toString()}`));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

function readAll(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString();
    });
    socket.once('end', () => resolve(text));
  });
}

describe('native pump hand-over edge cases', { skip }, () => {
  const pump = createNativePump(addon!);

  it('runs a pair with a TLS leg on the JS pump, transparently', async () => {
    const upstream = await replyServer();
    const cert = selfSignedLoopbackCertificate();
    const sessions: Promise<{ bytesUp: number }>[] = [];
    const front = tls.createServer({ key: cert.key, cert: cert.cert, allowHalfOpen: true }, (down) => {
      const up = net.connect({ host: '127.0.0.1', port: upstream.port, allowHalfOpen: true });
      up.once('connect', () => sessions.push(pump.run(down, up).done));
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    try {
      const client = tls.connect({
        host: '127.0.0.1',
        port: (front.address() as net.AddressInfo).port,
        ca: cert.cert,
        allowHalfOpen: true,
      } as tls.ConnectionOptions);
      await new Promise((r) => client.once('secureConnect', r));
      const reply = readAll(client);
      client.end('over tls');
      assert.equal(await reply, 'got:over tls');
      const [r] = await Promise.all(sessions);
      assert.equal(r!.bytesUp, 'over tls'.length);
    } finally {
      front.close();
      upstream.close();
    }
  });

  it('waits for an upstream that is still connecting, with unflushed writes, then takes it over', async () => {
    const upstream = await replyServer();
    const sessions: Promise<{ bytesUp: number }>[] = [];
    const front = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (down) => {
      const up = net.connect({ host: '127.0.0.1', port: upstream.port, allowHalfOpen: true });
      // Written while connecting: Node holds it until the connection is up.
      up.write('preamble|');
      sessions.push(pump.run(down, up).done);
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    try {
      const client = net.connect({ host: '127.0.0.1', port: (front.address() as net.AddressInfo).port, allowHalfOpen: true });
      const reply = readAll(client);
      client.end('payload');
      assert.equal(await reply, 'got:preamble|payload');
      const [r] = await Promise.all(sessions);
      // The preamble was the caller's own write, not the pump's: only the client's bytes count.
      assert.equal(r!.bytesUp, 'payload'.length);
    } finally {
      front.close();
      upstream.close();
    }
  });
});
