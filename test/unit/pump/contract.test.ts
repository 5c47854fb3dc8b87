/**
 * The Pump contract (shared/pump/types.ts), run against every pump: bytes arrive intact and are
 * counted exactly, half-close and resets cross the pump, abort and idle timeouts end it, handshake
 * leftovers come first, backpressure holds, many connections run at once, and no fd is leaked.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Pump } from '../../../shared/pump/index.js';
import { closed, openFdCount, receive, send, sha256Of, startPair, type PairHarness } from '../../helpers/pump-harness.js';
import { pumpsUnderTest } from '../../helpers/pumps.js';

const MiB = 1 << 20;

for (const variant of pumpsUnderTest()) {
  describe(`pump contract: ${variant.name}`, { skip: variant.skip }, () => {
    const pump = variant.pump as Pump;
    let pair: PairHarness;
    before(async () => {
      pair = await startPair(pump);
    });
    after(async () => {
      await pair.close();
    });

    const sizes = [0, 1, 1000, 64 * 1024 + 1, 3 * MiB + 7, 32 * MiB];
    for (const size of sizes) {
      it(`moves ${size} bytes each way at once, intact (SHA-256) and exactly counted`, async () => {
        const { client, server, session } = await pair.open();
        const [atServer, atClient] = await Promise.all([receive(server), receive(client), send(client, size, 1), send(server, size, 2)]);
        assert.equal(atServer.ending, 'end');
        assert.equal(atClient.ending, 'end');
        assert.equal(atServer.bytes, size);
        assert.equal(atServer.sha256, sha256Of(size, 1));
        assert.equal(atClient.bytes, size);
        assert.equal(atClient.sha256, sha256Of(size, 2));
        const r = await session.done;
        assert.equal(r.bytesUp, size);
        assert.equal(r.bytesDown, size);
        assert.equal(r.error, undefined);
        assert.ok(r.closedBy === 'downstream' || r.closedBy === 'upstream');
        // What the spliced/copied metric counts: the variant's own path once a byte has moved.
        if (size > 0) assert.equal(r.path, variant.path);
      });
    }

    it('moves 256 MiB one way intact', async () => {
      const size = 256 * MiB;
      const { client, server, session } = await pair.open();
      server.end();
      const [atServer] = await Promise.all([receive(server), receive(client), send(client, size, 3)]);
      assert.equal(atServer.bytes, size);
      assert.equal(atServer.sha256, sha256Of(size, 3));
      const r = await session.done;
      assert.equal(r.bytesUp, size);
      assert.equal(r.bytesDown, 0);
    });

    it('propagates a client half-close: the server still answers after the client FIN', async () => {
      const { client, server, session } = await pair.open();
      const atClient = receive(client);
      const request = await new Promise<Buffer>((resolve) => {
        const chunks: Buffer[] = [];
        server.on('data', (d: Buffer) => chunks.push(d));
        server.once('end', () => resolve(Buffer.concat(chunks)));
        server.resume();
        client.end('question');
      });
      assert.equal(request.toString(), 'question');
      server.end('answer after your FIN');
      const got = await atClient;
      assert.equal(got.ending, 'end');
      assert.equal(got.bytes, 'answer after your FIN'.length);
      const r = await session.done;
      assert.equal(r.closedBy, 'downstream');
      assert.equal(r.bytesUp, 'question'.length);
      assert.equal(r.error, undefined);
    });

    it('propagates a server half-close: the client still sends after the server FIN', async () => {
      const { client, server, session } = await pair.open();
      const atServer = receive(server);
      const greeting = await new Promise<Buffer>((resolve) => {
        const chunks: Buffer[] = [];
        client.on('data', (d: Buffer) => chunks.push(d));
        client.once('end', () => resolve(Buffer.concat(chunks)));
        client.resume();
        server.end('bye from server');
      });
      assert.equal(greeting.toString(), 'bye from server');
      await send(client, 100_000, 4);
      const got = await atServer;
      assert.equal(got.bytes, 100_000);
      assert.equal(got.sha256, sha256Of(100_000, 4));
      const r = await session.done;
      assert.equal(r.closedBy, 'upstream');
    });

    it('propagates a reset from the client to the server', async () => {
      const { client, server, session } = await pair.open();
      const atServer = receive(server);
      client.write('some bytes first');
      await new Promise((r) => server.once('data', r));
      client.resetAndDestroy();
      assert.equal((await atServer).ending, 'ECONNRESET');
      const r = await session.done;
      assert.equal(r.closedBy, 'downstream');
      assert.equal(r.error?.side, 'downstream');
      assert.equal(r.error?.code, 'ECONNRESET');
    });

    it('propagates a reset from the server to the client', async () => {
      const { client, server, session } = await pair.open();
      const atClient = receive(client);
      server.write('hello');
      await new Promise((r) => client.once('data', r));
      server.resetAndDestroy();
      assert.equal((await atClient).ending, 'ECONNRESET');
      const r = await session.done;
      assert.equal(r.closedBy, 'upstream');
      assert.equal(r.error?.side, 'upstream');
      assert.equal(r.error?.code, 'ECONNRESET');
    });

    it('abort() closes both legs and reports closedBy "aborted" once', async () => {
      const { client, server, session } = await pair.open();
      const atClient = receive(client);
      const atServer = receive(server);
      client.write('x'.repeat(1000));
      await new Promise((r) => server.once('data', r));
      session.abort('test');
      const [c, s] = await Promise.all([atClient, atServer]);
      assert.notEqual(c.ending, 'ECONNRESET');
      assert.notEqual(s.ending, 'ECONNRESET');
      const r = await session.done;
      assert.equal(r.closedBy, 'aborted');
      assert.equal(r.bytesUp, 1000);
    });

    it('ends an idle connection after idleTimeoutMs', async () => {
      const idlePair = await startPair(pump, { prepare: () => ({ idleTimeoutMs: 200 }) });
      try {
        const { client, server, session } = await idlePair.open();
        const atClient = receive(client);
        receive(server);
        const r = await session.done;
        assert.equal(r.closedBy, 'idle_timeout');
        await atClient;
      } finally {
        await idlePair.close();
      }
    });

    it('sends handshake leftovers first: opts.headUp/headDown, then bytes Node buffered', async () => {
      const headPair = await startPair(pump, {
        async prepare(down) {
          // Take only the 6-byte greeting; the rest of its chunk stays in Node's read buffer.
          const greeting = await new Promise<Buffer>((resolve) => {
            const onReadable = () => {
              const g = down.read(6) as Buffer | null;
              if (g) {
                down.off('readable', onReadable);
                resolve(g);
              }
            };
            down.on('readable', onReadable);
          });
          assert.equal(greeting.toString(), 'HELLO\n');
          return { headUp: Buffer.from('[up-head]'), headDown: Buffer.from('[down-head]') };
        },
      });
      try {
        const { client, server, session } = await headPair.open({ firstWrite: Buffer.from('HELLO\nbuffered-by-node|') });
        const atServer = receiveText(server);
        const atClient = receiveText(client);
        client.end('tail');
        server.end('reply');
        assert.equal(await atServer, '[up-head]buffered-by-node|tail');
        assert.equal(await atClient, '[down-head]reply');
        const r = await session.done;
        assert.equal(r.bytesUp, '[up-head]buffered-by-node|tail'.length);
        assert.equal(r.bytesDown, '[down-head]reply'.length);
      } finally {
        await headPair.close();
      }
    });

    it('holds back a fast sender while the receiver does not read, then delivers everything', async () => {
      const size = 64 * MiB;
      const { client, server, session } = await pair.open();
      server.end();
      const sending = send(client, size, 5);
      // Wait until the sender stops making progress: everything between is full.
      let last = -1;
      while (client.bytesWritten - client.writableLength !== last) {
        last = client.bytesWritten - client.writableLength;
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.ok(last < size, `the sender got ${last} of ${size} bytes out with nobody reading`);
      const [got] = await Promise.all([receive(server), receive(client), sending]);
      assert.equal(got.bytes, size);
      assert.equal(got.sha256, sha256Of(size, 5));
      assert.equal((await session.done).bytesUp, size);
    });

    it('runs 1000 connections at once', async () => {
      const pairs = await Promise.all(Array.from({ length: 1000 }, () => pair.open()));
      const results = await Promise.all(
        pairs.map(async ({ client, server, session }, i) => {
          const [atServer, atClient] = await Promise.all([
            receive(server),
            receive(client),
            send(client, 2000 + i, i),
            send(server, 3000 + i, i + 7),
          ]);
          const r = await session.done;
          return { i, atServer, atClient, r };
        }),
      );
      for (const { i, atServer, atClient, r } of results) {
        assert.equal(atServer.sha256, sha256Of(2000 + i, i));
        assert.equal(atClient.sha256, sha256Of(3000 + i, i + 7));
        assert.equal(r.bytesUp, 2000 + i);
        assert.equal(r.bytesDown, 3000 + i);
      }
    });

    it('leaks no file descriptor (/proc/self/fd before and after 200 connections)', async () => {
      const before = openFdCount();
      const pairs = await Promise.all(Array.from({ length: 200 }, () => pair.open()));
      await Promise.all(
        pairs.map(async ({ client, server, session }, i) => {
          if (i % 3 === 2) {
            session.abort();
            await Promise.all([receive(client), receive(server)]);
            client.destroy();
            server.destroy();
          } else {
            await Promise.all([receive(server), receive(client), send(client, 10_000, i), send(server, 10_000, i)]);
          }
          await session.done;
          await Promise.all([closed(client), closed(server)]);
        }),
      );
      // Close callbacks of the front's sockets run on the next turns of the loop.
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(openFdCount(), before);
    });
  });
}

function receiveText(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.once('end', () => resolve(Buffer.concat(chunks).toString()));
    socket.resume();
  });
}
