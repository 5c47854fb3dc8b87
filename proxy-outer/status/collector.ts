/**
 * Receives the enclave's status on vsock://any:17000 and tells the outer runtime about each
 * change. Malformed frames close that connection only; the inner reconnects.
 */
import { EventEmitter } from 'node:events';
import { logger } from '../../shared/log/logger.js';
import { listen, type Listening } from '../../shared/transport/index.js';
import { VSOCK_CID_ANY } from '../../shared/transport/address.js';
import { FrameDecoder, FrameType } from '../../shared/wire/frame.js';
import { PairPort } from '../../shared/wire/ports.js';
import { parseStatus, type EnclaveStatus } from '../../shared/wire/status.js';

const log = logger('status');

export class StatusCollector extends EventEmitter<{ status: [EnclaveStatus] }> {
  private listening: Listening | undefined;
  latest: EnclaveStatus | undefined;

  async start(): Promise<void> {
    this.listening = await listen({ kind: 'vsock', cid: VSOCK_CID_ANY, port: PairPort.Status }, (socket) => {
      const decoder = new FrameDecoder();
      socket.on('error', () => {});
      socket.on('end', () => socket.end());
      socket.on('data', (chunk: Buffer) => {
        let frames;
        try {
          frames = decoder.push(chunk);
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'malformed frame on the status channel; closing it');
          socket.destroy();
          return;
        }
        for (const f of frames) {
          const status = f.type === FrameType.Status ? parseStatus(f.payload) : undefined;
          if (!status) {
            log.warn({ type: f.type }, 'unexpected frame on the status channel; ignored');
            continue;
          }
          this.latest = status;
          this.emit('status', status);
        }
      });
      socket.resume();
    });
  }

  async close(): Promise<void> {
    await this.listening?.close();
  }
}
