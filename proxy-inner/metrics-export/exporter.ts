/**
 * Serves this process's Prometheus metrics to the outer on vsock://any:17005: the inner's admin
 * endpoint is on the enclave's loopback, which nothing outside the enclave can reach. The outer
 * asks with a MetricsRequest frame and gets the exposition text back in a MetricsResponse.
 */
import { logger } from '../../shared/log/logger.js';
import { registry } from '../../shared/metrics/registry.js';
import { listen, type Listening } from '../../shared/transport/index.js';
import { VSOCK_CID_ANY } from '../../shared/transport/address.js';
import { encodeFrame, FrameDecoder, FrameType } from '../../shared/wire/frame.js';
import { PairPort } from '../../shared/wire/ports.js';

const log = logger('metrics-export');

export class MetricsExporter {
  private listening: Listening | undefined;

  async start(): Promise<void> {
    this.listening = await listen({ kind: 'vsock', cid: VSOCK_CID_ANY, port: PairPort.Metrics }, (socket) => {
      const decoder = new FrameDecoder();
      socket.on('error', () => {});
      socket.on('end', () => socket.end());
      socket.on('data', (chunk: Buffer) => {
        let frames;
        try {
          frames = decoder.push(chunk);
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'malformed metrics request; closing the connection');
          socket.destroy();
          return;
        }
        for (const f of frames) {
          if (f.type !== FrameType.MetricsRequest) continue;
          void registry.metrics().then(
            (body) => socket.write(encodeFrame(FrameType.MetricsResponse, { content_type: registry.contentType, body })),
            (err: unknown) => socket.write(encodeFrame(FrameType.MetricsResponse, { error: (err as Error).message })),
          );
        }
      });
      socket.resume();
    });
  }

  async close(): Promise<void> {
    await this.listening?.close();
  }
}
