/**
 * New connections per second: `concurrency` loops, each connecting, exchanging one byte with the
 * echo server and closing, for a fixed time. Every connection crosses every hop of the path.
 */
import net from 'node:net';

function oneConnection(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port, noDelay: true });
    s.once('connect', () => s.write('.'));
    s.once('data', () => { s.destroy(); resolve(true); });
    s.once('error', () => { s.destroy(); resolve(false); });
    s.once('close', () => resolve(false));
  });
}

export interface ConnRateResult {
  connsPerSecond: number;
  failures: number;
}

export async function runConnRate(port: number, durationMs: number, concurrency: number): Promise<ConnRateResult> {
  let done = 0;
  let failures = 0;
  const started = Date.now();
  const deadline = started + durationMs;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (Date.now() < deadline) {
      if (await oneConnection(port)) done++;
      else failures++;
    }
  }));
  return { connsPerSecond: done / ((Date.now() - started) / 1000), failures };
}
