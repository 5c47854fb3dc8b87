/**
 * `pair-native` / `pair-js`: THE pair, run as users run it: `enclaver-proxy --config FILE` with
 * `role: local` (the outer in that process, the inner as its child, vsock emulated by Unix
 * sockets). Each server gets an outer ingress listener → vsock → inner listener → server.
 * pair-js runs the same binary with ENCLAVER_NATIVE=0. Opt-in variants (named in --only):
 * pair-native-js-accept (ENCLAVER_FASTPATH=0: native pump, listeners accept in JS) and
 * pair-native-2threads (ENCLAVER_PUMP_THREADS=2). With `--baseline-tree DIR` (another checkout,
 * built) `pair-native-base` runs that tree's CLI the same way: before/after in one invocation.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { anyExit, start, stop } from '../lib/processes.js';
import { cpuSeconds, descendants } from '../lib/proc-stats.js';
import { freePort, waitForEcho } from '../lib/net.js';
import type { PathDefinition, RunningPath, Targets } from './types.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'enclaver-proxy.js');
const ADDON = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'native',
  'build',
  'Release',
  'enclaver_native.node',
);

/** vsock ports of the pair's hops (outside the reserved 17000–17009). */
const VSOCK_ECHO_PORT = 7101;
const VSOCK_BULK_PORT = 7102;

export interface PairPathOptions {
  native: boolean;
  /** ENCLAVER_PUMP_PIPE_SIZE for the native pump (the pipe-size sweep). */
  pipeSize?: number;
  /** false: ENCLAVER_FASTPATH=0 (listeners accept in JS, then hand over to the pump). */
  fastPath?: boolean;
  /** ENCLAVER_PUMP_THREADS. */
  threads?: number;
  name?: string;
  /** Root of another built checkout whose CLI and addon to run instead of this tree's. */
  tree?: string;
}

function pairConfig(targets: Targets, entry: { echo: number; bulk: number | undefined }) {
  const hop = (name: string, outerPort: number, vsockPort: number, serverPort: number) => ({
    outer: { name, address: `tcp://127.0.0.1:${outerPort}`, cluster: `enclave_${name}`, idle_timeout: '0s', max_connections: 100000 },
    outerCluster: { name: `enclave_${name}`, endpoints: [`vsock://16:${vsockPort}`] },
    inner: { name, address: `vsock://any:${vsockPort}`, cluster: name, idle_timeout: '0s', max_connections: 100000 },
    innerCluster: { name, endpoints: [`tcp://127.0.0.1:${serverPort}`] },
  });
  const hops = [hop('echo', entry.echo, VSOCK_ECHO_PORT, targets.echoPort)];
  if (entry.bulk !== undefined && targets.bulkPort !== undefined) hops.push(hop('bulk', entry.bulk, VSOCK_BULK_PORT, targets.bulkPort));
  return {
    role: 'local',
    log: { level: 'warn' },
    outer: { admin: { address: null }, listeners: hops.map((h) => h.outer), clusters: hops.map((h) => h.outerCluster) },
    inner: { admin: { address: null }, listeners: hops.map((h) => h.inner), clusters: hops.map((h) => h.innerCluster) },
  };
}

export function pairPath(opts: PairPathOptions): PathDefinition {
  const name = opts.name ?? (opts.native ? 'pair-native' : 'pair-js');
  const cli = opts.tree === undefined ? CLI : path.join(opts.tree, 'dist', 'bin', 'enclaver-proxy.js');
  const addon = opts.tree === undefined ? ADDON : path.join(opts.tree, 'native', 'build', 'Release', 'enclaver_native.node');
  return {
    name,
    unavailable: () => (opts.native && !fs.existsSync(addon) ? `the native addon is not built (${addon})` : null),
    async start(targets, ctx): Promise<RunningPath> {
      const entry = { echo: await freePort(), bulk: targets.bulkPort !== undefined ? await freePort() : undefined };
      const configFile = path.join(ctx.workDir, `${name}.yaml`);
      fs.writeFileSync(configFile, stringify({ ...pairConfig(targets, entry), runtime_dir: path.join(ctx.workDir, `${name}-runtime`) }));
      const env: NodeJS.ProcessEnv = { ...process.env, ENCLAVER_LOG_FORMAT: 'json', ENCLAVER_NATIVE: opts.native ? '1' : '0' };
      if (opts.pipeSize) env.ENCLAVER_PUMP_PIPE_SIZE = String(opts.pipeSize);
      if (opts.fastPath === false) env.ENCLAVER_FASTPATH = '0';
      if (opts.threads) env.ENCLAVER_PUMP_THREADS = String(opts.threads);
      const outer = start(name, process.execPath, [cli, '--config', configFile], { env, nofile: ctx.nofile });
      try {
        await Promise.race([waitForEcho(entry.echo, name), anyExit([outer])]);
      } catch (err) {
        await stop(outer);
        throw new Error(`${(err as Error).message}\n${outer.output().slice(-3000)}`);
      }
      const inner = descendants(outer.pid).find((pid) => pid !== outer.pid);
      if (inner === undefined) throw new Error(`${name}: the inner proxy process was not found under pid ${outer.pid}`);
      const pids = [outer.pid, inner];
      return {
        name,
        echoPort: entry.echo,
        bulkPort: entry.bulk,
        proxyPids: () => pids,
        // Measured per process: the inner is alive, so it is not in the outer's child figures.
        proxyCpuSeconds: () => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0),
        stop: () => stop(outer),
      };
    },
  };
}
