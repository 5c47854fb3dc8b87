/**
 * The paths of the HTTP (L7) benchmark: how a wrk connection reaches the small app.
 *
 *   direct-http      wrk → app
 *   pair-http        wrk → outer (TCP listener, PROXY v2) → vsock (emulated) → inner `http` listener → app
 *   pair-https       the same, TLS terminated by the inner with an attested certificate
 *   haproxy-http     wrk → HAProxy (tcp, splice) → Unix socket → HAProxy (mode http) → app
 *   haproxy-https    the same, the second HAProxy terminating TLS
 *   nginx-http       wrk → nginx reverse proxy (upstream keep-alive) → app; one hop only
 *
 * The two HAProxy hops mirror the pair's two (parent relay, enclave proxy); one thread per HAProxy
 * process, one worker for nginx, as each of our processes runs JS on one thread. The second
 * HAProxy runs in a session of its own like the pair's inner: with autogroup scheduling a session
 * is a scheduling group, and two hops in different groups wake and preempt each other more.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { freePort, sleep } from '../lib/net.js';
import { anyExit, start, stop, type Tracked } from '../lib/processes.js';
import { cpuSeconds, descendants } from '../lib/proc-stats.js';
import { startNginx } from '../lib/nginx.js';
import { which } from './binaries.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'enclaver-proxy.js');

export interface HttpPathContext {
  workDir: string;
  nofile: number;
  appPort: number;
  /** PEM certificate + key for the baselines' TLS (P-256, like the pair's attested key). */
  tlsPem: string;
}

export interface RunningHttpPath {
  name: string;
  url: string;
  tls: boolean;
  proxyCpuSeconds(): number;
  stop(): Promise<void>;
}

export interface HttpPathDefinition {
  name: string;
  tls: boolean;
  unavailable(): string | null;
  start(ctx: HttpPathContext): Promise<RunningHttpPath>;
  /** Run only when `--only` names it. */
  optIn?: boolean;
}

/** Polls until an HTTP request through `url` is answered 200 (the chain up to the app is up). */
async function waitForHttp(url: string, what: string, procs: Tracked[], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const failed = anyExit(procs);
  failed.catch(() => {});
  while (Date.now() < deadline) {
    const ok = await Promise.race([
      new Promise<boolean>((resolve) => {
        try {
          const out = execFileSync('curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', url], { encoding: 'utf8' });
          resolve(out === '200');
        } catch {
          resolve(false);
        }
      }),
      failed,
    ]);
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${what}: ${url} never answered 200 within ${timeoutMs} ms\n${procs.map((p) => p.output().slice(-2000)).join('\n')}`);
}

function running(name: string, url: string, tls: boolean, procs: Tracked[], pids: () => number[]): RunningHttpPath {
  return {
    name,
    url,
    tls,
    proxyCpuSeconds: () => pids().reduce((sum, pid) => sum + cpuSeconds(pid), 0),
    stop: async () => {
      for (const p of procs) await stop(p);
    },
  };
}

export const directHttpPath: HttpPathDefinition = {
  name: 'direct-http',
  tls: false,
  unavailable: () => null,
  start: async (ctx) => running('direct-http', `http://127.0.0.1:${ctx.appPort}/`, false, [], () => []),
};

/** `nativeHttp` false: the inner's http listener in JS (ENCLAVER_FASTPATH=0 for the pair), the before of the native engine. */
function pairHttpPath(tls: boolean, nativeHttp = true): HttpPathDefinition {
  const name = tls ? 'pair-https' : nativeHttp ? 'pair-http' : 'pair-http-js';
  return {
    name,
    tls,
    optIn: !nativeHttp,
    unavailable: () => null,
    async start(ctx) {
      const entry = await freePort();
      const vsockPort = tls ? 7202 : nativeHttp ? 7201 : 7203;
      const config = {
        role: 'local',
        log: { level: 'warn' },
        runtime_dir: path.join(ctx.workDir, `${name}-runtime`),
        outer: {
          admin: { address: null },
          listeners: [
            { name: 'web', address: `tcp://127.0.0.1:${entry}`, cluster: 'enclave', idle_timeout: '0s', max_connections: 100000 },
          ],
          clusters: [{ name: 'enclave', endpoints: [`vsock://16:${vsockPort}`], proxy_protocol: 'v2' }],
        },
        inner: {
          admin: { address: null },
          ...(tls ? { nsm: { mode: 'simulator' } } : {}),
          listeners: [
            {
              name: 'web',
              address: `vsock://any:${vsockPort}`,
              proxy_protocol: 'v2',
              max_connections: 100000,
              ...(tls ? { tls: { certificate: 'attested', names: ['localhost'] } } : {}),
              http: { default_cluster: 'app' },
            },
          ],
          clusters: [{ name: 'app', endpoints: [`tcp://127.0.0.1:${ctx.appPort}`] }],
        },
      };
      const file = path.join(ctx.workDir, `${name}.yaml`);
      fs.writeFileSync(file, stringify(config));
      const outer = start(name, process.execPath, [CLI, '--config', file], {
        env: { ...process.env, ENCLAVER_LOG_FORMAT: 'json', ...(nativeHttp ? {} : { ENCLAVER_FASTPATH: '0' }) },
        nofile: ctx.nofile,
      });
      const url = `${tls ? 'https' : 'http'}://127.0.0.1:${entry}/`;
      await waitForHttp(url, name, [outer]);
      const inner = descendants(outer.pid).find((pid) => pid !== outer.pid);
      const pids = inner === undefined ? [outer.pid] : [outer.pid, inner];
      return running(name, url, tls, [outer], () => pids);
    },
  };
}

export const pairHttp = pairHttpPath(false);
export const pairHttps = pairHttpPath(true);
const pairHttpJs = pairHttpPath(false, false);

/** `innerOwnSession` false: both HAProxy processes in the runner's session, the baseline before l7tune. */
function haproxyHttpPath(tls: boolean, innerOwnSession = true): HttpPathDefinition {
  const name = tls ? 'haproxy-https' : innerOwnSession ? 'haproxy-http' : 'haproxy-http-shared';
  return {
    name,
    tls,
    optIn: !innerOwnSession,
    unavailable: () => (which('haproxy') ? null : 'haproxy is not installed (apt-get install haproxy)'),
    async start(ctx) {
      const entry = await freePort();
      const socket = path.join(ctx.workDir, `${name}.sock`);
      const pem = path.join(ctx.workDir, `${name}.pem`);
      fs.writeFileSync(pem, ctx.tlsPem);
      const global = 'global\n  nbthread 1\n  tune.pipesize 262144\n';
      const defaults = (mode: string) =>
        `defaults\n  mode ${mode}\n  timeout connect 5s\n  timeout client 1h\n  timeout server 1h\n  timeout http-keep-alive 1h\n`;
      const outerCfg = `${global}${defaults('tcp')}  option splice-auto\nfrontend hop\n  bind 127.0.0.1:${entry}\n  default_backend next\nbackend next\n  server next unix@${socket} send-proxy-v2\n`;
      const innerCfg =
        `${global}${defaults('http')}  option http-keep-alive\nfrontend web\n  bind unix@${socket} accept-proxy${tls ? ` ssl crt ${pem}` : ''}\n` +
        '  option forwardfor\n  default_backend app\nbackend app\n' +
        `  http-reuse always\n  server app 127.0.0.1:${ctx.appPort}\n`;
      const files = ['outer', 'inner'].map((side) => path.join(ctx.workDir, `${name}-${side}.cfg`));
      fs.writeFileSync(files[0]!, outerCfg);
      fs.writeFileSync(files[1]!, innerCfg);
      const procs = [
        // Its own session, as the pair's inner has (role local starts it detached): the same
        // scheduling groups on both sides of the comparison.
        start(`${name}-inner`, 'haproxy', ['-db', '-f', files[1]!], { nofile: ctx.nofile, ownSession: innerOwnSession }),
        start(`${name}-outer`, 'haproxy', ['-db', '-f', files[0]!], { nofile: ctx.nofile }),
      ];
      const url = `${tls ? 'https' : 'http'}://127.0.0.1:${entry}/`;
      await waitForHttp(url, name, procs);
      return running(name, url, tls, procs, () => procs.map((p) => p.pid));
    },
  };
}

export const haproxyHttp = haproxyHttpPath(false);
export const haproxyHttps = haproxyHttpPath(true);
const haproxyHttpShared = haproxyHttpPath(false, false);

export const nginxHttp: HttpPathDefinition = {
  name: 'nginx-http',
  tls: false,
  unavailable: () => (which('nginx') ? null : 'nginx is not installed (apt-get install nginx-light)'),
  async start(ctx) {
    const entry = await freePort();
    const proc = startNginx(
      'nginx-proxy',
      path.join(ctx.workDir, 'nginx-proxy'),
      `  upstream app { server 127.0.0.1:${ctx.appPort}; keepalive 256; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${entry};
    keepalive_requests 1000000;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header X-Forwarded-For $remote_addr; }
  }
`,
      ctx.nofile,
    );
    const url = `http://127.0.0.1:${entry}/`;
    await waitForHttp(url, 'nginx-http', [proc]);
    return running('nginx-http', url, false, [proc], () => [proc.pid, ...descendants(proc.pid).filter((p) => p !== proc.pid)]);
  },
};

export const HTTP_PATHS: HttpPathDefinition[] = [
  directHttpPath,
  pairHttp,
  pairHttpJs,
  pairHttps,
  haproxyHttp,
  haproxyHttpShared,
  haproxyHttps,
  nginxHttp,
];
