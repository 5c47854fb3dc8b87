/**
 * Memory and fds of idle tunnels: open N tunnels through the path (each proven end to end by one
 * echoed byte), measure each proxy process's RSS and open fds, close them all, and check that the
 * fd count returns to where it started.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { start, stop } from '../lib/processes.js';
import { fdCount, rssKiB } from '../lib/proc-stats.js';
import { sleep } from '../lib/net.js';
import type { RunningPath } from '../paths/types.js';

const TUNNEL_CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'children', 'tunnel-client.js');

export interface ProcessMemory {
  pid: number;
  rssBeforeKiB: number;
  rssOpenKiB: number;
  /** RSS growth per open tunnel. */
  kibPerTunnel: number;
  fdsBefore: number;
  fdsOpen: number;
  fdsAfter: number;
}

export interface IdleTunnelsResult {
  path: string;
  tunnels: number;
  processes: ProcessMemory[];
  /** Every proxy's fd count came back to its starting value after the tunnels closed. */
  fdsReturned: boolean;
}

interface ClientReport {
  opened?: number;
  closed?: number;
  error?: string;
}

async function holdTunnels(port: number, count: number, nofile: number) {
  const reports: ClientReport[] = [];
  let notify: () => void = () => {};
  const client = start('tunnel-client', process.execPath, [TUNNEL_CLIENT, String(port), String(count)], {
    nofile,
    stdin: 'pipe',
    onLine: (line) => {
      reports.push(JSON.parse(line) as ClientReport);
      notify();
    },
  });
  const next = async (): Promise<ClientReport> => {
    while (reports.length === 0) {
      await Promise.race([
        new Promise<void>((r) => {
          notify = r;
        }),
        client.exited.then(() => {
          throw new Error(`tunnel client exited: ${client.output().slice(-1000)}`);
        }),
      ]);
    }
    return reports.shift()!;
  };
  return {
    opened: async () => {
      const r = await next();
      if (r.error) throw new Error(`tunnel client: ${r.error} after ${r.opened} tunnels`);
      return r.opened ?? 0;
    },
    close: async () => {
      client.child.stdin!.write('close\n');
      await next();
      await stop(client);
    },
  };
}

async function waitForFds(pids: number[], targets: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let counts = pids.map(fdCount);
  while (Date.now() < deadline && counts.some((c, i) => c > targets[i]!)) {
    await sleep(100);
    counts = pids.map(fdCount);
  }
  return counts;
}

export async function runIdleTunnels(p: RunningPath, count: number, nofile: number): Promise<IdleTunnelsResult> {
  const pids = p.proxyPids();
  // Warm up every code path the tunnels take, so the baseline is not the cold process.
  const warm = await holdTunnels(p.echoPort, 200, nofile);
  await warm.opened();
  await warm.close();
  await sleep(1000);
  const rssBefore = pids.map(rssKiB);
  const fdsBefore = await waitForFds(pids, pids.map(fdCount), 0);

  const tunnels = await holdTunnels(p.echoPort, count, nofile);
  const opened = await tunnels.opened();
  await sleep(1000);
  const rssOpen = pids.map(rssKiB);
  const fdsOpen = pids.map(fdCount);
  await tunnels.close();
  const fdsAfter = await waitForFds(pids, fdsBefore, 15_000);

  return {
    path: p.name,
    tunnels: opened,
    processes: pids.map((pid, i) => ({
      pid,
      rssBeforeKiB: rssBefore[i]!,
      rssOpenKiB: rssOpen[i]!,
      kibPerTunnel: (rssOpen[i]! - rssBefore[i]!) / opened,
      fdsBefore: fdsBefore[i]!,
      fdsOpen: fdsOpen[i]!,
      fdsAfter: fdsAfter[i]!,
    })),
    fdsReturned: fdsAfter.every((c, i) => c <= fdsBefore[i]!),
  };
}
