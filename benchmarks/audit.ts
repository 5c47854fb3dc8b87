/**
 * Audit benchmark: what the evidence costs (docs/audit.md).
 *
 *   npm run bench:audit [-- --records 50000 --handshakes 1500 --runs 3 --concurrency 16]
 *
 * 1. In one process: the chain per record (line + SHA-256), one checkpoint signature (ECDSA
 *    P-384), and records/s through a real sender → Unix socket → collector → file with a
 *    checkpoint every 1,000 records (the default), every 10, and none but the closing one (medians
 *    of `--runs`, each run starting with another configuration); then the verifier's lines/s.
 * 2. Through the pair (two CLI processes, emulated vsock): CONNECT handshakes/s with checkpoints
 *    every 1,000 records (default), after every record (worst case), and never (only the closing
 *    one), medians of `--runs`, the configurations interleaved so that load drifts hit all alike;
 *    with the inner's CPU time per handshake, which a loaded machine disturbs far less than the rate.
 *    The chain's hash cannot be switched off; its cost is the per-record figure of part 1.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chainLine, GENESIS_PREV, lineHash, signLine } from '../shared/audit/chain.js';
import type { EgressAuditRecord } from '../shared/audit/record.js';
import { verifyAuditLog } from '../shared/audit/verify.js';
import { parseAddress } from '../shared/transport/index.js';
import { AuditEvidence } from '../proxy-inner/audit/evidence.js';
import { AuditSender } from '../proxy-inner/audit/sender.js';
import { Nsm } from '../proxy-inner/nsm/nsm.js';
import { NsmSimulator } from '../proxy-inner/nsm/simulator.js';
import { AuditCollector } from '../proxy-outer/audit/collector.js';
import { egressListener, startSide, tempDir, type Side } from '../test/helpers/egress.js';
import { cpuSeconds } from './lib/proc-stats.js';
import { median } from './lib/stats.js';
import { benchOptions } from './lib/options.js';

const {
  records: RECORDS,
  handshakes: HANDSHAKES,
  runs: RUNS,
  concurrency: CONCURRENCY,
} = benchOptions('npm run bench:audit', 'Audit chain and checkpoint costs, and what signing costs CONNECT handshakes/s.', {
  records: { default: 50_000, help: 'records chained per run' },
  handshakes: { default: 1500, help: 'CONNECT handshakes per handshake run' },
  runs: { default: 3, help: 'runs per figure (the median is reported)' },
  concurrency: { default: 16, help: 'clients in parallel' },
});
const NEVER = 1_000_000_000;

const simulator = new NsmSimulator();
const nsm = new Nsm(simulator);

function record(n: number): EgressAuditRecord {
  const ts = new Date().toISOString();
  return {
    type: 'egress',
    ts,
    end_ts: ts,
    duration_ms: 12,
    conn_id: `a41f0c-${n}`,
    listener: 'egress',
    proto: 'http_connect',
    src: '127.0.0.1:51234',
    dest_host: 'kms.us-east-1.amazonaws.com',
    dest_port: 443,
    dest_ip: '52.94.1.17',
    sni: null,
    decision: 'allow',
    rule: 'kms.*.amazonaws.com:443',
    reason: 'allowed_by_rule',
    bytes_up: 1893,
    bytes_down: 6120,
    closed_by: 'downstream',
    close_error: null,
  };
}

function perOp(n: number, op: (i: number) => void): number {
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) op(i);
  return Number(process.hrtime.bigint() - started) / 1e3 / n;
}

/** Each run starts with another configuration, so that warm-up and load drifts favour none. */
function rotated<T>(xs: T[], run: number): T[] {
  const k = run % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

function microbench(): { chainUs: number; signMs: number } {
  let prev = GENESIS_PREV;
  const chainUs = perOp(RECORDS, (i) => {
    prev = lineHash(chainLine({ seq: i + 1, boot_id: 'b', prev }, record(i)));
  });
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const unsigned = chainLine(
    { seq: 1, boot_id: 'b', prev },
    { type: 'audit_checkpoint', ts: new Date().toISOString(), first_seq: 1, last_seq: 1000, closing: false },
  );
  const signMs = perOp(200, () => signLine(unsigned, privateKey)) / 1000;
  return { chainUs, signMs };
}

/** Records/s from emit to acknowledged-and-written, in bursts the sender's buffer holds. */
async function stream(checkpointEvery: number, file: string): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-audit-'));
  const address = parseAddress(`unix://${dir}/audit.sock`);
  const collector = new AuditCollector({ address, enclaveCid: 16, stdout: false, file: { path: file, maxBytes: 0, keep: 0 } });
  await collector.start();
  const sender = new AuditSender({
    address,
    maxBuffered: 10_000,
    evidence: new AuditEvidence(nsm),
    checkpoint: { records: checkpointEvery, intervalMs: 3_600_000 },
  });
  sender.start();
  const started = process.hrtime.bigint();
  for (let sent = 0; sent < RECORDS;) {
    const burst = Math.min(5000, RECORDS - sent);
    for (let i = 0; i < burst; i++) sender.emit(record(sent + i));
    sent += burst;
    await sender.drained();
  }
  sender.close();
  await sender.drained();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (sender.stats().droppedTotal > 0) throw new Error('records were dropped: the figure would be wrong');
  sender.stop();
  await collector.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  return RECORDS / seconds;
}

/** CONNECT handshakes/s through the pair's egress listener (CONNECT, 200, close). */
async function handshakes(proxyPort: number, target: number): Promise<number> {
  let next = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const s = net.connect(proxyPort, '127.0.0.1');
      s.setNoDelay(true);
      s.once('error', reject);
      s.once('connect', () => s.write(`CONNECT 127.0.0.1:${target} HTTP/1.1\r\nHost: 127.0.0.1:${target}\r\n\r\n`));
      s.once('data', (c: Buffer) => {
        if (!c.toString('latin1').startsWith('HTTP/1.1 200')) reject(new Error(`proxy answered ${c.toString('latin1').split('\r\n')[0]}`));
        s.end();
      });
      s.once('close', () => resolve());
    });
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < HANDSHAKES) {
        next++;
        await one();
      }
    }),
  );
  return HANDSHAKES / (Number(process.hrtime.bigint() - started) / 1e9);
}

interface PairRate {
  hps: number;
  /** The inner's CPU (user + system) per handshake: what signing adds, whatever else loads the machine. */
  innerCpuUs: number;
}

async function pairHandshakes(configs: Array<{ name: string; records: number }>): Promise<Map<string, PairRate>> {
  const dir = tempDir('bench-audit-pair-');
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.resume();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const target = (server.address() as net.AddressInfo).port;
  const runs = new Map<string, PairRate[]>(configs.map((c) => [c.name, []]));
  try {
    for (let run = 0; run < RUNS; run++) {
      for (const c of rotated(configs, run)) {
        const vsockDir = path.join(dir, `${c.name}-${run}`.replace(/[^a-z0-9-]/gi, '_'), 'vsock');
        fs.mkdirSync(vsockDir, { recursive: true });
        const sides: Side[] = [];
        try {
          sides.push(
            await startSide(
              'outer',
              { egress_relay: { allow_private: ['127.0.0.0/8'] }, audit: { file: path.join(vsockDir, '..', 'audit.log') } },
              vsockDir,
            ),
          );
          const inner = await startSide(
            'inner',
            {
              ...egressListener({ protocols: ['http_connect'], allow: ['127.0.0.1'] }),
              audit: { checkpoint: { records: c.records } },
              nsm: { mode: 'simulator' },
            },
            vsockDir,
          );
          sides.push(inner);
          await handshakes(inner.port('egress'), target); // warm-up
          const cpuBefore = cpuSeconds(inner.proc.pid!);
          const hps = await handshakes(inner.port('egress'), target);
          runs.get(c.name)!.push({ hps, innerCpuUs: ((cpuSeconds(inner.proc.pid!) - cpuBefore) * 1e6) / HANDSHAKES });
        } finally {
          for (const s of sides.reverse()) await s.stop();
        }
      }
    }
  } finally {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return new Map([...runs].map(([k, v]) => [k, { hps: median(v.map((r) => r.hps)), innerCpuUs: median(v.map((r) => r.innerCpuUs)) }]));
}

async function main(): Promise<void> {
  const dir = tempDir('bench-audit-');
  try {
    const { chainUs, signMs } = microbench();
    process.stdout.write(
      `\nAudit benchmark: ${RECORDS} records; ${HANDSHAKES} handshakes at concurrency ${CONCURRENCY}, median of ${RUNS} runs\n\n`,
    );
    process.stdout.write(`machine load average (1 min): ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} CPUs\n`);
    process.stdout.write(`chain per record (JSON line + SHA-256): ${chainUs.toFixed(2)} µs\n`);
    process.stdout.write(`one checkpoint signature (ECDSA P-384): ${signMs.toFixed(2)} ms\n\n`);
    process.stdout.write('| sender → collector → file | records/s |\n|---|---:|\n');
    const file = path.join(dir, 'audit.log');
    const streams = [
      { name: 'checkpoint every 1,000 (default)', every: 1000 },
      { name: 'checkpoint every 10', every: 10 },
      { name: 'closing checkpoint only', every: NEVER },
    ];
    const streamRates = new Map<string, number[]>(streams.map((c) => [c.name, []]));
    for (let run = 0; run < RUNS; run++) {
      for (const c of rotated(streams, run)) {
        fs.rmSync(file, { force: true });
        streamRates.get(c.name)!.push(await stream(c.every, file));
      }
    }
    for (const [name, rates] of streamRates) process.stdout.write(`| ${name} | ${median(rates).toFixed(0)} |\n`);
    const text = fs.readFileSync(file, 'utf8');
    const started = process.hrtime.bigint();
    const verified = verifyAuditLog([{ name: 'audit.log', text }], { root: simulator.rootPem });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (!verified.ok) throw new Error(`the benchmark's own log did not verify: ${verified.failure.message}`);
    process.stdout.write(`\naudit verify: ${(verified.summary.lines / seconds).toFixed(0)} lines/s (${verified.summary.lines} lines)\n\n`);

    const rates = await pairHandshakes([
      { name: 'checkpoint every 1,000 (default)', records: 1000 },
      { name: 'every record signed', records: 1 },
      { name: 'closing checkpoint only', records: NEVER },
    ]);
    process.stdout.write('| CONNECT through the pair | handshakes/s | inner CPU µs per handshake |\n|---|---:|---:|\n');
    for (const [name, r] of rates) process.stdout.write(`| ${name} | ${r.hps.toFixed(0)} | ${r.innerCpuUs.toFixed(0)} |\n`);
    const base = rates.get('closing checkpoint only')!;
    const dflt = rates.get('checkpoint every 1,000 (default)')!;
    process.stdout.write(
      `\ndefault checkpoints vs none: ${(((dflt.hps - base.hps) / base.hps) * 100).toFixed(1)}% handshakes/s (wall clock, load-sensitive), ` +
        `${(((dflt.innerCpuUs - base.innerCpuUs) / base.innerCpuUs) * 100).toFixed(1)}% inner CPU per handshake\n`,
    );
    process.stdout.write(
      `signing at the default, computed: ${((signMs * 1000) / 1000).toFixed(1)} µs per record (one ${signMs.toFixed(2)} ms signature per 1,000) ` +
        `= ${(((signMs * 1000) / 1000 / base.innerCpuUs) * 100).toFixed(2)}% of the inner's CPU per handshake\n`,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
