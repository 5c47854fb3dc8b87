/**
 * Enclaver users switching over: an Enclaver manifest runs as the local pair, the app after `--`,
 * `-p` publishing the ingress port, and the manifest's TLS files honoured (TLS terminated by the
 * inner proxy, checked with curl against the certificate).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ROOT } from '../helpers/paths.js';
import { freePorts } from '../helpers/ports.js';
import { runCli, tempDir, type Proc } from '../helpers/process.js';
import { eventually } from '../helpers/eventually.js';

const exec = promisify(execFile);

describe('an Enclaver manifest as the local pair, with TLS in the enclave', () => {
  const dir = tempDir();
  let proc: Proc;
  let hostPort: number;
  let appPort: number;

  before(async () => {
    await exec('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      path.join(dir, 'key.pem'),
      '-out',
      path.join(dir, 'cert.pem'),
    ]);
    [hostPort, appPort] = (await freePorts(2)) as [number, number];
    const [outerAdmin, innerAdmin] = await freePorts(2);
    fs.writeFileSync(
      path.join(dir, 'enclaver.yaml'),
      `version: v1
name: "no-fly-list"
target: "no-fly-list:enclave-latest"
sources:
  app: "registry.edgebit.io/no-fly-list:latest"
defaults:
  memory_mb: 4096
ingress:
  - listen_port: ${appPort}
    tls:
      key_file: key.pem
      cert_file: cert.pem
`,
    );
    proc = runCli(
      [
        '--config',
        path.join(dir, 'enclaver.yaml'),
        '--role',
        'local',
        '-p',
        `${hostPort}:${appPort}`,
        '--admin',
        `tcp://127.0.0.1:${outerAdmin}`,
        '--inner-admin',
        `tcp://127.0.0.1:${innerAdmin}`,
        '--',
        process.execPath,
        path.join(ROOT, 'configs/demo/app.mjs'),
      ],
      { env: { PORT: String(appPort) } },
    );
    await proc.waitFor((r) => r.msg === 'local pair ready', 20_000, 'local pair ready');
    await eventually('the demo app listening', () => /demo app listening/.test(proc.stdout()));
  });

  after(async () => {
    await proc?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("curl over HTTPS reaches the app; the certificate is the manifest's", async () => {
    const { stdout } = await exec('curl', [
      '-sS',
      '--max-time',
      '10',
      '--cacert',
      path.join(dir, 'cert.pem'),
      `https://localhost:${hostPort}/through-tls`,
    ]);
    const body = JSON.parse(stdout) as { message: string; path: string };
    assert.equal(body.message, 'Hello from inside the enclave');
    assert.equal(body.path, '/through-tls');
  });

  test('plain HTTP to a TLS ingress fails the handshake and is logged, without harming others', async () => {
    await assert.rejects(exec('curl', ['-sS', '--max-time', '5', `http://127.0.0.1:${hostPort}/`]));
    const rec = await proc.waitFor((r) => r.msg === 'connection not proxied' && r.reason === 'TLS handshake', 10_000, 'TLS failure log');
    assert.equal(rec.side, 'inner');
    const { stdout } = await exec('curl', [
      '-sS',
      '--max-time',
      '10',
      '--cacert',
      path.join(dir, 'cert.pem'),
      `https://localhost:${hostPort}/again`,
    ]);
    assert.match(stdout, /"path":"\/again"/);
  });

  test('openssl s_client sees the manifest certificate', async () => {
    const { stdout } = await exec('sh', [
      '-c',
      `echo | openssl s_client -connect 127.0.0.1:${hostPort} -servername localhost 2>/dev/null | openssl x509 -noout -subject`,
    ]);
    assert.match(stdout, /CN ?= ?localhost/);
  });
});
