/**
 * The outer is killed (SIGKILL) while a tunnel is open and records are in flight, the app keeps
 * trying destinations while it is gone, and a new outer comes up on the same audit file: every
 * attempt of the run must be in the file exactly once, numbered without a gap.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { egressListener, readAudit, readAuditLines, run, startSide, tempDir, type Side } from '../helpers/egress.js';
import { eventually } from '../helpers/eventually.js';

const dir = tempDir('egress-restart-');
const vsockDir = path.join(dir, 'vsock');
const auditFile = path.join(dir, 'audit.log');
const hostsFile = path.join(dir, 'hosts');
let outer: Side | undefined;
let inner: Side | undefined;
let server: http.Server;
let serverPort = 0;
let proxyPort = 0;
const outerConfig = { egress_relay: { hosts_file: hostsFile }, audit: { file: auditFile } };

before(async () => {
  fs.mkdirSync(vsockDir);
  server = http.createServer((req, res) => res.end(`ok ${req.url}`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  serverPort = (server.address() as net.AddressInfo).port;
  fs.writeFileSync(hostsFile, '127.0.0.1 app.test blocked.test\n');
  outer = await startSide('outer', outerConfig, vsockDir);
  inner = await startSide(
    'inner',
    egressListener({ protocols: ['http', 'http_connect'], allow: ['app.test'], deny: ['blocked.test'] }),
    vsockDir,
  );
  proxyPort = inner.port('egress');
});

after(async () => {
  await inner?.stop();
  await outer?.stop();
  server.closeAllConnections();
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function curlStatus(host: string, p: string): Promise<string> {
  return run('curl', [
    '-sS',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    '-x',
    `http://127.0.0.1:${proxyPort}`,
    `http://${host}:${serverPort}${p}`,
  ]).then((r) => r.stdout);
}

/** A CONNECT tunnel held open through the pair, with one exchange done through it. */
async function openTunnel(): Promise<net.Socket> {
  const s = net.connect(proxyPort, '127.0.0.1');
  s.on('error', () => {});
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write(`CONNECT app.test:${serverPort} HTTP/1.1\r\nHost: app.test:${serverPort}\r\n\r\nGET /tunnel HTTP/1.1\r\nHost: app.test\r\n\r\n`);
  let got = '';
  await new Promise<void>((resolve) =>
    s.on('data', (c: Buffer) => {
      got += c.toString();
      if (got.includes('ok /tunnel')) resolve();
    }),
  );
  assert.match(got, /^HTTP\/1\.1 200 Connection Established\r\n\r\nHTTP\/1\.1 200 OK/);
  return s;
}

test('an outer restart mid-stream loses no audit record and duplicates none', async () => {
  const expected: Array<[string, string]> = [];
  for (let i = 0; i < 5; i++) {
    assert.equal(await curlStatus('app.test', `/a${i}`), '200');
    expected.push(['app.test', 'allowed_by_rule']);
    assert.equal(await curlStatus('blocked.test', `/b${i}`), '403');
    expected.push(['blocked.test', 'denied_by_rule']);
  }
  const tunnel = await openTunnel();
  const tunnelClosed = new Promise<void>((r) => tunnel.once('close', () => r()));

  await outer!.stop('SIGKILL');
  outer = undefined;
  // The tunnel dies with the outer and is audited while the outer is away.
  await tunnelClosed;
  expected.push(['app.test', 'allowed_by_rule']);
  for (let i = 0; i < 4; i++) {
    assert.equal(await curlStatus('app.test', `/c${i}`), '502');
    expected.push(['app.test', 'relay_unavailable']);
    assert.equal(await curlStatus('blocked.test', `/d${i}`), '403');
    expected.push(['blocked.test', 'denied_by_rule']);
  }

  outer = await startSide('outer', outerConfig, vsockDir);
  for (let i = 0; i < 3; i++) {
    assert.equal(await curlStatus('app.test', `/e${i}`), '200');
    expected.push(['app.test', 'allowed_by_rule']);
  }

  await eventually(`${expected.length} audit lines`, () => readAudit(auditFile).length >= expected.length);
  const lines = readAudit(auditFile);
  assert.equal(lines.length, expected.length, 'no duplicate after the restart');
  const all = readAuditLines(auditFile);
  assert.equal(all[0]!.type, 'audit_boot');
  assert.deepEqual(
    all.map((l) => l.seq),
    all.map((_, i) => i + 1),
    'no gap',
  );
  assert.equal(new Set(lines.map((l) => l.boot_id)).size, 1);
  assert.equal(new Set(lines.map((l) => l.conn_id)).size, lines.length);
  assert.ok(
    lines.every((l) => l.type === 'egress'),
    'nothing was dropped',
  );
  const count = (rows: Array<[string, string]>) => {
    const m = new Map<string, number>();
    for (const [h, r] of rows) m.set(`${h} ${r}`, (m.get(`${h} ${r}`) ?? 0) + 1);
    return Object.fromEntries([...m].sort());
  };
  assert.deepEqual(count(lines.map((l) => [String(l.dest_host), String(l.reason)])), count(expected));
});

test('records beyond the inner buffer while the outer is away become one audit_dropped record', async () => {
  const dropDir = path.join(dir, 'drop');
  const dropVsock = path.join(dropDir, 'vsock');
  fs.mkdirSync(dropVsock, { recursive: true });
  const dropAudit = path.join(dropDir, 'audit.log');
  const config = { egress_relay: { hosts_file: hostsFile }, audit: { file: dropAudit } };
  let o: Side | undefined = await startSide('outer', config, dropVsock);
  const i = await startSide(
    'inner',
    { audit: { buffer_records: 3 }, ...egressListener({ protocols: ['http'], allow: [], deny: [] }) },
    dropVsock,
  );
  try {
    const port = i.port('egress');
    const attempt = (n: number) =>
      run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-x', `http://127.0.0.1:${port}`, `http://app.test:${serverPort}/${n}`]);
    assert.equal((await attempt(1)).stdout, '403');
    await eventually('first record', () => readAudit(dropAudit).length === 1);
    await o.stop('SIGKILL');
    o = undefined;
    // Three records fit in the buffer (four if the first one's acknowledgement was lost with the
    // outer); the rest are dropped and counted.
    for (let n = 2; n <= 9; n++) assert.equal((await attempt(n)).stdout, '403');
    o = await startSide('outer', config, dropVsock);
    await eventually('the drop notice', () => readAudit(dropAudit).some((l) => l.type === 'audit_dropped'));
    const before = readAudit(dropAudit).length;
    assert.equal((await attempt(10)).stdout, '403');
    await eventually('the last record', () => readAudit(dropAudit).length === before + 1);
    const lines = readAudit(dropAudit);
    const all = readAuditLines(dropAudit);
    assert.deepEqual(
      all.map((l) => l.seq),
      all.map((_, k) => k + 1),
      'no gap, no duplicate',
    );
    const dropped = all.filter((l) => l.type === 'audit_dropped');
    assert.equal(dropped.length, 1);
    // After the boot record and the records that fit in the buffer.
    assert.ok(all.indexOf(dropped[0]!) >= 3 && all.indexOf(dropped[0]!) === all.length - 2, 'in place of the records it stands for');
    // Every attempt is either a line of its own or inside the count.
    assert.equal(lines.filter((l) => l.type === 'egress').length + (dropped[0]!.count as number), 10);
  } finally {
    await i.stop();
    await o?.stop();
  }
});
