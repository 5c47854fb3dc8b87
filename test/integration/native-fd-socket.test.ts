/**
 * Wrapping socket fds that Node cannot open itself into net.Socket / net.Server (the path every
 * real vsock socket takes), exercised with Unix-socket fds, which libuv treats the same way.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { describe, it } from 'node:test';
import { NativeError, loadNativeAddon, type NativeAddon } from '../../shared/native/addon.js';
import { serverFromFd, socketFromFd } from '../../shared/native/fd-socket.js';
import { createNativePump } from '../../shared/pump/index.js';
import { receive, send, sha256Of } from '../helpers/pump-harness.js';

const addon = loadNativeAddon();
const skip = addon ? false : 'native addon unavailable';
if (skip) console.log(`# skipping: ${skip}`);

let names = 0;
function abstractName(): string {
  return `\0enclaver-test-${process.pid}-${names++}-${crypto.randomBytes(4).toString('hex')}`;
}

function fdOf(s: net.Socket | net.Server): number {
  return (s as unknown as { _handle: { fd: number } })._handle.fd;
}

/** A listening fd on an abstract Unix name that nobody else owns (the abstract name needs no file). */
async function listeningFd(a: NativeAddon, name: string): Promise<number> {
  const tmp = net.createServer();
  await new Promise<void>((r) => tmp.listen(name, r));
  const fd = a.dupFd(fdOf(tmp));
  await new Promise<void>((r) => tmp.close(() => r()));
  return fd;
}

/** A connected fd to `name`, taken from a net.Socket. */
async function connectedFd(a: NativeAddon, name: string): Promise<number> {
  const s = net.connect(name);
  await new Promise((r) => s.once('connect', r));
  const fd = a.dupFd(fdOf(s));
  s.destroy();
  return fd;
}

describe('fd → net.Socket / net.Server adoption', { skip }, () => {
  const a = addon as NativeAddon;

  it('serverFromFd: connections to an adopted listening fd arrive as paused net.Sockets', async () => {
    const name = abstractName();
    const accepted: net.Socket[] = [];
    const server = await serverFromFd(await listeningFd(a, name), { pauseOnConnect: true, allowHalfOpen: true }, (s) => {
      accepted.push(s);
      assert.equal(s.isPaused(), true);
      s.on('data', (d: Buffer) => s.write(`echo:${d.toString()}`));
      s.on('end', () => s.end());
      s.resume();
    });
    const client = net.connect(name);
    const reply = await new Promise<string>((resolve) => {
      let text = '';
      client.on('data', (d: Buffer) => {
        text += d.toString();
      });
      client.on('end', () => resolve(text));
      client.end('ping');
    });
    assert.equal(reply, 'echo:ping');
    assert.equal(accepted.length, 1);
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('socketFromFd: an adopted connected fd reads, writes and half-closes like any net.Socket', async () => {
    const name = abstractName();
    const server = net.createServer({ allowHalfOpen: true }, (s) => {
      let text = '';
      s.on('data', (d: Buffer) => {
        text += d.toString();
      });
      s.on('end', () => s.end(`got ${text.length} bytes after your FIN`));
    });
    await new Promise<void>((r) => server.listen(name, r));
    const socket = socketFromFd(await connectedFd(a, name));
    const reply = await new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (d: Buffer) => {
        text += d.toString();
      });
      socket.on('end', () => resolve(text));
      socket.end('x'.repeat(5000));
    });
    assert.equal(reply, 'got 5000 bytes after your FIN');
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('the native pump takes adopted sockets back: adopted listener → pump → adopted upstream', async () => {
    const frontName = abstractName();
    const sinkName = abstractName();
    const size = 8 << 20;
    const sinkResult = new Promise<{ sha256: string; bytes: number }>((resolve) => {
      const sink = net.createServer({ allowHalfOpen: true }, (s) => {
        void receive(s).then((r) => {
          s.end();
          resolve(r);
          sink.close();
        });
      });
      sink.listen(sinkName);
    });
    const pump = createNativePump(a);
    const sessions: Promise<unknown>[] = [];
    const front = await serverFromFd(await listeningFd(a, frontName), { pauseOnConnect: true, allowHalfOpen: true }, (down) => {
      sessions.push(connectedFd(a, sinkName).then((fd) => pump.run(down, socketFromFd(fd)).done));
    });
    const client = net.connect({ path: frontName, allowHalfOpen: true });
    await new Promise((r) => client.once('connect', r));
    const atClient = receive(client);
    await send(client, size, 9);
    const got = await sinkResult;
    assert.equal(got.bytes, size);
    assert.equal(got.sha256, sha256Of(size, 9));
    assert.equal((await atClient).ending, 'end');
    const [result] = (await Promise.all(sessions)) as { bytesUp: number }[];
    assert.equal(result!.bytesUp, size);
    await new Promise<void>((r) => front.close(() => r()));
  });

  it('adopting an fd that is not open fails with NativeError EBADF', () => {
    assert.throws(
      () => socketFromFd(65001),
      (err: unknown) => err instanceof NativeError && err.code === 'EBADF',
    );
  });
});
