/**
 * vsock:// through the transport layer. Real AF_VSOCK runs only where the kernel has the loopback
 * transport (CID 1); elsewhere those tests are skipped with the reason printed. Emulated vsock
 * error paths run everywhere.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TransportError } from '../../shared/errors/index.js';
import { loadNativeAddon } from '../../shared/native/addon.js';
import { activePump } from '../../shared/pump/index.js';
import { connect, listen, parseAddress, type Listening } from '../../shared/transport/index.js';
import { configureVsock, vsockSettings } from '../../shared/transport/vsock.js';
import { receive, send, sha256Of } from '../helpers/pump-harness.js';
import { vsockLoopbackUnavailable } from '../helpers/vsock-loopback.js';

const emulated = vsockSettings().emulationDir;
const unavailable = emulated ? `vsock emulation is on (${emulated}); real AF_VSOCK tests need it off` : await vsockLoopbackUnavailable();
if (unavailable) console.log(`# skipping real AF_VSOCK tests: ${unavailable}`);

function randomPort(): number {
  return 20000 + crypto.randomInt(40000);
}

describe('real AF_VSOCK over the loopback transport', { skip: unavailable }, () => {
  let listening: Listening;
  let port: number;
  before(async () => {
    port = randomPort();
    listening = await listen(parseAddress(`vsock://local:${port}`), (s) => {
      s.on('data', (d: Buffer) => s.write(d));
      s.on('end', () => s.end());
      s.resume();
    });
  });
  after(async () => {
    await listening.close();
  });

  it('listens and connects with net.Sockets on both ends', async () => {
    const socket = await connect(parseAddress(`vsock://local:${port}`), { timeoutMs: 2000 });
    const atClient = receive(socket);
    await send(socket, 1 << 20, 11);
    const got = await atClient;
    assert.equal(got.sha256, sha256Of(1 << 20, 11));
    assert.deepEqual(loadNativeAddon()!.vsockLocalCid() >= 0, true);
  });

  it("pumps between a vsock leg and another vsock leg (the pair's hop)", async () => {
    const frontPort = randomPort();
    const sessions: Promise<unknown>[] = [];
    const front = await listen(parseAddress(`vsock://local:${frontPort}`), (down: net.Socket) => {
      sessions.push(connect(parseAddress(`vsock://local:${port}`), { timeoutMs: 2000 }).then((up) => activePump().run(down, up).done));
    });
    try {
      const client = await connect(parseAddress(`vsock://local:${frontPort}`), { timeoutMs: 2000 });
      const atClient = receive(client);
      await send(client, 8 << 20, 12);
      assert.equal((await atClient).sha256, sha256Of(8 << 20, 12));
      const [r] = (await Promise.all(sessions)) as { bytesUp: number }[];
      assert.equal(r!.bytesUp, 8 << 20);
    } finally {
      await front.close();
    }
  });

  it("reports a port nobody listens on as ECONNRESET (SO_ERROR, not libuv's EBADF), like emulation does", async () => {
    await assert.rejects(
      connect(parseAddress(`vsock://local:${randomPort()}`), { timeoutMs: 2000 }),
      (err: unknown) =>
        err instanceof TransportError && err.errno === 'ECONNRESET' && /no peer is listening on this vsock port/.test(err.message),
    );
  });

  it('the addon itself hands the callback ECONNRESET for a refused connect', async () => {
    const addon = loadNativeAddon()!;
    const errno = await new Promise<string | undefined>((resolve) => {
      addon.vsockConnect(1, randomPort(), 2000, (err, fd) => {
        if (fd !== undefined) addon.closeFd(fd);
        resolve(err?.code);
      });
    });
    assert.equal(errno, 'ECONNRESET');
  });
});

describe('emulated vsock error paths', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enclaver-vsock-'));
  const previous = vsockSettings().emulationDir;
  before(() => configureVsock({ emulationDir: dir }));
  after(() => {
    configureVsock({ emulationDir: previous ?? '' });
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('connecting to an emulated port nobody listens on fails with ECONNRESET', async () => {
    await assert.rejects(
      connect(parseAddress('vsock://16:5000'), { timeoutMs: 1000 }),
      (err: unknown) => err instanceof TransportError && err.errno === 'ECONNRESET' && /no peer is listening/.test(err.message),
    );
  });
});
