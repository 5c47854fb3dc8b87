/**
 * A port that is already taken stops the proxy with a message that names the listener, the
 * address and the config key or flag to change (`listen EADDRINUSE 127.0.0.1:10000` named
 * neither): proxy.yaml listeners, the manifest's `egress.proxy_port` and `-p` for its ingress,
 * and the admin endpoint (`admin.address` / `--admin`).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freePorts } from '../helpers/ports.js';
import { runCliToEnd, tempDir } from '../helpers/process.js';

const dir = tempDir();
let busy: net.Server;
let busyPort: number;
let free: number[];

before(async () => {
  busy = net.createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  busyPort = (busy.address() as net.AddressInfo).port;
  free = await freePorts(4);
});
after(() => {
  busy.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

/** The fatal record's message (what a user reads), from the JSON log lines. */
function fatalMessage(stdout: string): string {
  const fatal = stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: string; err?: string })
    .find((r) => r.level === 'fatal');
  assert.ok(fatal?.err, `a fatal record with the error:\n${stdout}`);
  return fatal.err;
}

describe('a busy port names the listener and what to change', () => {
  test('proxy.yaml: the inner egress listener of a local pair', async () => {
    const config = write(
      'pair.yaml',
      `role: local
runtime_dir: ${dir}/run-pair
outer:
  admin: { address: tcp://127.0.0.1:${free[0]} }
  listeners: []
  clusters: []
inner:
  admin: { address: tcp://127.0.0.1:${free[1]} }
  app: { command: [${JSON.stringify(process.execPath)}, -e, "setInterval(() => {}, 1000)"] }
  listeners:
    - name: other
      address: tcp://127.0.0.1:${free[2]}
      egress: { allow: [example.com] }
    - name: app-egress
      address: tcp://127.0.0.1:${busyPort}
      egress: { allow: [example.com] }
  clusters: []
`,
    );
    const r = await runCliToEnd(['--config', config]);
    assert.notEqual(r.code, 0);
    assert.equal(
      fatalMessage(r.stdout),
      `listener "app-egress" cannot listen on tcp://127.0.0.1:${busyPort}: the address is in use by another process or by another listener of this config (EADDRINUSE); change inner.listeners[1].address`,
    );
  });

  test('Enclaver manifest: egress.proxy_port (inner) and -p for an ingress (outer)', async () => {
    const manifest = write(
      'enclaver.yaml',
      `version: v1\nname: busy\ntarget: "busy:latest"\nsources: { app: "busy:latest" }\negress:\n  proxy_port: ${busyPort}\n  allow: [example.com]\ningress:\n  - listen_port: 8001\n`,
    );
    fs.mkdirSync(path.join(dir, 'vsock'), { mode: 0o700 });
    const [inner, outer] = await Promise.all([
      runCliToEnd(['--config', manifest, '--role', 'inner', '--admin', 'none', '--', process.execPath, '-e', '0']),
      runCliToEnd(['--config', manifest, '--role', 'outer', '--admin', 'none', '-p', `127.0.0.1:${busyPort}:8001`], {
        env: { ENCLAVER_VSOCK_EMULATION_DIR: path.join(dir, 'vsock') },
      }),
    ]);
    assert.notEqual(inner.code, 0);
    assert.match(
      fatalMessage(inner.stdout),
      new RegExp(
        `^listener "egress" cannot listen on tcp://127\\.0\\.0\\.1:${busyPort}: the address is in use .*; change egress\\.proxy_port$`,
      ),
    );
    assert.notEqual(outer.code, 0);
    assert.match(
      fatalMessage(outer.stdout),
      /^listener "ingress-8001" cannot listen on .*: the address is in use .*; change -p HOST_PORT:8001 \(the host port published for ingress\[0\]\.listen_port\)$/,
    );
  });

  test('the admin endpoint: admin.address or --admin', async () => {
    const config = write('inner.yaml', `role: inner\nadmin: { address: tcp://127.0.0.1:${busyPort} }\nlisteners: []\nclusters: []\n`);
    const r = await runCliToEnd(['--config', config]);
    assert.notEqual(r.code, 0);
    assert.match(
      fatalMessage(r.stdout),
      new RegExp(
        `^the admin endpoint cannot listen on tcp://127\\.0\\.0\\.1:${busyPort}: the address is in use .*; change admin\\.address or --admin ADDR$`,
      ),
    );
  });
});
