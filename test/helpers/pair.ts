/**
 * A local pair (outer + inner child + app) started through the real CLI, on free ports, with
 * vsock emulated in a temporary directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { freePorts } from './ports.js';
import { runCli, tempDir, type Proc } from './process.js';

export interface PairOptions {
  /** The app's argv (started by the inner proxy). */
  app: string[];
  appEnv?: Record<string, string>;
  /** Extra YAML for the inner listener / cluster / top levels. */
  innerListenerExtra?: string;
  innerExtra?: string;
  outerExtra?: string;
  outerListenerExtra?: string;
  /** Wait for this line on stdout (the app saying it listens) before resolving. */
  readyLine?: RegExp;
  /** Send a PROXY v2 header to the app too (the optional app leg). */
  appProxyProtocol?: boolean;
  /** Extra YAML for the inner's app cluster (e.g. `      connect_timeout: 60s`). */
  appClusterExtra?: string;
  env?: Record<string, string>;
}

export interface Pair {
  proc: Proc;
  dir: string;
  ingressPort: number;
  appPort: number;
  outerAdmin: number;
  innerAdmin: number;
  configFile: string;
  metrics(side: 'outer' | 'inner'): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function startPair(opts: PairOptions): Promise<Pair> {
  const [ingressPort, appPort, outerAdmin, innerAdmin] = (await freePorts(4)) as [number, number, number, number];
  const vport = 20000 + (appPort % 10000);
  const dir = tempDir();
  const yaml = `role: local
runtime_dir: ${dir}/run
outer:
  admin: { address: tcp://127.0.0.1:${outerAdmin} }
  listeners:
    - name: web
      address: tcp://127.0.0.1:${ingressPort}
      cluster: enclave_web
${opts.outerListenerExtra ?? ''}
  clusters:
    - name: enclave_web
      endpoints: [vsock://16:${vport}]
      proxy_protocol: v2
${opts.outerExtra ?? ''}
inner:
  admin: { address: tcp://127.0.0.1:${innerAdmin} }
  app:
    command: ${JSON.stringify(opts.app)}
    env: ${JSON.stringify({ PORT: String(appPort), ...opts.appEnv })}
  listeners:
    - name: web
      address: vsock://any:${vport}
      proxy_protocol: v2
      access_log: true
      cluster: app
${opts.innerListenerExtra ?? ''}
  clusters:
    - name: app
      endpoints: [tcp://127.0.0.1:${appPort}]
${opts.appProxyProtocol ? '      proxy_protocol: v2' : ''}
${opts.appClusterExtra ?? ''}
${opts.innerExtra ?? ''}
`;
  const configFile = path.join(dir, 'pair.yaml');
  fs.writeFileSync(configFile, yaml);
  const proc = runCli(['--config', configFile], { env: opts.env ?? {} });
  await proc.waitFor((r) => r.msg === 'local pair ready', 20_000, 'local pair ready');
  if (opts.readyLine) {
    const re = opts.readyLine;
    const deadline = Date.now() + 15_000;
    while (!re.test(proc.stdout())) {
      if (Date.now() > deadline) throw new Error(`app never printed ${re}\n${proc.stdout()}\n${proc.stderr()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return {
    proc,
    dir,
    ingressPort,
    appPort,
    outerAdmin,
    innerAdmin,
    configFile,
    async metrics(side) {
      const res = await fetch(`http://127.0.0.1:${side === 'outer' ? outerAdmin : innerAdmin}/metrics`);
      return res.text();
    },
    async stop(signal = 'SIGTERM') {
      const r = await proc.stop(signal);
      fs.rmSync(dir, { recursive: true, force: true });
      return r;
    },
  };
}

/** The value of one Prometheus series, e.g. metricValue(text, 'enclaver_connections_active{listener="web"}'). */
export function metricValue(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : undefined;
}
