/**
 * Egress benchmark: HTTP CONNECT tunnel throughput and CONNECT handshakes per second through the
 * pair (app → inner egress listener → emulated vsock → outer relay → destination), against
 * tinyproxy as a plain one-hop CONNECT proxy and against no proxy at all, in one run.
 *
 *   npm run bench:egress [-- --mib 512 --runs 5 --handshakes 2000 --concurrency 16]
 *   ENCLAVER_NATIVE=0 npm run bench:egress     # the same with the JavaScript pump
 *   ENCLAVER_SIDE_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run bench:egress   # CPU profiles of both sides
 *
 * Every figure is the median of `--runs` runs, interleaved across the paths; the pair/tinyproxy
 * ratios are taken per run (median and range), and each proxy's CPU time per handshake (user +
 * system from /proc, every thread) is printed beside its rate: on a shared machine the rate moves
 * with whoever else has the cores, the CPU per handshake much less. Throughput is one tunnel downloading `--mib` MiB
 * from a loopback server (the bytes cross the pair once each way in user space with the JS
 * pump; the native pump replaces it when present). Handshakes/s is CONNECT + 200 + a 1-byte
 * exchange + close, with `--concurrency` clients in parallel; every pair handshake also makes a
 * policy decision and an audit record that the outer writes to a file. The pair's processes and
 * tinyproxy run on this machine with the client and the server, so all compete for the CPUs.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describePump } from '../shared/pump/index.js';
import { cpuSeconds, mainThreadCpuSeconds } from './lib/proc-stats.js';
import { itemAt } from '../shared/util/checked.js';
import { egressListener, freePort, readAudit, startSide, tempDir, waitForPort, type Side } from '../test/helpers/egress.js';
import { benchOptions } from './lib/options.js';

const {
  mib: MIB,
  runs: RUNS,
  handshakes: HANDSHAKES,
  concurrency: CONCURRENCY,
} = benchOptions('npm run bench:egress', 'CONNECT tunnel throughput and handshakes/s: the pair against tinyproxy and no proxy.', {
  mib: { default: 512, help: 'MiB downloaded through one tunnel per throughput run' },
  runs: { default: 5, help: 'runs per figure (the median is reported)' },
  handshakes: { default: 2000, help: 'CONNECT handshakes per handshake run' },
  concurrency: { default: 16, help: 'clients in parallel' },
});
const CHUNK = Buffer.alloc(256 * 1024, 0x61);

/** Destination: after one byte from the client, sends `mib` MiB (or echoes one byte for `h`). */
function startServer(): Promise<{ port: number; close: () => void }> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', (first: Buffer) => {
      if (first[0] === 0x68 /* h */) {
        s.end('h');
        return;
      }
      let left = MIB * 1024 * 1024;
      const pump = () => {
        while (left > 0) {
          const n = Math.min(left, CHUNK.length);
          left -= n;
          if (!s.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
            s.once('drain', pump);
            return;
          }
        }
        s.end();
      };
      pump();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close: () => server.close(),
      }),
    ),
  );
}

/** Open a tunnel (or a direct connection when proxyPort is 0) and send `first`. */
function open(proxyPort: number, target: number, first: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(proxyPort || target, '127.0.0.1');
    s.setNoDelay(true);
    s.once('error', reject);
    s.once('connect', () => {
      if (!proxyPort) {
        s.write(first);
        resolve(s);
        return;
      }
      s.write(`CONNECT 127.0.0.1:${target} HTTP/1.1\r\nHost: 127.0.0.1:${target}\r\n\r\n`);
      let head = '';
      const onData = (c: Buffer) => {
        head += c.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        s.off('data', onData);
        s.pause();
        if (!/^HTTP\/1\.[01] 200/.test(head)) {
          s.destroy();
          reject(new Error(`proxy answered ${head.split('\r\n')[0]}`));
          return;
        }
        const rest = Buffer.from(head.slice(end + 4), 'latin1');
        if (rest.length) s.unshift(rest);
        s.write(first);
        resolve(s);
      };
      s.on('data', onData);
    });
  });
}

async function throughput(proxyPort: number, target: number): Promise<number> {
  const s = await open(proxyPort, target, 'd');
  const started = process.hrtime.bigint();
  let bytes = 0;
  await new Promise<void>((resolve, reject) => {
    s.on('data', (c: Buffer) => {
      bytes += c.length;
    });
    s.once('end', () => resolve());
    s.once('error', reject);
    s.resume();
  });
  s.destroy();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (bytes !== MIB * 1024 * 1024) throw new Error(`received ${bytes} bytes, expected ${MIB} MiB`);
  return MIB / seconds;
}

/**
 * Handshakes/s, and CPU µs per handshake of each of `procs` over the run (user + system, from
 * /proc): all its threads, and its main thread alone.
 */
async function handshakes(
  proxyPort: number,
  target: number,
  procs: readonly number[],
): Promise<{ hps: number; cpuUs: number[]; mainUs: number[] }> {
  let next = 0;
  const cpuBefore = procs.map(cpuSeconds);
  const mainBefore = procs.map(mainThreadCpuSeconds);
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < HANDSHAKES) {
        next++;
        const s = await open(proxyPort, target, 'h');
        await new Promise<void>((resolve, reject) => {
          s.once('data', () => {
            s.end();
          });
          s.once('close', () => resolve());
          s.once('error', reject);
          s.resume();
        });
      }
    }),
  );
  const hps = HANDSHAKES / (Number(process.hrtime.bigint() - started) / 1e9);
  const perHandshake = (now: (pid: number) => number, before: number[]) =>
    procs.map((pid, i) => ((now(pid) - (before[i] ?? 0)) / HANDSHAKES) * 1e6);
  return { hps, cpuUs: perHandshake(cpuSeconds, cpuBefore), mainUs: perHandshake(mainThreadCpuSeconds, mainBefore) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

interface Tinyproxy {
  port: number;
  proc: ChildProcess;
}

/** A tinyproxy; with `upstream`, it sends every request (CONNECT included) on to that proxy. */
async function startTinyproxy(dir: string, name: string, upstream?: number): Promise<Tinyproxy> {
  const port = await freePort();
  const conf = path.join(dir, `${name}.conf`);
  fs.writeFileSync(
    conf,
    `Port ${port}\nListen 127.0.0.1\nAllow 127.0.0.1\nTimeout 60\nMaxClients ${CONCURRENCY * 4}\nLogLevel Critical\n` +
      (upstream === undefined ? '' : `Upstream http 127.0.0.1:${upstream}\n`),
  );
  const proc = spawn('tinyproxy', ['-d', '-c', conf], { stdio: 'ignore' });
  await waitForPort(port);
  return { port, proc };
}

/** A process whose CPU per handshake is reported; `node`: its main thread is reported too. */
interface Proc {
  name: string;
  pid: number;
  node: boolean;
}

function proc(name: string, p: ChildProcess, node: boolean): Proc[] {
  return p.pid === undefined ? [] : [{ name, pid: p.pid, node }];
}

async function main(): Promise<void> {
  const dir = tempDir('bench-egress-');
  const vsockDir = path.join(dir, 'vsock');
  fs.mkdirSync(vsockDir);
  const auditFile = path.join(dir, 'audit.log');
  const server = await startServer();
  const sides: Side[] = [];
  const tinies: Tinyproxy[] = [];
  try {
    const outer = await startSide('outer', { egress_relay: { allow_private: ['127.0.0.0/8'] }, audit: { file: auditFile } }, vsockDir);
    sides.push(outer);
    const inner = await startSide('inner', egressListener({ protocols: ['http_connect'], allow: ['127.0.0.1'] }), vsockDir);
    sides.push(inner);
    const hasTinyproxy = !spawnSync('tinyproxy', ['-v']).error;
    const rows: Array<{ name: string; port: number; procs: Proc[] }> = [{ name: 'direct (no proxy)', port: 0, procs: [] }];
    if (hasTinyproxy) {
      const tiny = await startTinyproxy(dir, 'tinyproxy');
      // Two C hops, as the pair has two: what any two-hop design pays for its second set of sockets.
      const second = await startTinyproxy(dir, 'tinyproxy-hop2');
      const first = await startTinyproxy(dir, 'tinyproxy-hop1', second.port);
      tinies.push(tiny, first, second);
      rows.push(
        { name: 'tinyproxy (1 hop)', port: tiny.port, procs: proc('tinyproxy', tiny.proc, false) },
        {
          name: 'tinyproxy → tinyproxy (2 hops)',
          port: first.port,
          procs: [...proc('hop 1', first.proc, false), ...proc('hop 2', second.proc, false)],
        },
      );
    }
    rows.push({
      name: 'enclaver-proxy pair',
      port: inner.port('egress'),
      procs: [...proc('inner', inner.proc, true), ...proc('outer', outer.proc, true)],
    });
    // Runs are interleaved across the paths (each run visits every path, in a rotated order), so a
    // change of load on a shared machine moves all of them alike; the ratios are taken per run.
    for (const row of rows) await throughput(row.port, server.port); // warm-up
    const samples = rows.map((row) => ({
      t: [] as number[],
      h: [] as number[],
      cpu: row.procs.map(() => [] as number[]),
      main: row.procs.map(() => [] as number[]),
    }));
    for (let i = 0; i < RUNS; i++) {
      for (let k = 0; k < rows.length; k++) {
        const j = (i + k) % rows.length;
        const row = itemAt(rows, j, 'row');
        const sample = itemAt(samples, j, 'sample');
        sample.t.push(await throughput(row.port, server.port));
        const r = await handshakes(
          row.port,
          server.port,
          row.procs.map((p) => p.pid),
        );
        sample.h.push(r.hps);
        r.cpuUs.forEach((us, p) => sample.cpu[p]?.push(us));
        r.mainUs.forEach((us, p) => sample.main[p]?.push(us));
      }
    }
    const results = rows.map((row, j) => {
      const sample = itemAt(samples, j, 'sample');
      return {
        ...row,
        mibps: median(sample.t),
        hps: median(sample.h),
        cpuUs: sample.cpu.map(median),
        mainUs: sample.main.map(median),
        runs: sample,
      };
    });
    process.stdout.write(
      `\nEgress CONNECT benchmark: ${MIB} MiB per tunnel, ${HANDSHAKES} handshakes at concurrency ${CONCURRENCY}, median of ${RUNS} runs\n`,
    );
    // The pair's processes pick their pump the same way this process does.
    process.stdout.write(`pump: ${describePump().summary}\n\n`);
    // CPU per handshake is the steadier figure on a shared machine: it does not depend on who got a core.
    process.stdout.write('| path | throughput MiB/s | handshakes/s | proxy CPU µs/handshake |\n|---|---:|---:|---|\n');
    for (const r of results) {
      const cpu =
        r.procs.length === 0
          ? '–'
          : r.procs
              .map((p, i) => {
                const main = p.node ? ` (main thread ${r.mainUs[i]?.toFixed(0)})` : '';
                return `${r.procs.length > 1 || p.node ? `${p.name} ` : ''}${r.cpuUs[i]?.toFixed(0)}${main}`;
              })
              .join(' + ');
      process.stdout.write(`| ${r.name} | ${r.mibps.toFixed(0)} | ${r.hps.toFixed(0)} | ${cpu} |\n`);
    }
    const pair = itemAt(results, results.length - 1, 'pair row');
    // Per run: the pair's figure over the baseline's from the same run; the median and the range.
    const ratios = (base: (typeof results)[number], of: (r: (typeof results)[number]) => number[]) => {
      const a = of(pair);
      const b = of(base);
      const rs = a.map((x, i) => x / (b[i] ?? Number.NaN));
      return `${median(rs).toFixed(2)}x (${Math.min(...rs).toFixed(2)}–${Math.max(...rs).toFixed(2)})`;
    };
    if (hasTinyproxy) {
      process.stdout.write('\n');
      for (const base of results.slice(1, 3))
        process.stdout.write(
          `pair / ${base.name}, per run: throughput ${ratios(base, (r) => r.runs.t)}, handshakes ${ratios(base, (r) => r.runs.h)}\n`,
        );
    } else process.stdout.write('\ntinyproxy is not installed (apt-get install tinyproxy): no baseline rows\n');
    process.stdout.write(`load average: ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`);
    const audited = readAudit(auditFile).length;
    process.stdout.write(`audit records written by the outer during the run: ${audited}\n`);
  } finally {
    for (const t of tinies) t.proc.kill();
    for (const s of sides.reverse()) await s.stop();
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
