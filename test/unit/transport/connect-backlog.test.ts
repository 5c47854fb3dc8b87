/**
 * A Unix listener whose accept queue is full refuses further connects at once (EAGAIN), where TCP
 * would queue them; connect() waits and retries within its timeout, so a burst of connections
 * through emulated vsock is absorbed rather than reset.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { connect } from '../../../shared/transport/index.js';

// A listener with a one-slot queue whose event loop is blocked for a while after it starts.
const SLOW_ACCEPTOR = `
const net = require('node:net');
const server = net.createServer((s) => s.end('ok'));
server.listen({ path: process.argv[1], backlog: 1 }, () => {
  console.log('ready');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 400);
});
setTimeout(() => process.exit(0), 5000);
`;

test("connect retries while a Unix listener's accept queue is full", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ep-backlog-'));
  const sock = path.join(dir, 'slow.sock');
  const child = spawn(process.execPath, ['-e', SLOW_ACCEPTOR, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    const sockets = await Promise.all(Array.from({ length: 8 }, () => connect({ kind: 'unix', path: sock }, { timeoutMs: 3000 })));
    const answers = await Promise.all(
      sockets.map(
        (s) =>
          new Promise<string>((resolve) => {
            let out = '';
            s.on('data', (d: Buffer) => {
              out += d.toString();
            });
            s.on('end', () => {
              s.destroy();
              resolve(out);
            });
            s.resume();
          }),
      ),
    );
    assert.deepEqual(answers, Array(8).fill('ok'), 'every connect eventually got through');
  } finally {
    child.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
