/**
 * New connections per second: `concurrency` loops, each connecting, exchanging one byte with the
 * echo server and closing, for a fixed time. Every connection crosses every hop of the path.
 * Each connection's time from connect() to the echoed byte is kept: the latency of a request on a
 * fresh connection (what an SDK that opens a tunnel per request sees).
 */
import net from 'node:net';
import { percentile } from '../lib/stats.js';

/** Microseconds from connect() to the echoed byte, or null when the connection failed. */
function oneConnection(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const s = net.connect({ host: '127.0.0.1', port, noDelay: true });
    s.once('connect', () => s.write('.'));
    s.once('data', () => {
      s.destroy();
      resolve(Number(process.hrtime.bigint() - started) / 1000);
    });
    s.once('error', () => {
      s.destroy();
      resolve(null);
    });
    s.once('close', () => resolve(null));
  });
}

export interface ConnRateResult {
  connsPerSecond: number;
  /** Connections that completed (the denominator of per-connection figures). */
  completed: number;
  failures: number;
  /** connect() to echoed byte, over every completed connection. */
  p50us: number;
  p99us: number;
}

export async function runConnRate(port: number, durationMs: number, concurrency: number): Promise<ConnRateResult> {
  const latencies: number[] = [];
  let failures = 0;
  const started = Date.now();
  const deadline = started + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < deadline) {
        const us = await oneConnection(port);
        if (us === null) failures++;
        else latencies.push(us);
      }
    }),
  );
  return {
    connsPerSecond: latencies.length / ((Date.now() - started) / 1000),
    completed: latencies.length,
    failures,
    p50us: percentile(latencies, 50),
    p99us: percentile(latencies, 99),
  };
}
