/**
 * Request/response latency: one connection, a 64-byte message echoed back, one at a time
 * (closed loop, TCP_NODELAY). Includes the client's and echo server's own event-loop time, the
 * same on every path, so compare paths by their difference to `direct`.
 */
import net from 'node:net';
import { percentile } from '../lib/stats.js';

const MESSAGE = Buffer.alloc(64, 0x61);

export interface LatencyResult {
  p50us: number;
  p99us: number;
}

export async function runLatency(port: number, iterations: number, warmup: number): Promise<LatencyResult> {
  const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const samples: number[] = [];
  try {
    for (let i = 0; i < warmup + iterations; i++) {
      const t0 = process.hrtime.bigint();
      await new Promise<void>((resolve, reject) => {
        let got = 0;
        const onData = (d: Buffer) => {
          got += d.length;
          if (got >= MESSAGE.length) {
            socket.off('data', onData);
            socket.off('error', reject);
            resolve();
          }
        };
        socket.on('data', onData);
        socket.once('error', reject);
        socket.write(MESSAGE);
      });
      if (i >= warmup) samples.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
  } finally {
    socket.destroy();
  }
  return { p50us: percentile(samples, 50), p99us: percentile(samples, 99) };
}
