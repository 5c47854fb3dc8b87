/**
 * `admin.max_connections`: the admin endpoint holds at most that many connections; one more is
 * closed at accept without an answer, and the ones held keep working. The config key is read by
 * the side's spec (shared/config/side.ts) and enforced by the admin server: this test goes through
 * both, from the YAML to the socket.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import type { OuterConfig } from '../../shared/config/types.js';
import { SideRuntime } from '../../shared/runtime/side-runtime.js';
import { outerListeners } from '../../proxy-outer/listeners.js';
import { configProblems, loadText } from '../helpers/config.js';
import { freePort } from '../helpers/ports.js';

/** One keep-alive request on an open socket; resolves with the status line. */
function get(socket: net.Socket, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer) => {
      got += d.toString();
      if (got.includes('\r\n\r\n')) {
        socket.off('data', onData);
        resolve(got.split('\r\n')[0] ?? '');
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(`GET ${path} HTTP/1.1\r\nhost: admin\r\n\r\n`);
  });
}

function open(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

test('the default is 64, and a configured limit is enforced at accept', async () => {
  assert.equal((loadText('role: outer\n') as OuterConfig).admin.maxConnections, 64);
  const port = await freePort();
  const config = loadText(`role: outer\nadmin: { address: "tcp://127.0.0.1:${port}", max_connections: 2 }\n`) as OuterConfig;
  assert.equal(config.admin.maxConnections, 2);
  const runtime = new SideRuntime(config, outerListeners(config));
  await runtime.start();
  try {
    const first = await open(port);
    const second = await open(port);
    // Both are accepted and answered before the third is tried (the kernel queue is FIFO).
    assert.match(await get(first, '/live'), /^HTTP\/1\.1 200/);
    assert.match(await get(second, '/live'), /^HTTP\/1\.1 200/);
    const third = await open(port);
    const answer = await new Promise<string>((resolve) => {
      let got = '';
      third.on('data', (d: Buffer) => {
        got += d.toString();
      });
      third.once('close', () => resolve(got));
      third.on('error', () => {});
      third.write('GET /live HTTP/1.1\r\nhost: admin\r\n\r\n');
    });
    assert.equal(answer, '', 'the connection over the limit was answered');
    assert.match(await get(first, '/live'), /^HTTP\/1\.1 200/, 'a held connection stopped working');
    first.destroy();
    second.destroy();
  } finally {
    await runtime.shutdown();
  }
});

test('a limit out of range is refused at load', () => {
  const ps = configProblems('role: outer\nadmin: { max_connections: 0 }\n');
  assert.ok(
    ps.some((p) => /admin\.max_connections: 0 is below the minimum of 1/.test(p)),
    ps.join('\n'),
  );
});
