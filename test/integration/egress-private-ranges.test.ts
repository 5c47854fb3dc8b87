/**
 * An Enclaver manifest that allows private addresses explicitly (issue 9): `127.0.0.0/8:PORT`
 * and `host` (the parent's own loopback) are reached through the local pair — the outer's guard
 * follows the ranges the inner's policy names — while a loopback address outside them is still
 * refused by the guard, with a 403 that says so and names its reason. Loopback only.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { runCli, tempDir } from '../helpers/process.js';
import { freePort, readAudit } from '../helpers/egress.js';

const dir = tempDir('egress-private-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('a manifest allowing 127.0.0.0/8:PORT and host reaches them; an address outside them stays refused', async () => {
  const server = http.createServer((req, res) => res.end(`hi ${req.url}`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  // Another loopback server, on a port no range names.
  const other = http.createServer((req, res) => res.end(`other ${req.url}`));
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  const otherPort = (other.address() as net.AddressInfo).port;
  try {
    fs.writeFileSync(
      path.join(dir, 'enclaver.yaml'),
      `version: v1
name: private-ranges
target: "private-ranges:latest"
sources:
  app: "private-ranges-app:latest"
egress:
  proxy_port: ${await freePort()}
  allow: ["127.0.0.0/8:${port}", "host:${port}", "localhost"]
`,
    );
    // The app: CONNECT (-p) to the explicit range and to `host`, then to an allowed name whose
    // address (loopback) no range names for that port: the parent's guard refuses it (a 403).
    const app = [
      `curl -sS --noproxy "" -p -x "$HTTPS_PROXY" http://127.0.0.1:${port}/range > out1`,
      `curl -sS --noproxy "" -p -x "$HTTPS_PROXY" http://host:${port}/host > out2`,
      `curl -sS -v --noproxy "" -p -x "$HTTPS_PROXY" http://localhost:${otherPort}/name > out3 2> err3; echo $? > code3`,
    ].join(' && ');
    const pair = runCli(
      [
        '--config',
        path.join(dir, 'enclaver.yaml'),
        '--role',
        'local',
        '--audit-log',
        path.join(dir, 'audit.log'),
        '--admin',
        `tcp://127.0.0.1:${await freePort()}`,
        '--inner-admin',
        `tcp://127.0.0.1:${await freePort()}`,
        '--',
        'sh',
        '-c',
        app,
      ],
      { cwd: dir },
    );
    const { code } = await pair.exited;
    assert.equal(code, 0, `${pair.stdout()}\n${pair.stderr()}`);
    assert.equal(fs.readFileSync(path.join(dir, 'out1'), 'utf8'), 'hi /range');
    assert.equal(fs.readFileSync(path.join(dir, 'out2'), 'utf8'), 'hi /host');
    assert.notEqual(fs.readFileSync(path.join(dir, 'code3'), 'utf8').trim(), '0');
    assert.match(fs.readFileSync(path.join(dir, 'err3'), 'utf8'), /HTTP\/1\.1 403[^]*X-Enclaver-Reason: outer_guard_refused/);
    const lines = readAudit(path.join(dir, 'audit.log'));
    const seen = lines.map((l) => `${String(l.dest_host)} ${String(l.decision)} ${String(l.reason)} ${String(l.dest_ip)}`).sort();
    assert.deepEqual(seen, [
      '127.0.0.1 allow allowed_by_rule 127.0.0.1',
      'host allow allowed_by_rule 127.0.0.1',
      'localhost deny outer_guard_refused null',
    ]);
  } finally {
    for (const s of [server, other]) {
      s.closeAllConnections();
      s.close();
    }
  }
});
