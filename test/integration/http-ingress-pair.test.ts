/**
 * The HTTP listener kind through the real pair (`role: local`: outer TCP listener → PROXY v2 over
 * emulated vsock → inner `http` listener → apps started by the inner), with real clients: curl,
 * undici, ws and raw sockets for what clients refuse to send; and attested TLS checked by the CLI
 * against documents from the NSM simulator.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import WebSocket from 'ws';
import { stringify } from 'yaml';
import { firstStatus, rawExchange } from '../helpers/http-ingress.js';
import { metricValue } from '../helpers/pair.js';
import { FIXTURES } from '../helpers/paths.js';
import { freePorts } from '../helpers/ports.js';
import { runCli, runCliToEnd, tempDir, type Proc } from '../helpers/process.js';
import { eventually } from '../helpers/eventually.js';

const exec = promisify(execFile);
const APP = path.join(FIXTURES, 'apps', 'http-echo-app.mjs');
const PCR0 = 'c3'.repeat(48);

interface Started {
  proc: Proc;
  port: number;
  innerAdmin: number;
  dir: string;
}

async function startHttpPair(opts: { tls: boolean; headTimeout?: string }): Promise<Started> {
  const [port, appPort, apiPort, innerAdmin] = (await freePorts(4)) as [number, number, number, number];
  const vport = 20000 + (appPort % 10000);
  const dir = tempDir();
  const config = {
    role: 'local',
    runtime_dir: path.join(dir, 'run'),
    outer: {
      admin: { address: null },
      listeners: [{ name: 'web', address: `tcp://127.0.0.1:${port}`, cluster: 'enclave' }],
      clusters: [{ name: 'enclave', endpoints: [`vsock://16:${vport}`], proxy_protocol: 'v2' }],
    },
    inner: {
      admin: { address: `tcp://127.0.0.1:${innerAdmin}` },
      ...(opts.tls
        ? { nsm: { mode: 'simulator', simulator: { pcrs: { 0: PCR0 }, root_certificate_path: path.join(dir, 'nsm-root.pem') } } }
        : {}),
      // The second app (the api cluster) is the same program on another port, started by a shell.
      app: { command: `node ${APP} & PORT=${apiPort} APP_NAME=api exec node ${APP}`, env: { PORT: String(appPort), APP_NAME: 'web' } },
      listeners: [
        {
          name: 'web',
          address: `vsock://any:${vport}`,
          proxy_protocol: 'v2',
          access_log: true,
          ...(opts.tls ? { tls: { certificate: 'attested', names: ['localhost', '127.0.0.1'] } } : {}),
          http: {
            routes: [{ name: 'api', hosts: ['api.example.com'], paths: ['/v1/**'], cluster: 'api' }],
            default_cluster: 'web',
            max_headers: 40,
            ...(opts.headTimeout ? { head_timeout: opts.headTimeout } : {}),
          },
        },
      ],
      clusters: [
        { name: 'web', endpoints: [`tcp://127.0.0.1:${appPort}`] },
        { name: 'api', endpoints: [`tcp://127.0.0.1:${apiPort}`] },
      ],
    },
  };
  const file = path.join(dir, 'pair.yaml');
  fs.writeFileSync(file, stringify(config));
  const proc = runCli(['--config', file]);
  await proc.waitFor((r) => r.msg === 'local pair ready', 20_000, 'local pair ready');
  const deadline = Date.now() + 15_000;
  while ((proc.stdout().match(/http-echo-app listening/g) ?? []).length < 2) {
    if (Date.now() > deadline) throw new Error(`the apps never listened\n${proc.stdout()}\n${proc.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { proc, port, innerAdmin, dir };
}

async function stopPair(p: Started): Promise<void> {
  await p.proc.stop();
  fs.rmSync(p.dir, { recursive: true, force: true });
}

const accessLines = (proc: Proc, p: string) => proc.records().filter((r) => r.msg === 'http request' && r.path === p);

async function accessLine(proc: Proc, p: string): Promise<Record<string, unknown>> {
  return proc.waitFor((r) => r.msg === 'http request' && r.path === p, 10_000, `access line for ${p}`);
}

describe('HTTP listener through the pair', () => {
  let pair: Started;
  before(async () => {
    pair = await startHttpPair({ tls: false, headTimeout: '500ms' });
  });
  after(async () => {
    await stopPair(pair);
  });

  test("routes by host and path; the client address comes from the outer's PROXY header, never from the client", async () => {
    const get = async (host: string, p: string) =>
      JSON.parse(
        (await exec('curl', ['-sS', '-H', `Host: ${host}`, '-H', 'X-Forwarded-For: 6.6.6.6', `http://127.0.0.1:${pair.port}${p}`])).stdout,
      ) as { app: string; headers: Record<string, string> };
    const api = await get('api.example.com', '/v1/users?id=7');
    assert.equal(api.app, 'api');
    // The inner's own leg is a Unix socket (emulated vsock): 127.0.0.1 can only have come from PROXY v2.
    assert.equal(api.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(api.headers.forwarded, 'for=127.0.0.1;proto=http;host=api.example.com');
    assert.equal((await get('api.example.com', '/v2/users')).app, 'web');
    assert.equal((await get('www.example.com', '/v1/users')).app, 'web');
    const line = await accessLine(pair.proc, '/v1/users');
    assert.equal(line.route, 'api');
    assert.equal(line.status, 200);
    assert.match(String(line.client), /^127\.0\.0\.1:\d+$/);
  });

  test('keep-alive through the pair: 20 requests on one client connection', async () => {
    const agent = new Agent({ connections: 1 });
    try {
      for (let i = 0; i < 20; i++) {
        const res = await request(`http://127.0.0.1:${pair.port}/ka`, { dispatcher: agent });
        assert.equal(res.statusCode, 200);
        assert.equal(res.headers['x-private'], undefined, 'a header the app named in Connection stays behind');
        await res.body.text();
      }
    } finally {
      await agent.close();
    }
    await eventually('an access line for each of 20 requests', () => accessLines(pair.proc, '/ka').length >= 20);
    assert.equal(new Set(accessLines(pair.proc, '/ka').map((l) => l.conn_id)).size, 1);
  });

  test('a smuggling attempt is 400 at the inner and never reaches the app; the next client is served', async () => {
    const { text } = await rawExchange(
      pair.port,
      'POST /clte HTTP/1.1\r\nHost: s\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: s\r\n\r\n',
    );
    assert.equal(firstStatus(text), 400);
    const after = await exec('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${pair.port}/after-smuggle`]);
    assert.equal(after.stdout, '200');
    await accessLine(pair.proc, '/after-smuggle');
    assert.doesNotMatch(pair.proc.stdout(), /app saw \S+ \/(clte|smuggled)/);
    assert.ok(pair.proc.records().some((r) => r.msg === 'http request' && r.status === 400 && r.error === 'hpe_invalid_transfer_encoding'));
  });

  test('too many header fields: 431; a slow head: 408; both closed', async () => {
    const many = Array.from({ length: 41 }, (_, i) => `X-H${i}: ${i}\r\n`).join('');
    assert.equal(firstStatus((await rawExchange(pair.port, `GET /many HTTP/1.1\r\nHost: s\r\n${many}\r\n`)).text), 431);
    const slow = await rawExchange(pair.port, 'GET /slow HTTP/1.1\r\nHost: s\r\nX-Partial: ');
    assert.equal(firstStatus(slow.text), 408);
    assert.ok(slow.closed);
  });

  test('WebSocket through the pair, and an Upgrade the app refuses', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${pair.port}/chat`);
    const messages: string[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.on('message', (d) => {
        messages.push(String(d));
        if (messages.length === 1) ws.send('through the pair');
        else ws.close();
      });
      ws.on('close', () => resolve());
      ws.on('error', reject);
    });
    assert.deepEqual(JSON.parse(messages[0]!), { xff: '127.0.0.1' });
    assert.equal(messages[1], 'through the pair');
    assert.equal((await accessLine(pair.proc, '/chat')).status, 101);
    const refused = new WebSocket(`ws://127.0.0.1:${pair.port}/refuse`);
    const status = await new Promise<number>((resolve) => {
      refused.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      refused.on('error', () => resolve(-1));
    });
    assert.equal(status, 403);
  });

  test('an app that resets mid-response: the client sees a truncated transfer, the line says upstream_reset', async () => {
    const r = await exec('curl', ['-sS', '-o', '/dev/null', `http://127.0.0.1:${pair.port}/reset-mid-body`]).then(
      () => null,
      (err: { code: number }) => err,
    );
    assert.ok(r && [18, 56].includes(r.code), `curl exit ${r?.code}`);
    assert.equal((await accessLine(pair.proc, '/reset-mid-body')).error, 'upstream_reset');
  });

  test('per-route metrics on the inner admin endpoint', async () => {
    const text = await (await fetch(`http://127.0.0.1:${pair.innerAdmin}/metrics`)).text();
    assert.ok((metricValue(text, 'enclaver_http_requests_total{listener="web",route="api",status="2xx"}') ?? 0) >= 1);
    assert.ok((metricValue(text, 'enclaver_http_request_duration_seconds_count{listener="web",route="default"}') ?? 0) >= 20);
  });
});

describe('attested TLS through the pair', () => {
  let pair: Started;
  before(async () => {
    pair = await startHttpPair({ tls: true });
  });
  after(async () => {
    await stopPair(pair);
  });

  test('curl reaches the app over TLS terminated inside; X-Forwarded-Proto is https', async () => {
    const { stdout } = await exec('curl', ['-sSk', `https://127.0.0.1:${pair.port}/tls`]);
    assert.equal((JSON.parse(stdout) as { headers: Record<string, string> }).headers['x-forwarded-proto'], 'https');
  });

  test('attestation check passes with the right PCR0 and names a wrong one', async () => {
    const root = path.join(pair.dir, 'nsm-root.pem');
    const ok = await runCliToEnd(['attestation', 'check', `https://127.0.0.1:${pair.port}`, '--pcr', `0=${PCR0}`, '--root', root]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { verdict: string }).verdict, 'pass');
    const wrong = await runCliToEnd([
      'attestation',
      'check',
      `https://127.0.0.1:${pair.port}`,
      '--pcr',
      `0=${'00'.repeat(48)}`,
      '--root',
      root,
    ]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /FAIL pcr_mismatch/);
    // Without --root the document chains to the simulator's throw-away root, not AWS's.
    const unpinned = await runCliToEnd(['attestation', 'check', `https://127.0.0.1:${pair.port}`, '--pcr', `0=${PCR0}`]);
    assert.match(unpinned.stderr, /FAIL wrong_root/);
    assert.ok(accessLines(pair.proc, '/.well-known/enclave-attestation').every((l) => l.route === 'attestation'));
    assert.doesNotMatch(pair.proc.stdout(), /app saw GET \/\.well-known/, 'the attestation path is answered by the proxy, never forwarded');
  });

  test('the certificate served is the attested one and its key never touches the runtime directory', async () => {
    const cert = await new Promise<string>((resolve, reject) => {
      const t = tls.connect({ host: '127.0.0.1', port: pair.port, rejectUnauthorized: false }, () => {
        resolve(t.getPeerX509Certificate()!.subjectAltName ?? '');
        t.destroy();
      });
      t.once('error', reject);
    });
    assert.match(cert, /DNS:localhost/);
    const files = fs.readdirSync(pair.dir, { recursive: true }).map(String);
    for (const f of files) {
      const full = path.join(pair.dir, f);
      if (fs.statSync(full).isFile()) assert.doesNotMatch(fs.readFileSync(full, 'latin1'), /PRIVATE KEY/, `${f} holds no private key`);
    }
  });
});
