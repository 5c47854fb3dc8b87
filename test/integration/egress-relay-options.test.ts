/**
 * Options of the outer relay, each through the whole pair: the private-address guard (system
 * resolver answers), an upstream HTTP CONNECT proxy (tinyproxy), and an upstream SOCKS5 proxy
 * (another enclaver-proxy pair's SOCKS5 listener, driven by the `socks` package).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { egressListener, freePort, readAudit, run, startSide, tempDir, waitForPort, type AuditLine, type Side } from '../helpers/egress.js';
import { eventually } from '../helpers/eventually.js';

const dir = tempDir('egress-relay-');
const sides: Side[] = [];
let server: http.Server;
let serverPort = 0;

before(async () => {
  server = http.createServer((req, res) => res.end(`reached ${req.headers.host}${req.url}`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  serverPort = (server.address() as net.AddressInfo).port;
});

after(async () => {
  for (const s of sides) await s.stop();
  server.closeAllConnections();
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A pair in its own vsock directory (outer: `egress_relay` settings, inner: `egress` settings). */
async function pair(
  name: string,
  outer: Record<string, unknown>,
  inner: Record<string, unknown>,
): Promise<{ port: number; audit: string }> {
  const vsockDir = path.join(dir, name);
  fs.mkdirSync(vsockDir);
  const audit = path.join(dir, `${name}.audit`);
  sides.push(await startSide('outer', { egress_relay: outer, audit: { file: audit } }, vsockDir));
  const i = await startSide('inner', egressListener(inner), vsockDir);
  sides.push(i);
  return { port: i.port('egress'), audit };
}

async function lastAudit(file: string, n: number): Promise<AuditLine> {
  await eventually(`${n} audit lines in ${path.basename(file)}`, () => readAudit(file).length >= n);
  return readAudit(file)[n - 1]!;
}

const curl = (proxyPort: number, url: string) => run('curl', ['-sS', '-w', ' %{http_code}', '-x', `http://127.0.0.1:${proxyPort}`, url]);

test('the outer guard refuses loopback answers of the system resolver, unless the range is allowed', async () => {
  // A name whose answer no allowed range covers: the rebinding case the guard is for.
  const guarded = await pair('guarded', {}, { allow: ['localhost', `127.0.0.1:${serverPort === 1 ? 2 : 1}`] });
  const byName = await curl(guarded.port, `http://localhost:${serverPort}/`);
  assert.match(byName.stdout, / 403$/);
  assert.equal((await lastAudit(guarded.audit, 1)).reason, 'outer_guard_refused');
  // An address the enclave's policy names explicitly needs no outer setting (issue 9).
  const explicit = await pair('explicit', {}, { allow: ['127.0.0.1'] });
  const byIp = await curl(explicit.port, `http://127.0.0.1:${serverPort}/explicit`);
  assert.equal(byIp.stdout, `reached 127.0.0.1:${serverPort}/explicit 200`);
  assert.equal((await lastAudit(explicit.audit, 1)).reason, 'allowed_by_rule');

  const open = await pair('open', { allow_private: ['127.0.0.0/8', '::1/128'] }, { allow: ['127.0.0.1'] });
  const r = await curl(open.port, `http://127.0.0.1:${serverPort}/ip`);
  assert.equal(r.stdout, `reached 127.0.0.1:${serverPort}/ip 200`);
  const a = await lastAudit(open.audit, 1);
  assert.deepEqual([a.decision, a.dest_ip], ['allow', '127.0.0.1']);
});

test('IPv6 destinations, by literal and by a name that resolves to IPv6', async () => {
  const v6 = http.createServer((req, res) => res.end(`v6 ${req.headers.host}${req.url}`));
  await new Promise<void>((r) => v6.listen(0, '::1', r));
  const port = (v6.address() as net.AddressInfo).port;
  try {
    const hostsFile = path.join(dir, 'hosts-v6');
    fs.writeFileSync(hostsFile, '::1 six.test\n');
    const p = await pair('v6', { allow_private: ['::1/128'], hosts_file: hostsFile }, { allow: ['::1', 'six.test'] });
    const byLiteral = await curl(p.port, `http://[::1]:${port}/lit`);
    assert.equal(byLiteral.stdout, `v6 [::1]:${port}/lit 200`);
    const byName = await run('curl', [
      '-sS',
      '-w',
      ' %{http_code}',
      '--socks5-hostname',
      `127.0.0.1:${p.port}`,
      `http://six.test:${port}/name`,
    ]);
    assert.equal(byName.stdout, `v6 six.test:${port}/name 200`);
    const [lit, name] = [await lastAudit(p.audit, 1), await lastAudit(p.audit, 2)];
    assert.deepEqual([lit.dest_host, lit.dest_ip, name.dest_host, name.dest_ip, name.proto], ['::1', '::1', 'six.test', '::1', 'socks5']);
  } finally {
    v6.closeAllConnections();
    v6.close();
  }
});

const hasTinyproxy = spawnSync('tinyproxy', ['-v']).error === undefined;

test(
  'an upstream HTTP CONNECT proxy (tinyproxy) carries the tunnel',
  { skip: hasTinyproxy ? false : 'tinyproxy is not installed on this machine (.ci/run installs it)' },
  async () => {
    const tpPort = await freePort();
    const conf = path.join(dir, 'tinyproxy.conf');
    fs.writeFileSync(conf, `Port ${tpPort}\nListen 127.0.0.1\nAllow 127.0.0.1\nTimeout 30\nLogLevel Connect\nMaxClients 20\n`);
    const tp: ChildProcess = spawn('tinyproxy', ['-d', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    let tpLog = '';
    tp.stdout!.on('data', (c: Buffer) => {
      tpLog += c.toString();
    });
    tp.stderr!.on('data', (c: Buffer) => {
      tpLog += c.toString();
    });
    try {
      await waitForPort(tpPort);
      const viaProxy = await pair('tinyproxy', { upstream_proxy: { url: `http://127.0.0.1:${tpPort}` } }, { allow: ['127.0.0.1'] });
      const r = await curl(viaProxy.port, `http://127.0.0.1:${serverPort}/up`);
      assert.equal(r.stdout, `reached 127.0.0.1:${serverPort}/up 200`);
      assert.match(tpLog, new RegExp(`CONNECT 127\\.0\\.0\\.1:${serverPort}`));
      const ok = await lastAudit(viaProxy.audit, 1);
      // The proxy connected by name on the relay's behalf: no address to report.
      assert.deepEqual([ok.decision, ok.dest_ip], ['allow', null]);
      tp.kill();
      await new Promise((res) => tp.once('exit', res));
      const down = await curl(viaProxy.port, `http://127.0.0.1:${serverPort}/down`);
      assert.match(down.stdout, / 502$/);
      await eventually('audit of the failed attempt', () => readAudit(viaProxy.audit).some((l) => l.reason === 'upstream_proxy_failed'));
    } finally {
      if (tp.exitCode === null) tp.kill();
    }
  },
);

test("an upstream SOCKS5 proxy carries the tunnel (here: a second pair's SOCKS5 listener)", async () => {
  const hostsFile = path.join(dir, 'hosts');
  fs.writeFileSync(hostsFile, '127.0.0.1 backend.test\n');
  const corporate = await pair('corporate', { hosts_file: hostsFile }, { allow: ['backend.test'] });
  const chained = await pair(
    'chained',
    { upstream_proxy: { url: `socks5://127.0.0.1:${corporate.port}` } },
    { allow: ['backend.test', 'elsewhere.test'] },
  );
  const r = await curl(chained.port, `http://backend.test:${serverPort}/chain`);
  assert.equal(r.stdout, `reached backend.test:${serverPort}/chain 200`);
  const far = await lastAudit(corporate.audit, 1);
  assert.deepEqual([far.proto, far.dest_host, far.decision, far.dest_ip], ['socks5', 'backend.test', 'allow', '127.0.0.1']);
  // The corporate proxy's own policy refuses what it does not allow: the chain answers 502.
  const refused = await curl(chained.port, `http://elsewhere.test:${serverPort}/`);
  assert.match(refused.stdout, / 502$/);
  assert.equal((await lastAudit(corporate.audit, 2)).reason, 'not_in_allow_list');
});
