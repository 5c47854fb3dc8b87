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
  private openChannels = 0;
  private idleWaiters: (() => void)[] = [];

  async start(): Promise<void> {
    this.listening = await listen({ kind: 'vsock', cid: VSOCK_CID_ANY, port: PairPort.Status }, (socket) => {
      const decoder = new FrameDecoder();
      this.openChannels += 1;
      socket.once('close', () => {
        this.openChannels -= 1;
        if (this.openChannels === 0) for (const wake of this.idleWaiters.splice(0)) wake();
      });
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

  /**
   * Resolves once no status connection is open: after an enclave is gone, its last status has
   * either been read by then or was never sent.
   */
  idle(): Promise<void> {
    return this.openChannels === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    await this.listening?.close();
  }
}
