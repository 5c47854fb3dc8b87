/**
 * The ready line means what it says: once `inner proxy ready` / `outer proxy ready` is out, every
 * listener, the admin endpoint and the side's own channels accept a connection at the first
 * attempt (no retry: a line printed before a bind would show as a refused connection here), and
 * every `listening` line came before it. Supervisors, the benchmark (benchmarks/startup.ts) and
 * people wait for this line, so it must never run ahead of the sockets.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { PairPort } from '../../shared/wire/ports.js';
import { freePorts } from '../helpers/ports.js';
import { runCli, tempDir, writeConfig, type Proc } from '../helpers/process.js';

const dir = tempDir();
const vsock = path.join(dir, 'vsock');
let ports: number[];
const procs: Proc[] = [];

before(async () => {
  fs.mkdirSync(vsock);
  ports = await freePorts(4);
});
after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  fs.rmSync(dir, { recursive: true, force: true });
});

type Target = { port: number } | { path: string };

/** One connection attempt, no retry: true when it was accepted. */
function acceptsAtOnce(target: Target): Promise<boolean> {
  return new Promise((resolve) => {
    const s = 'port' in target ? net.connect({ host: '127.0.0.1', port: target.port }) : net.connect({ path: target.path });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function checkReady(p: Proc, message: string, listeners: number, targets: Target[]): Promise<void> {
  const ready = await p.waitFor((r) => r.msg === message, 30_000, message);
  for (const t of targets) assert.ok(await acceptsAtOnce(t), `${JSON.stringify(t)} accepts once "${message}" is out`);
  assert.equal(ready.listeners, listeners);
  assert.equal(typeof ready.startup_ms, 'number');
  const records = p.records();
  const readyAt = records.findIndex((r) => r.msg === message);
  const listening = records.map((r, i) => ({ r, i })).filter(({ r }) => r.msg === 'listening' || r.msg === 'admin endpoint listening');
  assert.equal(listening.length, listeners + 1, 'each listener and the admin endpoint said so');
  for (const { r, i } of listening) assert.ok(i < readyAt, `${String(r.listener ?? 'admin')} was listening before the ready line`);
  assert.equal(records.filter((r) => r.msg === message).length, 1, 'said once');
}

test('outer: listeners, admin, egress relay and collectors accept when "outer proxy ready" is logged', async () => {
  const [admin, web] = ports as [number, number];
  const config = writeConfig(
    dir,
    'outer.yaml',
    `role: outer
admin: { address: tcp://127.0.0.1:${admin} }
vsock: { emulation_dir: ${vsock} }
egress_relay: {}
listeners:
  - { name: web, address: tcp://127.0.0.1:${web}, cluster: enclave }
clusters:
  - { name: enclave, endpoints: [vsock://16:8080] }
`,
  );
  const outer = runCli(['--config', config]);
  procs.push(outer);
  const parent = (port: number) => ({ path: path.join(vsock, `3_${port}.sock`) });
  await checkReady(outer, 'outer proxy ready', 1, [
    { port: admin },
    { port: web },
    parent(PairPort.Status),
    parent(PairPort.Logs),
    parent(PairPort.Egress),
    parent(PairPort.Audit),
    parent(PairPort.Clock),
  ]);
});

test('inner: listeners, admin and the metrics channel accept when "inner proxy ready" is logged', async () => {
  const [, , admin, egress] = ports as [number, number, number, number];
  const config = writeConfig(
    dir,
    'inner.yaml',
    `role: inner
admin: { address: tcp://127.0.0.1:${admin} }
vsock: { emulation_dir: ${vsock} }
listeners:
  - { name: web, address: "vsock://any:8080", proxy_protocol: v2, cluster: app }
  - name: egress
    address: tcp://127.0.0.1:${egress}
    egress: { allow: [example.com:443] }
clusters:
  - { name: app, endpoints: [tcp://127.0.0.1:8080] }
`,
  );
  const inner = runCli(['--config', config]);
  procs.push(inner);
  const own = (port: number) => ({ path: path.join(vsock, `16_${port}.sock`) });
  await checkReady(inner, 'inner proxy ready', 2, [{ port: admin }, { port: egress }, own(8080), own(PairPort.Metrics)]);
});
