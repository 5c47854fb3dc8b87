/**
 * `haproxy-2hop`: two HAProxy processes in TCP mode with `option splice-auto`, joined by a Unix
 * socket where vsock would be. One thread each (as our pump runs one thread per process on two
 * cores) and 256 KiB pipes, like ours.
 */
import fs from 'node:fs';
import path from 'node:path';
import { anyExit, start, stop, type Tracked } from '../lib/processes.js';
import { cpuSeconds } from '../lib/proc-stats.js';
import { freePort, waitForEcho } from '../lib/net.js';
import { which } from './binaries.js';
import type { PathDefinition, RunningPath } from './types.js';

// No maxconn: HAProxy then derives it from the fd limit it is given.
function config(bind: string, server: string): string {
  return `global
  nbthread 1
  tune.pipesize 262144
defaults
  mode tcp
  option splice-auto
  timeout connect 5s
  timeout client 1h
  timeout server 1h
frontend hop
  bind ${bind}
  default_backend next
backend next
  server next ${server}
`;
}

export const haproxyPath: PathDefinition = {
  name: 'haproxy-2hop',
  unavailable: () => (which('haproxy') ? null : 'haproxy is not installed (apt-get install haproxy)'),
  async start(targets, ctx): Promise<RunningPath> {
    const procs: Tracked[] = [];
    const chain = async (label: string, serverPort: number) => {
      const entry = await freePort();
      const sock = path.join(ctx.workDir, `haproxy-${label}.sock`);
      const innerCfg = path.join(ctx.workDir, `haproxy-${label}-inner.cfg`);
      const outerCfg = path.join(ctx.workDir, `haproxy-${label}-outer.cfg`);
      fs.writeFileSync(innerCfg, config(`unix@${sock}`, `127.0.0.1:${serverPort}`));
      fs.writeFileSync(outerCfg, config(`127.0.0.1:${entry}`, `unix@${sock}`));
      procs.push(start(`haproxy-${label}-inner`, 'haproxy', ['-db', '-f', innerCfg], { nofile: ctx.nofile }));
      procs.push(start(`haproxy-${label}-outer`, 'haproxy', ['-db', '-f', outerCfg], { nofile: ctx.nofile }));
      return entry;
    };
    const echoPort = await chain('echo', targets.echoPort);
    const bulkPort = targets.bulkPort !== undefined ? await chain('bulk', targets.bulkPort) : undefined;
    await Promise.race([waitForEcho(echoPort, 'haproxy-2hop'), anyExit(procs)]);
    return {
      name: 'haproxy-2hop',
      echoPort,
      bulkPort,
      proxyPids: () => procs.map((p) => p.pid),
      proxyCpuSeconds: () => procs.reduce((sum, p) => sum + cpuSeconds(p.pid), 0),
      stop: async () => { await Promise.all(procs.map((p) => stop(p))); },
    };
  },
};
