/**
 * Keeps the outer informed of the app's state over vsock://parent:17000. The outer may start
 * before or after us, or restart: the reporter reconnects with backoff and re-sends the newest
 * status each time, so the outer always converges on the truth.
 */
import type net from 'node:net';
import { logger } from '../../shared/log/logger.js';
import { connect } from '../../shared/transport/index.js';
import { VSOCK_CID_PARENT } from '../../shared/transport/address.js';
import { encodeFrame, FrameType } from '../../shared/wire/frame.js';
import { PairPort } from '../../shared/wire/ports.js';
import type { EnclaveStatus } from '../../shared/wire/status.js';

const log = logger('status');
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;

export class StatusReporter {
  private current: EnclaveStatus = { state: 'starting' };
  private socket: net.Socket | undefined;
  private stopped = false;
  private retryMs = RETRY_MIN_MS;
  private timer: NodeJS.Timeout | undefined;

  start(): void {
    void this.connectLoop();
  }

  report(status: EnclaveStatus): void {
    this.current = status;
    this.send();
  }

  private send(): void {
    if (this.socket && !this.socket.destroyed) this.socket.write(encodeFrame(FrameType.Status, { ...this.current }));
  }

  private async connectLoop(): Promise<void> {
    if (this.stopped) return;
    try {
      const socket = await connect({ kind: 'vsock', cid: VSOCK_CID_PARENT, port: PairPort.Status }, { timeoutMs: 2000 });
      this.retryMs = RETRY_MIN_MS;
      this.socket = socket;
      socket.on('error', () => {});
      socket.on('data', () => {});
      socket.resume();
      socket.once('close', () => {
        this.socket = undefined;
        if (!this.stopped) this.schedule();
      });
      log.debug('status channel connected');
      this.send();
    } catch (err) {
      log.debug({ err: (err as Error).message }, 'status channel not reachable yet');
      this.schedule();
    }
  }

  private schedule(): void {
    this.timer = setTimeout(() => void this.connectLoop(), this.retryMs);
    this.timer.unref();
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
  }

  /** Send the final status if connected, wait for it to leave (bounded), and stop reconnecting. */
  async stop(timeoutMs = 1000): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const socket = this.socket;
    if (!socket || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      socket.end(() => { clearTimeout(t); resolve(); });
    });
    socket.destroy();
  }
}
