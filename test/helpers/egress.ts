/** Shared pieces of the egress integration tests: the pair as processes, a cert, real clients. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { stringify } from 'yaml';
import type { EgressAuditRecord } from '../../shared/audit/record.js';
import { egressListenerSpec } from '../../shared/config/egress.js';
import { Listener } from '../../shared/listener/listener.js';
import { parseAddress } from '../../shared/transport/index.js';
import type { EgressListenerSlice } from '../../proxy-inner/egress/context.js';
import { egressProxy } from '../../proxy-inner/egress/egress-proxy.js';
import { CLI } from './paths.js';

export { freePort } from './ports.js';
export { tempDir } from './process.js';

export interface Side {
  proc: ChildProcess;
  /** Bound addresses from the side's log lines, by listener name (`admin` for the admin endpoint). */
  addresses: Record<string, string>;
  /** The TCP port a listener bound (for `tcp://127.0.0.1:0`). */
  port(listener: string): number;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Run one side with the real CLI (`enclaver-proxy --config FILE`) on the emulated vsock dir
 * (outer CID 3, inner CID 16). `config` is the rest of the side's YAML; resolves once the side
 * logged that its parts listen.
 */
export function startSide(role: 'outer' | 'inner', config: Record<string, unknown>, vsockDir: string): Promise<Side> {
  const file = path.join(vsockDir, '..', `${role}-${Math.random().toString(36).slice(2)}.yaml`);
  const doc = {
    role,
    admin: { address: null },
    vsock: { emulation_dir: vsockDir, cid: role === 'outer' ? 3 : 16 },
    ...(role === 'outer' ? { enclave: { exit_with_app: false } } : {}),
    ...config,
  };
  fs.writeFileSync(file, stringify(doc));
  // ENCLAVER_SIDE_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR": profile both sides (npm run bench:egress).
  const nodeArgs = (process.env.ENCLAVER_SIDE_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const proc = spawn(process.execPath, [...nodeArgs, CLI, '--config', file], {
    env: { ...process.env, ENCLAVER_LOG_FORMAT: 'json', ENCLAVER_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const addresses: Record<string, string> = {};
  proc.stderr!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    await exited;
  };
  const side: Side = {
    proc,
    addresses,
    output: () => out,
    stop,
    port: (listener) => Number(/:([0-9]+)$/.exec(addresses[listener] ?? '')?.[1]),
  };
  // The inner is ready when its listeners are; the outer when its relay and collector are.
  const wanted =
    role === 'inner'
      ? ((config.listeners as Array<{ name: string }> | undefined) ?? []).map((l) => l.name)
      : ['egress relay listening', 'audit collector listening'];
  let buffered = '';
  return new Promise((resolve, reject) => {
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      buffered += c.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        let rec: { msg?: string; listener?: string; address?: string };
        try {
          rec = JSON.parse(line) as typeof rec;
        } catch {
          continue;
        }
        if (rec.msg === 'listening' && rec.listener && rec.address) addresses[rec.listener] = rec.address;
        if (rec.msg === 'admin endpoint listening' && rec.address) addresses.admin = rec.address;
        if (rec.msg && wanted.includes(rec.msg)) addresses[rec.msg] = 'yes';
      }
      if (wanted.every((w) => addresses[w] !== undefined)) resolve(side);
    });
    proc.once('exit', (code) => reject(new Error(`${role} exited with ${code} before it was ready:\n${out}`)));
  });
}

/** An inner egress listener on an ephemeral loopback port (the name is `egress`). */
export function egressListener(egress: Record<string, unknown>): Record<string, unknown> {
  return { listeners: [{ name: 'egress', address: 'tcp://127.0.0.1:0', egress: { connect_timeout: '3s', ...egress } }] };
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: 30_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** A throw-away self-signed certificate for the test names, made with openssl. */
export async function makeCert(dir: string, names: string[]): Promise<{ key: string; cert: string; certPath: string }> {
  const keyPath = path.join(dir, 'key.pem');
  const certPath = path.join(dir, 'cert.pem');
  const r = await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '1',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-subj',
    `/CN=${names[0]}`,
    '-addext',
    `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`,
  ]);
  if (r.code !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  return { key: fs.readFileSync(keyPath, 'utf8'), cert: fs.readFileSync(certPath, 'utf8'), certPath };
}

export interface AuditLine {
  seq: number;
  boot_id: string;
  type: string;
  [k: string]: unknown;
}

/** Every line of an audit file, the evidence (audit_boot, audit_checkpoint) included. */
export function readAuditLines(file: string): AuditLine[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as AuditLine);
}

/** The records about egress attempts (egress, audit_dropped), without the chain's evidence lines. */
export function readAudit(file: string): AuditLine[] {
  return readAuditLines(file).filter((l) => l.type === 'egress' || l.type === 'audit_dropped');
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port (bounded). */
export async function waitForPort(port: number, limitMs = 10_000): Promise<void> {
  const until = Date.now() + limitMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * An egress listener's config slice from raw YAML-shaped keys (`allow`, `protocols`,
 * `handshake_timeout`…), normalised by the real config code, for tests that build the kind
 * in-process.
 */
export function egressSlice(raw: Record<string, unknown>, idleTimeoutMs = 0): EgressListenerSlice {
  const problems: string[] = [];
  const filled = egressListenerSpec.fill(raw, { configDir: process.cwd(), role: 'inner' });
  const egress = egressListenerSpec.read(filled, [], {
    configDir: process.cwd(),
    role: 'inner',
    clusters: new Map(),
    problem: (p, m) => problems.push(`${p.join('.')}: ${m}`),
    claim: () => undefined,
    uses: () => {},
  });
  if (problems.length > 0) throw new Error(problems.join('\n'));
  return { name: 'egress', idleTimeoutMs, egress };
}

/**
 * The egress listener kind in this process on an ephemeral loopback port, relaying through the
 * Unix socket at `relayPath` (a relay stub) and pushing its audit records onto `records`.
 */
export async function startEgressListener(
  raw: Record<string, unknown>,
  relayPath: string,
  records: EgressAuditRecord[],
  maxConnections: number,
): Promise<Listener> {
  const listener = new Listener({
    name: 'egress',
    address: parseAddress('tcp://127.0.0.1:0'),
    maxConnections,
    handler: egressProxy(egressSlice(raw), { relay: parseAddress(`unix://${relayPath}`), audit: (r) => records.push(r) }),
  });
  await listener.start();
  return listener;
}
