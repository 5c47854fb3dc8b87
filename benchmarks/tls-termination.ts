/**
 * `npm run bench:tls`: TLS termination of a tcp_proxy listener, three terminators in one
 * invocation, same client, same upstream, same certificate (EC P-256, TLS 1.3 negotiated):
 *  - native: the fast path, TLS on the pump threads (native/src/stream/tls_stream.h);
 *  - js: ENCLAVER_FASTPATH=0, terminateTls + the JS pump;
 *  - haproxy: `mode tcp` with `bind … ssl crt`, one thread.
 * Measured per terminator: bulk throughput (BENCH_TLS_MIB MiB each way at once on one
 * connection), the terminator's CPU seconds per GB moved, full handshakes per second
 * (BENCH_TLS_HANDSHAKES connections, 8 at a time, no resumption) and its CPU per handshake.
 * The client (this process) is the same for all three, so the ratios compare terminators; on a
 * loaded 2-core machine the absolute numbers are low and the client is part of the bottleneck.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { cpuSeconds } from './lib/proc-stats.js';
import { freePort, sleep } from './lib/net.js';
import { start, stop, stopAll, type Tracked } from './lib/processes.js';

const MIB = 1024 * 1024;
const BYTES = Number(process.env.BENCH_TLS_MIB ?? 256) * MIB;
const HANDSHAKES = Number(process.env.BENCH_TLS_HANDSHAKES ?? 1000);
const CONCURRENCY = 8;
const children = path.join(path.dirname(fileURLToPath(import.meta.url)), 'children');

interface Figures {
  path: string;
  mibPerSecond: number;
  cpuSecondsPerGB: number;
  handshakesPerSecond: number;
  cpuMsPerHandshake: number;
}

function connect(port: number): tls.TLSSocket {
  const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, allowHalfOpen: true } as tls.ConnectionOptions);
  s.on('error', () => {});
  return s;
}

/** One connection: BYTES up and BYTES down at once; resolves with the seconds it took. */
async function bulk(port: number): Promise<number> {
  const s = connect(port);
  await new Promise((r) => s.once('secureConnect', r));
  const started = process.hrtime.bigint();
  let got = 0;
  s.on('data', (d: Buffer) => {
    got += d.length;
  });
  const ended = new Promise<void>((r) => s.once('end', () => r()));
  const chunk = Buffer.alloc(256 * 1024, 0x42);
  let sent = 0;
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      while (sent < BYTES) {
        const piece = chunk.subarray(0, Math.min(chunk.length, BYTES - sent));
        sent += piece.length;
        if (!s.write(piece)) return void s.once('drain', pump);
      }
      s.end();
      resolve();
    };
    pump();
  });
  await ended;
  s.destroy();
  if (got !== BYTES) throw new Error(`bulk: received ${got} bytes, expected ${BYTES}`);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** HANDSHAKES full handshakes, CONCURRENCY at a time; resolves with the seconds they took. */
async function handshakes(port: number): Promise<number> {
  let left = HANDSHAKES;
  const started = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    while (left-- > 0) {
      const s = connect(port);
      await new Promise<void>((resolve, reject) => {
        s.once('secureConnect', () => {
          s.end();
          s.resume();
        });
        s.once('close', () => resolve());
        s.once('error', reject);
      });
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function untilTls(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port);
      s.once('secureConnect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`no TLS on port ${port}`);
}

function readyLine(name: string, script: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Tracked> {
  return new Promise((resolve, reject) => {
    const t: Tracked = start(name, process.execPath, [path.join(children, script), ...args], {
      env: { ...process.env, ENCLAVER_LOG_LEVEL: 'warn', ...env },
      onLine: (line) => line === 'ready' && resolve(t),
    });
    void t.exited.then(() => reject(new Error(`${name} exited: ${t.output()}`)));
  });
}

async function measure(name: string, terminator: Tracked, port: number): Promise<Figures> {
  await untilTls(port);
  await bulk(port); // warm-up
  let cpu = cpuSeconds(terminator.pid);
  const seconds = await bulk(port);
  const bulkCpu = cpuSeconds(terminator.pid) - cpu;
  cpu = cpuSeconds(terminator.pid);
  const hsSeconds = await handshakes(port);
  const hsCpu = cpuSeconds(terminator.pid) - cpu;
  const moved = (2 * BYTES) / 1e9;
  return {
    path: name,
    mibPerSecond: (2 * BYTES) / MIB / seconds,
    cpuSecondsPerGB: bulkCpu / moved,
    handshakesPerSecond: HANDSHAKES / hsSeconds,
    cpuMsPerHandshake: (hsCpu * 1000) / HANDSHAKES,
  };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
    ],
    { stdio: 'ignore' },
  );
  const pem = path.join(dir, 'haproxy.pem');
  fs.writeFileSync(pem, fs.readFileSync(cert, 'utf8') + fs.readFileSync(key, 'utf8'));
  const load = os.loadavg();
  const upstreamPort = await freePort();
  const upstream = await readyLine('bulk-upstream', 'bulk-upstream.js', [String(upstreamPort), String(BYTES)]);
  const results: Figures[] = [];
  try {
    for (const [name, env] of [
      ['native', { ENCLAVER_FASTPATH: '1' }],
      ['js', { ENCLAVER_FASTPATH: '0' }],
    ] as const) {
      const port = await freePort();
      const t = await readyLine(`tls-${name}`, 'tls-terminator.js', [String(port), String(upstreamPort), cert, key], env);
      results.push(await measure(name, t, port));
      await stop(t);
    }
    const port = await freePort();
    const cfg = path.join(dir, 'haproxy.cfg');
    fs.writeFileSync(
      cfg,
      `global\n  nbthread 1\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1h\n  timeout server 1h\n` +
        `frontend tls\n  bind 127.0.0.1:${port} ssl crt ${pem} ssl-min-ver TLSv1.2\n  default_backend app\n` +
        `backend app\n  server app 127.0.0.1:${upstreamPort}\n`,
    );
    const h = start('haproxy-tls', 'haproxy', ['-db', '-f', cfg]);
    results.push(await measure('haproxy', h, port));
    await stop(h);
  } finally {
    await stop(upstream);
    await stopAll();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const haproxy = results.find((r) => r.path === 'haproxy')!;
  console.log(
    `TLS termination, ${BYTES / MIB} MiB each way, ${HANDSHAKES} handshakes; load average before: ${load.map((l) => l.toFixed(2)).join(' ')}, after: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log('path      MiB/s   ×haproxy  CPU s/GB  handshakes/s  ×haproxy  CPU ms/handshake');
  for (const r of results) {
    console.log(
      `${r.path.padEnd(8)} ${r.mibPerSecond.toFixed(0).padStart(6)} ${(r.mibPerSecond / haproxy.mibPerSecond).toFixed(2).padStart(9)} ${r.cpuSecondsPerGB.toFixed(2).padStart(9)} ${r.handshakesPerSecond.toFixed(0).padStart(13)} ${(r.handshakesPerSecond / haproxy.handshakesPerSecond).toFixed(2).padStart(9)} ${r.cpuMsPerHandshake.toFixed(2).padStart(17)}`,
    );
  }
}

await main();
