/**
 * Keeps the outer informed of the app's state over vsock port 17000 of the parent. The outer may start
 * before or after us, or restart: the newest status is re-sent on every (re)connection, so the
 * outer always converges on the truth.
 */
import type net from 'node:net';
import { logger } from '../../shared/log/logger.js';
import { Redialer } from '../../shared/transport/redial.js';
import { parentChannel } from '../../shared/transport/vsock.js';
import { encodeFrame, FrameType } from '../../shared/wire/frame.js';
import { PairPort } from '../../shared/wire/ports.js';
import type { EnclaveStatus } from '../../shared/wire/status.js';

export class StatusReporter {
  private current: EnclaveStatus = { state: 'starting' };
  private readonly channel = new Redialer({
    address: parentChannel(PairPort.Status),
    what: 'status channel',
    log: logger('status'),
    onConnected: (socket: net.Socket) => {
      // The outer never writes on this channel; reading keeps its FIN visible.
      socket.on('data', () => {});
      socket.resume();
      this.send();
    },
  });

  start(): void {
    this.channel.start();
  }

  report(status: EnclaveStatus): void {
    this.current = status;
    this.send();
  }

  private send(): void {
    const socket = this.channel.socket;
    if (socket && !socket.destroyed) socket.write(encodeFrame(FrameType.Status, { ...this.current }));
  }

  /** Stop reconnecting; let the final status leave (bounded) and close. */
  stop(timeoutMs = 1000): Promise<void> {
    return this.channel.close(timeoutMs);
  }
}
