/**
 * The HTTP (L7) section of `npm run bench` (workload `http`): HTTP/1.1 keep-alive req/s, p99 and
 * proxy CPU per request through the pair (plain and TLS-terminated) against HAProxy (mode http,
 * and TLS termination) and nginx, all against the same small app in the same run. Trials are
 * interleaved across paths so that a drift of the machine's load hits every path alike; figures
 * are medians. Targets (issue 12): pair-http ≥ 1.0× haproxy-http req/s, pair-https ≥ 0.7×
 * haproxy-https.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { selfSignedLoopbackCertificate } from '../test/helpers/tls.js';
import { freePort } from './lib/net.js';
import { startNginx } from './lib/nginx.js';
import { start, stop, type Tracked } from './lib/processes.js';
import { median } from './lib/stats.js';
import { which } from './paths/binaries.js';
import { HTTP_PATHS, type RunningHttpPath } from './paths/http.js';
import { runHttpLoad } from './workloads/http-keepalive.js';

const HTTP_APP = path.join(path.dirname(fileURLToPath(import.meta.url)), 'children', 'http-app.js');

export interface HttpSettings {
  trials: number;
  seconds: number;
  /** Load each path this long before measuring: Node's JIT needs thousands of requests to warm up. */
  warmupSeconds: number;
  connections: number;
  only: string[] | null;
}

export interface HttpPathResult {
  name: string;
  requests_per_s: number | null;
  p99_us: number | null;
  /** CPU time of the relaying processes per request (µs): steadier than req/s on a loaded machine. */
  cpu_us_per_request: number | null;
  trials: { requests_per_s: number[]; p99_us: number[]; cpu_us_per_request: number[]; errors: number[] };
}

export interface HttpTarget {
  name: string;
  ratio: number | null;
  wanted: number;
  met: boolean | null;
}

export interface HttpSectionReport {
  app: string;
  /** Load average when the section started (other work on the machine skews every figure). */
  loadavg: number[];
  settings: HttpSettings;
  results: HttpPathResult[];
  targets: HttpTarget[];
  skipped: { name: string; reason: string }[];
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

async function startApp(workDir: string, nofile: number): Promise<{ port: number; proc: Tracked; kind: string }> {
  const port = await freePort();
  if (which('nginx')) {
    const proc = startNginx(
      'nginx-app',
      path.join(workDir, 'nginx-app'),
      `  keepalive_requests 1000000;
  keepalive_timeout 1h;
  server { listen 127.0.0.1:${port}; location / { return 200 "hello from the app\\n"; } }
`,
      nofile,
    );
    for (let i = 0; i < 100; i++) {
      try {
        execFileSync('curl', ['-sf', '-o', '/dev/null', `http://127.0.0.1:${port}/`]);
        return { port, proc, kind: 'nginx return 200 (1 worker)' };
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw new Error(`the nginx app did not start: ${proc.output()}`);
  }
  const proc = await new Promise<Tracked>((resolve, reject) => {
    const p = start('http-app', process.execPath, [HTTP_APP, String(port)], {
      nofile,
      onLine: (l) => {
        if (l === 'ready') resolve(p);
      },
    });
    void p.exited.then(() => reject(new Error(`the HTTP app exited: ${p.output()}`)));
  });
  return { port, proc, kind: 'node http (1 process)' };
}

/** The TLS paths' certificate and key in one PEM (HAProxy's `crt` form; the pair reads both from it). */
function tlsPem(): string {
  const { cert, key } = selfSignedLoopbackCertificate();
  return cert + key;
}

function ratio(results: HttpPathResult[], ours: string, theirs: string, wanted: number): HttpTarget {
  const a = results.find((r) => r.name === ours)?.requests_per_s;
  const b = results.find((r) => r.name === theirs)?.requests_per_s;
  const value = a && b ? a / b : null;
  return { name: `${ours} / ${theirs} req/s`, ratio: value, wanted, met: value === null ? null : value >= wanted };
}

export async function runHttpSection(s: HttpSettings, workDir: string, nofile: number): Promise<HttpSectionReport> {
  const report: HttpSectionReport = { app: '', loadavg: [], settings: s, results: [], targets: [], skipped: [] };
  if (!which('wrk')) {
    report.skipped.push({ name: 'http', reason: 'wrk is not installed (apt-get install wrk)' });
    return report;
  }
  const app = await startApp(workDir, nofile);
  report.app = app.kind;
  const pem = tlsPem();
  const paths: RunningHttpPath[] = [];
  try {
    for (const d of HTTP_PATHS.filter((p) => (s.only ? s.only.includes(p.name) : !p.optIn))) {
      const reason = d.unavailable();
      if (reason) {
        report.skipped.push({ name: d.name, reason });
        log(`skipping ${d.name}: ${reason}`);
        continue;
      }
      paths.push(await d.start({ workDir, nofile, appPort: app.port, tlsPem: pem }));
    }
    for (const p of paths) {
      const w = await runHttpLoad(p.url, s.warmupSeconds, s.connections);
      log(`http warm-up ${p.name}: ${w.requestsPerSecond.toFixed(0)} req/s (not counted)`);
    }
    report.loadavg = (await import('node:os')).loadavg().map((x) => Math.round(x * 100) / 100);
    const results = new Map(
      paths.map((p) => [
        p.name,
        {
          name: p.name,
          requests_per_s: null,
          p99_us: null,
          cpu_us_per_request: null,
          trials: { requests_per_s: [], p99_us: [], cpu_us_per_request: [], errors: [] },
        } as HttpPathResult,
      ]),
    );
    for (let t = 1; t <= s.trials; t++) {
      for (const p of paths) {
        const cpuBefore = p.proxyCpuSeconds();
        const r = await runHttpLoad(p.url, s.seconds, s.connections);
        const cpu = p.proxyCpuSeconds() - cpuBefore;
        const row = results.get(p.name)!;
        row.trials.requests_per_s.push(r.requestsPerSecond);
        row.trials.p99_us.push(r.p99us);
        row.trials.errors.push(r.errors);
        if (p.name !== 'direct-http') row.trials.cpu_us_per_request.push((cpu * 1e6) / Math.max(1, r.requests));
        log(
          `http ${t}/${s.trials} ${p.name}: ${r.requestsPerSecond.toFixed(0)} req/s, p99 ${(r.p99us / 1000).toFixed(2)} ms${p.name !== 'direct-http' ? `, ${((cpu * 1e6) / Math.max(1, r.requests)).toFixed(1)} µs CPU/req` : ''}${r.errors ? `, ${r.errors} errors` : ''}`,
        );
      }
    }
    const m = (xs: number[]) => (xs.length > 0 ? median(xs) : null);
    report.results = [...results.values()].map((r) => ({
      ...r,
      requests_per_s: m(r.trials.requests_per_s),
      p99_us: m(r.trials.p99_us),
      cpu_us_per_request: m(r.trials.cpu_us_per_request),
    }));
    report.targets = [ratio(report.results, 'pair-http', 'haproxy-http', 1.0), ratio(report.results, 'pair-https', 'haproxy-https', 0.7)];
  } finally {
    for (const p of paths) await p.stop();
    await stop(app.proc);
  }
  return report;
}

export function renderHttpTable(r: HttpSectionReport): string {
  if (r.results.length === 0) return `HTTP (L7): skipped (${r.skipped.map((x) => `${x.name}: ${x.reason}`).join('; ')})`;
  const lines = [
    `HTTP/1.1 keep-alive (wrk -t1 -c${r.settings.connections}, ${r.settings.warmupSeconds} s warm-up, then ${r.settings.seconds} s × ${r.settings.trials} trials, medians;` +
      ` app: ${r.app}; load average ${r.loadavg.join(' ')})`,
    '| path | req/s | p99 ms | proxy CPU µs/req |',
    '|---|---:|---:|---:|',
    ...r.results.map(
      (x) =>
        `| ${x.name} | ${x.requests_per_s?.toFixed(0) ?? '-'} | ${x.p99_us !== null ? (x.p99_us / 1000).toFixed(2) : '-'} | ${x.cpu_us_per_request?.toFixed(1) ?? '-'} |`,
    ),
    '',
    ...r.targets.map(
      (t) =>
        `${t.name}: ${t.ratio === null ? 'not measured' : `${t.ratio.toFixed(2)}×`} (target ≥ ${t.wanted.toFixed(1)}×)${t.met === null ? '' : t.met ? ' met' : ' NOT met'}`,
    ),
    ...r.skipped.map((x) => `skipped ${x.name}: ${x.reason}`),
  ];
  return lines.join('\n');
}
