/**
 * Receives the enclave's status on vsock://any:17000 and tells the outer runtime about each
 * change. Only the enclave's CID may connect, one stream at a time (shared/wire/frame-server.ts):
 * a fake `exited` from anyone else would make a `role: outer` exit. Malformed frames close that
 * connection only; the inner reconnects.
 */
import { EventEmitter } from 'node:events';
import { logger } from '../../shared/log/logger.js';
import type { Address } from '../../shared/transport/index.js';
import { VSOCK_CID_ANY } from '../../shared/transport/address.js';
import { FrameType } from '../../shared/wire/frame.js';
import { serveEnclaveStream, type FrameServer } from '../../shared/wire/frame-server.js';
import { PairPort } from '../../shared/wire/ports.js';
import { parseStatus, type EnclaveStatus } from '../../shared/wire/status.js';

const log = logger('status');

export interface StatusCollectorOptions {
  /** The enclave's CID: the only peer accepted. */
  enclaveCid: number;
  /** vsock://any:17000 unless given (tests). */
  address?: Address;
}

export class StatusCollector extends EventEmitter<{ status: [EnclaveStatus] }> {
  private server: FrameServer | undefined;
  latest: EnclaveStatus | undefined;
  private streamOpen = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: StatusCollectorOptions) {
    super();
  }

  async start(): Promise<void> {
    this.server = await serveEnclaveStream({
      what: 'status channel',
      address: this.opts.address ?? { kind: 'vsock', cid: VSOCK_CID_ANY, port: PairPort.Status },
      log,
      enclaveCid: this.opts.enclaveCid,
      onOpen: () => {
        this.streamOpen = true;
      },
      onEnded: () => {
        this.streamOpen = false;
        for (const wake of this.idleWaiters.splice(0)) wake();
      },
      onFrame: (f) => {
        const status = f.type === FrameType.Status ? parseStatus(f.payload) : undefined;
        if (!status) {
          log.warn({ type: f.type }, 'unexpected frame on the status channel; ignored');
          return;
        }
        this.latest = status;
        this.emit('status', status);
      },
    });
  }

  /**
   * Resolves once no status stream is open: after an enclave is gone, its last status has either
   * been read by then or was never sent.
   */
  idle(): Promise<void> {
    return this.streamOpen ? new Promise((resolve) => this.idleWaiters.push(resolve)) : Promise.resolve();
  }

  async close(): Promise<void> {
    await this.server?.close();
  }
}
