/**
 * Carries the enclave's log lines (the inner's own JSON lines and the app's output) to the outer
 * over vsock://parent:17001: inside a Nitro enclave stdout only reaches the console of a debug-mode
 * enclave, so without this an operator is blind.
 *
 * Best effort, by design: lines wait in a byte-bounded buffer while the outer is unreachable; when
 * it overflows the oldest lines go and the next delivery starts with one line saying how many. The
 * audit stream, not this, is the channel with delivery guarantees.
 */
import type net from 'node:net';
import { logger } from '../../shared/log/logger.js';
import { present } from '../../shared/util/checked.js';
import { parentChannel } from '../../shared/transport/vsock.js';
import { Redialer } from '../../shared/transport/redial.js';
import { encodeFrame, FrameType } from '../../shared/wire/frame.js';
import { PairPort } from '../../shared/wire/ports.js';

const log = logger('logs');
/** Lines per frame are bounded by bytes so a frame stays far below the wire limit. */
const FRAME_BYTES = 64 * 1024;

export interface LogForwarderOptions {
  maxBufferedBytes: number;
}

export class LogForwarder {
  private pending: string[] = [];
  private pendingBytes = 0;
  private dropped = 0;
  private scheduled = false;
  private readonly maxBufferedBytes: number;
  private readonly channel = new Redialer({
    address: parentChannel(PairPort.Logs),
    what: 'log channel',
    log,
    onConnected: (socket: net.Socket) => {
      socket.on('data', () => {});
      socket.on('drain', () => this.flush());
      socket.resume();
      this.flush();
    },
  });

  constructor(opts: LogForwarderOptions) {
    this.maxBufferedBytes = opts.maxBufferedBytes;
  }

  start(): void {
    this.channel.start();
  }

  /** Queue one line (without its newline). */
  write(line: string): void {
    this.pending.push(line);
    this.pendingBytes += line.length;
    while (this.pendingBytes > this.maxBufferedBytes && this.pending.length > 1) {
      this.pendingBytes -= present(this.pending.shift(), 'oldest queued log line').length;
      this.dropped += 1;
    }
    if (!this.scheduled) {
      // Coalesce a burst of lines into a few frames.
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  private flush(): void {
    const socket = this.channel.socket;
    if (!socket || socket.destroyed || socket.writableNeedDrain) return;
    if (this.dropped > 0) {
      const notice = JSON.stringify({
        level: 'warn',
        time: new Date().toISOString(),
        side: 'inner',
        component: 'logs',
        dropped: this.dropped,
        msg: `${this.dropped} log lines were dropped while the outer was unreachable`,
      });
      this.dropped = 0;
      this.pending.unshift(notice);
      this.pendingBytes += notice.length;
    }
    while (this.pending.length > 0) {
      const lines: string[] = [];
      let bytes = 0;
      for (
        let line = this.pending[0];
        line !== undefined && (lines.length === 0 || bytes + line.length <= FRAME_BYTES);
        line = this.pending[0]
      ) {
        this.pending.shift();
        bytes += line.length;
        lines.push(line);
      }
      this.pendingBytes -= bytes;
      if (!socket.write(encodeFrame(FrameType.Log, { lines }))) return;
    }
  }

  /** Send what is queued, stop reconnecting, and close once it left (bounded). */
  stop(timeoutMs = 1000): Promise<void> {
    this.flush();
    return this.channel.close(timeoutMs);
  }
}
