/**
 * The whole pair over real AF_VSOCK: an outer and an inner process (the real CLI) on one kernel's
 * vsock loopback transport, both CID 1 (the inner's parent_cid and the outer's enclave.cid set
 * to 1). Runs inside the QEMU guest of `npm run test:vsock`; elsewhere it skips with the reason.
 *
 * Proves: ingress bytes intact both ways by SHA-256, egress CONNECT allowed and denied with their
 * audit records at the outer, the status, log and metrics channels, and that the native pump
 * spliced the vsock legs rather than copying them (from the pump-path counter of each side).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { activePump } from '../../../shared/pump/index.js';
import { readAudit, run } from '../../helpers/egress.js';
import { transfer } from '../../helpers/hash-client.js';
import { metricValue } from '../../helpers/pair.js';
import { FIXTURES } from '../../helpers/paths.js';
import { freePorts } from '../../helpers/ports.js';
import { runCli, runCliToEnd, tempDir, type Proc } from '../../helpers/process.js';
import { vsockLoopbackUnavailable } from '../../helpers/vsock-loopback.js';
import { eventually } from '../../helpers/eventually.js';

const unavailable = await vsockLoopbackUnavailable();
if (unavailable) console.log(`# skipping the pair over real vsock: ${unavailable}`);
const noSplice = activePump().kind !== 'native' ? 'the native pump is not active, so nothing can splice' : false;

/** Generous bounds: under QEMU's software emulation a CLI takes ~25 s to start. They wait, never measure. */
const START_MS = 300_000;
const SETTLE_MS = 120_000;
const LOOPBACK_CID = 1;

describe('the pair over real AF_VSOCK (loopback transport, both sides CID 1)', { skip: unavailable, timeout: 900_000 }, () => {
  const dir = tempDir('vm-pair-');
  const auditFile = path.join(dir, 'audit.log');
  const vport = 20000 + crypto.randomInt(30000);
  let outer: Proc;
  let inner: Proc;
  let ports: { web: number; egress: number; app: number; outerAdmin: number; innerAdmin: number; target: number };
  let target: http.Server;

  before(async () => {
    const [web, egress, app, outerAdmin, innerAdmin] = (await freePorts(5)) as [number, number, number, number, number];
    target = http.createServer((req, res) => res.end(`hello ${req.headers.host} ${req.url}`));
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    ports = { web, egress, app, outerAdmin, innerAdmin, target: (target.address() as net.AddressInfo).port };
    const hosts = path.join(dir, 'hosts');
    fs.writeFileSync(hosts, '127.0.0.1 allowed.test denied.test\n');
    const outerFile = path.join(dir, 'outer.yaml');
    fs.writeFileSync(
      outerFile,
      stringify({
        role: 'outer',
        admin: { address: `tcp://127.0.0.1:${outerAdmin}` },
        enclave: { cid: LOOPBACK_CID, exit_with_app: false },
        listeners: [{ name: 'web', address: `tcp://127.0.0.1:${web}`, cluster: 'enclave_web' }],
        clusters: [{ name: 'enclave_web', endpoints: [`vsock://${LOOPBACK_CID}:${vport}`] }],
        egress_relay: { hosts_file: hosts },
        audit: { file: auditFile },
      }),
    );
    const innerFile = path.join(dir, 'inner.yaml');
    fs.writeFileSync(
      innerFile,
      stringify({
        role: 'inner',
        admin: { address: `tcp://127.0.0.1:${innerAdmin}` },
        vsock: { parent_cid: LOOPBACK_CID },
        app: { command: [process.execPath, path.join(FIXTURES, 'apps/hash-app.mjs')], env: { PORT: String(app) } },
        listeners: [
          { name: 'web', address: `vsock://any:${vport}`, cluster: 'app' },
          {
            name: 'egress',
            address: `tcp://127.0.0.1:${egress}`,
            egress: { protocols: ['http_connect'], allow: ['allowed.test'], deny: ['denied.test'] },
          },
        ],
        clusters: [{ name: 'app', endpoints: [`tcp://127.0.0.1:${app}`] }],
      }),
    );
    outer = runCli(['--config', outerFile]);
    await outer.waitFor((r) => r.msg === 'listening' && r.listener === 'web', START_MS, 'the outer listening');
    inner = runCli(['--config', innerFile]);
    await inner.waitFor((r) => r.msg === 'listening' && r.listener === 'egress', START_MS, 'the inner listening');
    await eventually(
      'the app to listen',
      () => inner.stdout().includes('hash-app listening') || outer.stdout().includes('hash-app listening'),
      START_MS,
    );
  });

  after(async () => {
    await inner?.stop();
    await outer?.stop();
    target?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the status channel: the outer hears "running" from the enclave', async () => {
    const r = await outer.waitFor((x) => x.msg === 'enclave running', SETTLE_MS, 'enclave running');
    assert.equal((r.enclave_status as { state: string }).state, 'running');
  });

  it('ingress: 8 MiB each way through outer → vsock → inner → app, intact by SHA-256', async () => {
    const r = await transfer(ports.web, { up: 8 << 20, down: 8 << 20, seed: 42n });
    assert.deepEqual(r, { upIntact: true, downIntact: true, bytesReceived: (8 << 20) + 32 });
  });

  it('the vsock legs were spliced, not copied (pump-path counter of each side)', { skip: noSplice }, async () => {
    const series = 'enclaver_pumped_connections_total{listener="web",path="splice"}';
    for (const port of [ports.outerAdmin, ports.innerAdmin]) {
      const text = await metricsUntil(port, (t) => (metricValue(t, series) ?? 0) >= 1, `a spliced connection in :${port}/metrics`);
      assert.equal(metricValue(text, 'enclaver_pumped_connections_total{listener="web",path="copy"}') ?? 0, 0, text);
    }
  });

  it('egress: CONNECT to an allowed name is tunnelled through the relay and audited as allowed', async () => {
    const r = await run('curl', ['-sS', '-p', '-x', `http://127.0.0.1:${ports.egress}`, `http://allowed.test:${ports.target}/in`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `hello allowed.test:${ports.target} /in`);
    await eventually('the allowed audit record', () => readAudit(auditFile).some((a) => a.dest_host === 'allowed.test'), SETTLE_MS);
    const a = readAudit(auditFile).find((x) => x.dest_host === 'allowed.test')!;
    assert.deepEqual([a.decision, a.proto, a.reason, a.dest_ip], ['allow', 'http_connect', 'allowed_by_rule', '127.0.0.1']);
  });

  it('egress: CONNECT to a denied name gets 403 and is audited as denied', async () => {
    const r = await run('curl', ['-sS', '-v', '-p', '-x', `http://127.0.0.1:${ports.egress}`, `http://denied.test:${ports.target}/`]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /< HTTP\/1\.1 403/);
    await eventually('the denied audit record', () => readAudit(auditFile).some((a) => a.dest_host === 'denied.test'), SETTLE_MS);
    const a = readAudit(auditFile).find((x) => x.dest_host === 'denied.test')!;
    assert.deepEqual([a.decision, a.rule, a.reason], ['deny', 'denied.test', 'denied_by_rule']);
  });

  it("the log channel: the inner's own lines come out of the outer", async () => {
    const r = await outer.waitFor((x) => x.side === 'inner' && x.msg === 'listening', SETTLE_MS, 'a forwarded inner log line');
    assert.equal(r.side, 'inner');
  });

  it('doctor: the native pump splices a real vsock pair (loopback transport)', { skip: noSplice }, async () => {
    const r = await runCliToEnd(['doctor', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { spliceByTransport: { vsock: unknown } };
    assert.deepEqual(report.spliceByTransport.vsock, { result: 'checked', path: 'splice', bytes: 512 * 1024 });
  });

  it("the metrics channel: the outer serves the inner's metrics at /enclave/metrics", async () => {
    const res = await fetch(`http://127.0.0.1:${ports.outerAdmin}/enclave/metrics`);
    assert.equal(res.status, 200);
    // Only the inner has an egress listener.
    assert.match(await res.text(), /enclaver_connections_total\{listener="egress"\}/);
  });
});

/** /metrics of an admin port, fetched until `pred` holds (the pump reports a connection after its client saw the end). */
async function metricsUntil(port: number, pred: (text: string) => boolean, what: string): Promise<string> {
  const until = Date.now() + SETTLE_MS;
  for (;;) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    if (pred(text)) return text;
    if (Date.now() > until) throw new Error(`gave up waiting for ${what}:\n${text}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
