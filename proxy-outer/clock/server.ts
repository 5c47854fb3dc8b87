/**
 * The parent's clock for the enclave, on vsock://any:17006: each ClockRequest frame is answered
 * with a ClockResponse carrying this host's wall-clock time (ms since the epoch). The inner keeps
 * its clock in step with it (proxy-inner/bootstrap/clock-sync.ts), in bounded, logged steps,
 * because the parent is not trusted to be honest about the time either.
 */
import { logger } from '../../shared/log/logger.js';
import { listen, type Listening } from '../../shared/transport/index.js';
import { VSOCK_CID_ANY } from '../../shared/transport/address.js';
import { encodeFrame, FrameDecoder, FrameType } from '../../shared/wire/frame.js';
import { PairPort } from '../../shared/wire/ports.js';

const log = logger('clock');

export async function startClockServer(now: () => number = Date.now): Promise<Listening> {
  return listen({ kind: 'vsock', cid: VSOCK_CID_ANY, port: PairPort.Clock }, (socket) => {
    const decoder = new FrameDecoder();
    socket.on('error', () => {});
    socket.on('end', () => socket.end());
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const f of decoder.push(chunk)) {
          if (f.type === FrameType.ClockRequest) socket.write(encodeFrame(FrameType.ClockResponse, { now_ms: now() }));
        }
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'malformed frame on the clock channel; closing it');
        socket.destroy();
      }
    });
    socket.resume();
  });
}
