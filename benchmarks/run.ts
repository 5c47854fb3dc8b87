/**
 * `npm run bench [-- options]`: throughput, CPU per GB, latency, connection rate and idle-tunnel
 * memory of the pair against direct loopback and two-hop socat / HAProxy chains, all in one run
 * on one machine. See benchmarks/README.md.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from './lib/net.js';
import { fdLimit, start, stop, stopAll, type Tracked } from './lib/processes.js';
import { median } from './lib/stats.js';
import { directPath } from './paths/direct.js';
import { haproxyPath } from './paths/haproxy.js';
import { pairPath } from './paths/pair.js';
import { socatPath } from './paths/socat.js';
import { which } from './paths/binaries.js';
import type { PathDefinition, RunningPath, Targets } from './paths/types.js';
import { renderChart } from './report/chart.js';
import { renderTables } from './report/table.js';
import { checkTargets } from './report/targets.js';
import type { BenchmarkReport, PathResult, PipeSizeResult } from './report/types.js';
import { runBulk } from './workloads/bulk.js';
import { runConnRate } from './workloads/conn-rate.js';
import { runIdleTunnels, type IdleTunnelsResult } from './workloads/idle-tunnels.js';
import { runLatency } from './workloads/latency.js';
import { renderHttpTable, runHttpSection, type HttpSectionReport } from './http-section.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ECHO_SERVER = path.join(HERE, 'children', 'echo-server.js');

const HELP = `Usage: npm run bench -- [options]

Paths: direct, pair-native, pair-js, socat-2hop, haproxy-2hop (a path whose program is missing
is skipped with the reason printed); opt-in with --only: pair-native-js-accept (listeners accept
in JS), pair-native-2threads (two pump threads). Every figure is the median of --trials trials.
HTTP paths (workload http, wrk keep-alive): direct-http, pair-http, pair-https, haproxy-http,
haproxy-https, nginx-http; opt-in with --only: pair-http-js (the inner's http listener in JS,
ENCLAVER_FASTPATH=0: the figure before the native HTTP engine), haproxy-http-shared (both HAProxy
processes in the runner's session; haproxy-http's second one has its own, as the pair's inner).

Options:
  --quick              shorter run: 3 trials of 2 s, 2000 idle tunnels
  --trials N           trials per figure (default 5)
  --seconds S          iperf3 seconds per bulk trial (default 5)
  --tunnels N          idle tunnels for the memory test (default 10000; 0 skips it)
  --only a,b           only these paths
  --workloads a,b      only these of: bulk, latency, connections, memory, http (default: all)
  --http-connections N wrk connections for the http section (default 32)
  --conn-concurrency N connection loops of the connections workload (default 32: a saturated
                       machine, whose new-conn p99 is mostly queueing; 1: one fresh connection
                       at a time, the latency one SDK request on a new tunnel sees)
  --http-warmup S      seconds of load per http path before measuring (default 10, quick 5)
  --baseline-tree DIR  also run pair-native-base: the pair of another built checkout (main's,
                       say), for before/after ratios in one invocation
  --pipe-sizes a,b     also measure pair-native bulk throughput with these pipe sizes (bytes)
  --json FILE          write the results as JSON
  --svg FILE           where to write the chart (default benchmarks/results/bench.svg)
  -h, --help
`;

const WORKLOADS = ['bulk', 'latency', 'connections', 'memory', 'http'] as const;
type Workload = (typeof WORKLOADS)[number];

function parseWorkloads(text: string | undefined): Set<Workload> {
  if (text === undefined) return new Set(WORKLOADS);
  const names = text.split(',').map((w) => w.trim());
  for (const n of names)
    if (!(WORKLOADS as readonly string[]).includes(n)) throw new Error(`unknown workload "${n}" (${WORKLOADS.join(', ')})`);
  return new Set(names as Workload[]);
}

interface Settings {
  trials: number;
  seconds: number;
  tunnels: number;
  /** What was asked for; `tunnels` may be lower when the fd limit cannot be raised. */
  tunnelsWanted: number;
  latencyIterations: number;
  latencyWarmup: number;
  connRateMs: number;
  connRateConcurrency: number;
  only: string[] | null;
  workloads: Set<Workload>;
  pipeSizes: number[];
  baselineTree: string | undefined;
  httpConnections: number;
  httpWarmup: number;
  json: string | undefined;
  svg: string;
}

function positive(text: string | undefined, name: string, fallback: number, allowZero = false): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1))
    throw new Error(`--${name} wants a ${allowZero ? 'non-negative' : 'positive'} integer, not "${text}"`);
  return n;
}

function parseSettings(argv: string[]): Settings | null {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean' },
      trials: { type: 'string' },
      seconds: { type: 'string' },
      tunnels: { type: 'string' },
      only: { type: 'string' },
      workloads: { type: 'string' },
      'pipe-sizes': { type: 'string' },
      'baseline-tree': { type: 'string' },
      'http-connections': { type: 'string' },
      'conn-concurrency': { type: 'string' },
      'http-warmup': { type: 'string' },
      json: { type: 'string' },
      svg: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return null;
  const quick = values.quick === true;
  return {
    trials: positive(values.trials, 'trials', quick ? 3 : 5),
    seconds: positive(values.seconds, 'seconds', quick ? 2 : 5),
    tunnels: positive(values.tunnels, 'tunnels', quick ? 2000 : 10000, true),
    tunnelsWanted: positive(values.tunnels, 'tunnels', quick ? 2000 : 10000, true),
    latencyIterations: quick ? 2000 : 5000,
    latencyWarmup: quick ? 200 : 500,
    connRateMs: quick ? 1000 : 3000,
    connRateConcurrency: positive(values['conn-concurrency'], 'conn-concurrency', 32),
    only: values.only ? values.only.split(',').map((s) => s.trim()) : null,
    workloads: parseWorkloads(values.workloads),
    pipeSizes: values['pipe-sizes'] ? values['pipe-sizes'].split(',').map((s) => positive(s.trim(), 'pipe-sizes', 0)) : [],
    baselineTree: values['baseline-tree'] === undefined ? undefined : path.resolve(values['baseline-tree']),
    httpConnections: positive(values['http-connections'], 'http-connections', 32),
    httpWarmup: positive(values['http-warmup'], 'http-warmup', quick ? 5 : 10, true),
    json: values.json,
    svg: values.svg ?? path.join(HERE, '..', '..', 'benchmarks', 'results', 'bench.svg'),
  };
}

/** Every proxy process holds two fds per tunnel (its downstream and upstream legs). */
const FDS_PER_TUNNEL = 2;
/** fds a proxy holds with no tunnel open (listeners, epoll, pipes, logs), with a margin. */
const FD_HEADROOM = 512;

/** fds each proxy may need: two per tunnel plus headroom, within what the kernel allows. */
function wantedNofile(tunnels: number): number {
  let max = 1048576;
  try {
    max = Number(fs.readFileSync('/proc/sys/fs/nr_open', 'utf8').trim()) || max;
  } catch {
    /* not Linux: use the default */
  }
  return Math.min(max, Math.max(65536, tunnels * FDS_PER_TUNNEL + FD_HEADROOM));
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

async function startServers(workNofile: number): Promise<{ targets: Targets; servers: Tracked[] }> {
  const servers: Tracked[] = [];
  const echoPort = await freePort();
  await new Promise<void>((resolve, reject) => {
    const echo = start('echo-server', process.execPath, [ECHO_SERVER, String(echoPort)], {
      nofile: workNofile,
      onLine: (l) => {
        if (l === 'ready') resolve();
      },
    });
    servers.push(echo);
    void echo.exited.then(() => reject(new Error(`echo server exited: ${echo.output()}`)));
  });
  let bulkPort: number | undefined;
  if (which('iperf3')) {
    bulkPort = await freePort();
    const port = bulkPort;
    await new Promise<void>((resolve, reject) => {
      const iperf = start('iperf3-server', 'iperf3', ['-s', '-B', '127.0.0.1', '-p', String(port), '--forceflush'], {
        onLine: (l) => {
          if (l.includes('Server listening')) resolve();
        },
      });
      servers.push(iperf);
      void iperf.exited.then(() => reject(new Error(`iperf3 server exited: ${iperf.output()}`)));
    });
  }
  return { targets: { echoPort, bulkPort }, servers };
}

function emptyResult(name: string): PathResult {
  return {
    name,
    gbps: null,
    cpu_s_per_gb: null,
    p50_us: null,
    p99_us: null,
    conns_per_s: null,
    conn_p99_us: null,
    cpu_us_per_conn: null,
    trials: { gbps: [], cpu_s_per_gb: [], p50_us: [], p99_us: [], conns_per_s: [], conn_p99_us: [], cpu_us_per_conn: [] },
  };
}

function finish(r: PathResult): PathResult {
  const m = (xs: number[]) => (xs.length > 0 ? median(xs) : null);
  return {
    ...r,
    gbps: m(r.trials.gbps),
    cpu_s_per_gb: m(r.trials.cpu_s_per_gb),
    p50_us: m(r.trials.p50_us),
    p99_us: m(r.trials.p99_us),
    conns_per_s: m(r.trials.conns_per_s),
    conn_p99_us: m(r.trials.conn_p99_us),
    cpu_us_per_conn: m(r.trials.cpu_us_per_conn),
  };
}

async function measurePaths(running: RunningPath[], s: Settings): Promise<PathResult[]> {
  const results = new Map(running.map((p) => [p.name, emptyResult(p.name)]));
  // Trials are interleaved across paths, so a slow drift of the machine hits every path alike.
  for (let t = 1; t <= s.trials && s.workloads.has('bulk'); t++) {
    for (const p of running) {
      if (p.bulkPort === undefined) continue;
      const r = await runBulk(p, s.seconds);
      results.get(p.name)!.trials.gbps.push(r.gbps);
      if (p.name !== 'direct') results.get(p.name)!.trials.cpu_s_per_gb.push(r.cpuSecondsPerGB);
      log(`bulk ${t}/${s.trials} ${p.name}: ${r.gbps.toFixed(2)} Gbit/s, ${r.cpuSecondsPerGB.toFixed(3)} CPU s/GB`);
    }
  }
  for (let t = 1; t <= s.trials && s.workloads.has('latency'); t++) {
    for (const p of running) {
      const r = await runLatency(p.echoPort, s.latencyIterations, s.latencyWarmup);
      results.get(p.name)!.trials.p50_us.push(r.p50us);
      results.get(p.name)!.trials.p99_us.push(r.p99us);
      log(`latency ${t}/${s.trials} ${p.name}: p50 ${r.p50us.toFixed(1)} µs, p99 ${r.p99us.toFixed(1)} µs`);
    }
  }
  for (let t = 1; t <= s.trials && s.workloads.has('connections'); t++) {
    for (const p of running) {
      const cpuBefore = p.proxyCpuSeconds();
      const r = await runConnRate(p.echoPort, s.connRateMs, s.connRateConcurrency);
      // CPU of the relaying processes per connection: less sensitive to a busy machine than conn/s.
      const cpuUs = p.name === 'direct' || r.completed === 0 ? null : ((p.proxyCpuSeconds() - cpuBefore) * 1e6) / r.completed;
      const trials = results.get(p.name)!.trials;
      trials.conns_per_s.push(r.connsPerSecond);
      trials.conn_p99_us.push(r.p99us);
      if (cpuUs !== null) trials.cpu_us_per_conn.push(cpuUs);
      log(
        `connections ${t}/${s.trials} ${p.name}: ${r.connsPerSecond.toFixed(0)}/s, fresh-connection request p99 ${r.p99us.toFixed(0)} µs` +
          `${cpuUs !== null ? `, ${cpuUs.toFixed(0)} proxy CPU µs/conn` : ''}${r.failures ? ` (${r.failures} failed)` : ''}`,
      );
    }
  }
  return running.map((p) => finish(results.get(p.name)!));
}

async function measurePipeSizes(targets: Targets, s: Settings, workDir: string, nofile: number): Promise<PipeSizeResult[]> {
  const out: PipeSizeResult[] = [];
  if (targets.bulkPort === undefined) return out;
  for (const size of s.pipeSizes) {
    const p = await pairPath({ native: true, pipeSize: size, name: `pair-native-pipe-${size}` }).start(targets, { workDir, nofile });
    try {
      const trials = [];
      for (let t = 0; t < s.trials; t++) trials.push(await runBulk(p, s.seconds));
      const r = { pipe_size: size, gbps: median(trials.map((x) => x.gbps)), cpu_s_per_gb: median(trials.map((x) => x.cpuSecondsPerGB)) };
      log(`pipe size ${size}: ${r.gbps.toFixed(2)} Gbit/s, ${r.cpu_s_per_gb.toFixed(3)} CPU s/GB`);
      out.push(r);
    } finally {
      await p.stop();
    }
  }
  return out;
}

async function main(argv: string[]): Promise<number> {
  let s: Settings | null;
  try {
    s = parseSettings(argv);
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (!s) {
    process.stdout.write(HELP);
    return 0;
  }
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'enclaver-bench-'));
  const nofile = fdLimit(wantedNofile(s.tunnels));
  const tunnelCeiling = Math.floor((nofile - FD_HEADROOM) / FDS_PER_TUNNEL);
  if (s.tunnels > tunnelCeiling) {
    log(
      `the fd limit is ${nofile} and cannot be raised here (no CAP_SYS_RESOURCE): holding ${tunnelCeiling} idle tunnels instead of ${s.tunnels}`,
    );
    s.tunnels = tunnelCeiling;
  }
  const report: BenchmarkReport = {
    started: new Date().toISOString(),
    host: { cpus: os.availableParallelism(), kernel: os.release(), node: process.version },
    settings: {
      trials: s.trials,
      seconds: s.seconds,
      tunnels: s.tunnels,
      tunnels_wanted: s.tunnelsWanted,
      latency_iterations: s.latencyIterations,
      conn_rate_ms: s.connRateMs,
      conn_rate_concurrency: s.connRateConcurrency,
      nofile,
    },
    results: [],
    memory: [],
    pipe_sizes: [],
    targets: [],
    skipped: [],
  };
  let http: HttpSectionReport | undefined;
  try {
    const { targets, servers } = await startServers(nofile);
    if (targets.bulkPort === undefined)
      report.skipped.push({ name: 'bulk throughput', reason: 'iperf3 is not installed (apt-get install iperf3)' });
    // The TCP paths are started only for the TCP workloads (the http section has paths of its own).
    const tcpWorkloads = [...s.workloads].some((w) => w !== 'http');
    // Variants of the pair for comparisons run only when named in --only.
    const optIn = [
      pairPath({ native: true, fastPath: false, name: 'pair-native-js-accept' }),
      pairPath({ native: true, threads: 2, name: 'pair-native-2threads' }),
    ];
    const definitions: PathDefinition[] = [directPath, pairPath({ native: true }), pairPath({ native: false }), socatPath, haproxyPath]
      .filter((d) => tcpWorkloads && (!s.only || s.only.includes(d.name)))
      .concat(optIn.filter((d) => tcpWorkloads && s.only?.includes(d.name)))
      .concat(
        tcpWorkloads && s.baselineTree !== undefined ? [pairPath({ native: true, tree: s.baselineTree, name: 'pair-native-base' })] : [],
      );
    const running: RunningPath[] = [];
    for (const d of definitions) {
      const reason = d.unavailable();
      if (reason) {
        report.skipped.push({ name: d.name, reason });
        log(`skipping ${d.name}: ${reason}`);
        continue;
      }
      running.push(await d.start(targets, { workDir, nofile }));
    }
    report.results = await measurePaths(running, s);
    if (s.tunnels > 0 && s.workloads.has('memory')) {
      for (const p of running.filter((r) => r.name.startsWith('pair-'))) {
        const m: IdleTunnelsResult = await runIdleTunnels(p, s.tunnels, nofile);
        log(
          `idle tunnels ${p.name}: ${m.tunnels} open, KiB/tunnel ${m.processes.map((x) => x.kibPerTunnel.toFixed(2)).join(' / ')}, fds back: ${m.fdsReturned}`,
        );
        report.memory.push(m);
      }
    }
    for (const p of running) await p.stop();
    report.pipe_sizes = await measurePipeSizes(targets, s, workDir, nofile);
    for (const server of servers) await stop(server);
    if (s.workloads.has('http')) {
      http = await runHttpSection(
        { trials: s.trials, seconds: s.seconds, warmupSeconds: s.httpWarmup, connections: s.httpConnections, only: s.only },
        workDir,
        nofile,
      );
      report.http = http;
    }
    report.targets = checkTargets(report.results, report.memory);
  } finally {
    await stopAll();
    fs.rmSync(workDir, { recursive: true, force: true });
  }

  process.stdout.write(`${renderTables(report)}\n`);
  if (http) process.stdout.write(`\n${renderHttpTable(http)}\n`);
  fs.mkdirSync(path.dirname(s.svg), { recursive: true });
  fs.writeFileSync(s.svg, renderChart(report));
  process.stdout.write(`\nchart: ${s.svg}\n`);
  if (s.json) {
    fs.writeFileSync(s.json, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`json: ${s.json}\n`);
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    void stopAll().finally(() => process.exit(1));
  },
);
