/**
 * HTTP/1.1 keep-alive load with wrk (Debian's): fixed connections for a fixed time, then req/s and
 * the p99 latency wrk measured (`--latency`, corrected for coordinated omission by wrk itself).
 */
import { run } from '../lib/processes.js';

export interface HttpLoadResult {
  requestsPerSecond: number;
  p99us: number;
  requests: number;
  /** Non-2xx/3xx answers and socket errors; any is a failed trial. */
  errors: number;
}

function micros(text: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text);
  if (!m) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v : m[2] === 'ms' ? v * 1000 : v * 1_000_000;
}

export function parseWrk(out: string): HttpLoadResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p99 = /^\s+99%\s+(\S+)/m.exec(out);
  const total = /(\d+) requests in/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (!rps || !p99 || !total) throw new Error(`cannot read wrk's output:\n${out}`);
  const errors = Number(non2xx?.[1] ?? 0) + (socketErrors ? socketErrors.slice(1).reduce((s, x) => s + Number(x), 0) : 0);
  return { requestsPerSecond: Number(rps[1]), p99us: micros(p99[1]!), requests: Number(total[1]), errors };
}

export async function runHttpLoad(url: string, seconds: number, connections: number): Promise<HttpLoadResult> {
  const out = await run('wrk', 'wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', url]);
  return parseWrk(out);
}
