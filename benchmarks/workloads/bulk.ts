/**
 * Bulk throughput with iperf3 (one TCP stream, client → server), and the relays' CPU for it.
 * CPU seconds per GB = relay CPU over the whole iperf3 run / bytes moved in that run (both hops
 * together, so "per GB delivered").
 */
import { run } from '../lib/processes.js';
import { sleep } from '../lib/net.js';
import type { RunningPath } from '../paths/types.js';

export interface BulkResult {
  gbps: number;
  cpuSecondsPerGB: number;
}

interface IperfReport {
  intervals: { sum: { bytes: number } }[];
  end: { sum_received: { bits_per_second: number } };
  error?: string;
}

/** Lets connections of the previous run finish closing (socat children exit and are reaped). */
const SETTLE_MS = 300;

export async function runBulk(path: RunningPath, seconds: number): Promise<BulkResult> {
  if (path.bulkPort === undefined) throw new Error('no bulk port (iperf3 missing)');
  const cpuBefore = path.proxyCpuSeconds();
  const out = await run(`iperf3 via ${path.name}`, 'iperf3', [
    '-c',
    '127.0.0.1',
    '-p',
    String(path.bulkPort),
    '-t',
    String(seconds),
    '-O',
    '1',
    '-J',
  ]);
  await sleep(SETTLE_MS);
  const cpu = path.proxyCpuSeconds() - cpuBefore;
  const report = JSON.parse(out) as IperfReport;
  if (report.error) throw new Error(`iperf3 via ${path.name}: ${report.error}`);
  // Every interval, the omitted warm-up second included: the CPU window covers all of them.
  const bytes = report.intervals.reduce((sum, i) => sum + i.sum.bytes, 0);
  return { gbps: report.end.sum_received.bits_per_second / 1e9, cpuSecondsPerGB: bytes > 0 ? cpu / (bytes / 1e9) : Number.NaN };
}
