/**
 * The baselines' shape: a relay program run twice per server, outer hop (TCP listener → Unix
 * socket) and inner hop (Unix socket → server), where the pair would have vsock in between.
 */
import path from 'node:path';
import { anyExit, stop, type Tracked } from '../lib/processes.js';
import { cpuSeconds, descendants, treeCpuSeconds } from '../lib/proc-stats.js';
import { freePort, waitForEcho } from '../lib/net.js';
import { which } from './binaries.js';
import type { PathContext, PathDefinition, RunningPath } from './types.js';

export interface Hops {
  /** Listens on 127.0.0.1:`entryPort` and relays to the Unix socket `socketPath`. */
  outer: { entryPort: number; socketPath: string };
  /** Listens on `socketPath` and relays to 127.0.0.1:`serverPort`. */
  inner: { socketPath: string; serverPort: number };
  /** Distinguishes the files of the echo and bulk chains. */
  label: string;
}

export interface Relay {
  name: string;
  program: string;
  /** Starts both hops of one chain; inner hop first, so the socket exists when the outer needs it. */
  startChain(hops: Hops, ctx: PathContext): Tracked[];
  /** true when the relay forks per connection: its children's CPU and pids count too. */
  forks: boolean;
}

export function twoHopPath(relay: Relay): PathDefinition {
  return {
    name: relay.name,
    unavailable: () => (which(relay.program) ? null : `${relay.program} is not installed (apt-get install ${relay.program})`),
    async start(targets, ctx): Promise<RunningPath> {
      const procs: Tracked[] = [];
      const chain = async (label: string, serverPort: number) => {
        const entryPort = await freePort();
        const socketPath = path.join(ctx.workDir, `${relay.name}-${label}.sock`);
        procs.push(...relay.startChain({ outer: { entryPort, socketPath }, inner: { socketPath, serverPort }, label }, ctx));
        return entryPort;
      };
      const echoPort = await chain('echo', targets.echoPort);
      const bulkPort = targets.bulkPort !== undefined ? await chain('bulk', targets.bulkPort) : undefined;
      await Promise.race([waitForEcho(echoPort, relay.name), anyExit(procs)]);
      return {
        name: relay.name,
        echoPort,
        bulkPort,
        proxyPids: () => procs.flatMap((p) => (relay.forks ? [p.pid, ...descendants(p.pid)] : [p.pid])),
        proxyCpuSeconds: () => procs.reduce((sum, p) => sum + (relay.forks ? treeCpuSeconds(p.pid) : cpuSeconds(p.pid)), 0),
        stop: async () => {
          await Promise.all(procs.map((p) => stop(p)));
        },
      };
    },
  };
}
