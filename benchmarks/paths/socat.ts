/**
 * `socat-2hop`: the usual hand-made Nitro setup, two socat relays with their default settings,
 * joined by a Unix socket where vsock would be:
 *   client → socat TCP-LISTEN → UNIX-CONNECT  ⇢  socat UNIX-LISTEN → TCP → server
 * socat forks a child per connection; their CPU is counted through the parents (reaped children)
 * and the live children.
 */
import path from 'node:path';
import { anyExit, start, stop, type Tracked } from '../lib/processes.js';
import { treeCpuSeconds, descendants } from '../lib/proc-stats.js';
import { freePort, waitForEcho } from '../lib/net.js';
import { which } from './binaries.js';
import type { PathDefinition, RunningPath } from './types.js';

export const socatPath: PathDefinition = {
  name: 'socat-2hop',
  unavailable: () => (which('socat') ? null : 'socat is not installed (apt-get install socat)'),
  async start(targets, ctx): Promise<RunningPath> {
    const procs: Tracked[] = [];
    const chain = async (label: string, serverPort: number) => {
      const entry = await freePort();
      const sock = path.join(ctx.workDir, `socat-${label}.sock`);
      procs.push(start(`socat-${label}-inner`, 'socat', [`UNIX-LISTEN:${sock},fork,unlink-early`, `TCP:127.0.0.1:${serverPort}`], { nofile: ctx.nofile }));
      procs.push(start(`socat-${label}-outer`, 'socat', [`TCP-LISTEN:${entry},bind=127.0.0.1,fork,reuseaddr,backlog=4096`, `UNIX-CONNECT:${sock}`], { nofile: ctx.nofile }));
      return entry;
    };
    const echoPort = await chain('echo', targets.echoPort);
    const bulkPort = targets.bulkPort !== undefined ? await chain('bulk', targets.bulkPort) : undefined;
    await Promise.race([waitForEcho(echoPort, 'socat-2hop'), anyExit(procs)]);
    return {
      name: 'socat-2hop',
      echoPort,
      bulkPort,
      proxyPids: () => procs.flatMap((p) => [p.pid, ...descendants(p.pid)]),
      proxyCpuSeconds: () => procs.reduce((sum, p) => sum + treeCpuSeconds(p.pid), 0),
      stop: async () => { await Promise.all(procs.map((p) => stop(p))); },
    };
  },
};
