/**
 * The pair's frame channels accept only their peer (issue 9): a connection from another vsock
 * CID is refused, and an exclusive channel (status, logs, audit) refuses a second stream while
 * one is open — the forged `exited` status and the forged audit record of the hostile-input suite.
 * Real Unix sockets; the peer's CID is substituted where the kernel would report it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { logger } from '../../../shared/log/logger.js';
import { encodeFrame, FrameType, type Frame } from '../../../shared/wire/frame.js';
import { serveFrames } from '../../../shared/wire/frame-server.js';
import type { Peer } from '../../../shared/transport/peer.js';
import { StatusCollector } from '../../../proxy-outer/status/collector.js';
import type { EnclaveStatus } from '../../../shared/wire/status.js';

function tempSocket(): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'frames-'));
  return { dir, file: path.join(dir, 'ch.sock') };
}

function dial(file: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path: file, allowHalfOpen: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves when the server closed the connection (it reads until the end). */
function closedByServer(s: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    s.on('data', () => {});
    s.on('error', () => {});
    s.once('close', () => resolve());
  });
}

test('a connection from another vsock CID is refused before any frame is read', async () => {
  const { dir, file } = tempSocket();
  const received: Frame[] = [];
  const peers: Peer[] = [
    { kind: 'vsock', cid: 17 },
    { kind: 'vsock', cid: 16 },
  ];
  const server = await serveFrames({
    what: 'test channel',
    address: { kind: 'unix', path: file },
    log: logger('test'),
    peerCid: 16,
    exclusive: false,
    identify: () => peers.shift()!,
    accept: () => ({
      frames: (frames) => {
        received.push(...frames);
      },
    }),
  });
  try {
    const intruder = await dial(file);
    const refused = closedByServer(intruder);
    intruder.write(encodeFrame(FrameType.Status, { state: 'exited', code: 0, signal: null }));
    await refused;
    const enclave = await dial(file);
    enclave.write(encodeFrame(FrameType.Status, { state: 'running', pid: 7 }));
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (received.length > 0) {
          clearInterval(t);
          resolve();
        }
      }, 5);
    });
    assert.deepEqual(
      received.map((f) => f.payload.state),
      ['running'],
    );
    enclave.destroy();
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the status channel takes one stream: a second connection cannot report a fake exit', async () => {
  const { dir, file } = tempSocket();
  const collector = new StatusCollector({ enclaveCid: 16, address: { kind: 'unix', path: file } });
  const seen: EnclaveStatus[] = [];
  collector.on('status', (s) => seen.push(s));
  await collector.start();
  try {
    const enclave = await dial(file);
    enclave.on('data', () => {});
    enclave.write(encodeFrame(FrameType.Status, { state: 'running', pid: 42 }));
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (seen.length === 1) {
          clearInterval(t);
          resolve();
        }
      }, 5);
    });

    const intruder = await dial(file);
    const refused = closedByServer(intruder);
    intruder.write(encodeFrame(FrameType.Status, { state: 'exited', code: 0, signal: null }));
    await refused;
    assert.deepEqual(
      seen.map((s) => s.state),
      ['running'],
      'the fake exit was never read',
    );
    assert.equal(collector.latest?.state, 'running');

    // Once the enclave's stream ends (a reconnect), the next stream is taken.
    const ended = new Promise<void>((r) => enclave.once('close', () => r()));
    enclave.end();
    await ended;
    const again = await dial(file);
    again.on('data', () => {});
    again.write(encodeFrame(FrameType.Status, { state: 'exited', code: 3, signal: null }));
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (seen.length === 2) {
          clearInterval(t);
          resolve();
        }
      }, 5);
    });
    assert.deepEqual(
      seen.map((s) => s.state),
      ['running', 'exited'],
    );
    again.destroy();
  } finally {
    await collector.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
