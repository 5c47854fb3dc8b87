/**
 * Serves this process's Prometheus metrics to the outer on vsock://any:17005: the inner's admin
 * endpoint is on the enclave's loopback, which nothing outside the enclave can reach. The outer
 * asks with a MetricsRequest frame and gets the exposition text back in a MetricsResponse. Only
 * the parent (`vsock.parent_cid`, CID 3 on Nitro) may ask (shared/wire/frame-server.ts); scrapes may overlap, so it is not
 * an exclusive channel.
 */
import { logger } from '../../shared/log/logger.js';
import { renderMetrics } from '../../shared/metrics/registry.js';
import { VSOCK_CID_ANY } from '../../shared/transport/address.js';
import { vsockSettings } from '../../shared/transport/vsock.js';
import { encodeFrame, FrameType } from '../../shared/wire/frame.js';
import { serveFrames, type FrameServer } from '../../shared/wire/frame-server.js';
import { PairPort } from '../../shared/wire/ports.js';

const log = logger('metrics-export');

export class MetricsExporter {
  private server: FrameServer | undefined;

  async start(): Promise<void> {
    this.server = await serveFrames({
      what: 'metrics channel',
      address: { kind: 'vsock', cid: VSOCK_CID_ANY, port: PairPort.Metrics },
      log,
      peerCid: vsockSettings().parentCid,
      exclusive: false,
      accept: ({ socket }) => ({
        frames: (frames) => {
          for (const f of frames) {
            if (f.type !== FrameType.MetricsRequest) continue;
            void renderMetrics().then(
              ({ body, contentType }) => socket.write(encodeFrame(FrameType.MetricsResponse, { content_type: contentType, body })),
              (err: unknown) => socket.write(encodeFrame(FrameType.MetricsResponse, { error: (err as Error).message })),
            );
          }
        },
      }),
    });
  }

  async close(): Promise<void> {
    await this.server?.close();
  }
}
