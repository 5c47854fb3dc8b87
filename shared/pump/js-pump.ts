/**
 * The portable pump: both legs stay in libuv and bytes pass through JavaScript buffers.
 * It is the fallback when the native addon is unavailable, and the reference the native pump is
 * tested against (the same suite runs on both).
 */
import type net from 'node:net';
import { errnoOf, messageOf } from '../errors/index.js';
import type { CloseCause, Pump, PumpEnd, PumpError, PumpOptions, PumpResult, PumpSession } from './types.js';

function isTcp(socket: net.Socket): boolean {
  return (socket as unknown as { _handle?: { constructor?: { name?: string } } })._handle?.constructor?.name === 'TCP';
}

function forward(from: net.Socket, to: net.Socket, count: (n: number) => void): void {
  from.on('data', (chunk: Buffer) => {
    count(chunk.length);
    if (!to.write(chunk)) {
      // Backpressure: stop reading until the slower side has taken what we gave it.
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
}

export const jsPump: Pump = {
  kind: 'js',
  run(downstream: net.Socket, upstream: net.Socket, opts: PumpOptions = {}): PumpSession {
    const started = Date.now();
    let bytesUp = 0;
    let bytesDown = 0;
    let closedBy: CloseCause | undefined;
    let error: PumpError | undefined;
    let lastActivity = Date.now();
    let idleTimer: NodeJS.Timeout | undefined;
    let resolveDone!: (r: PumpResult) => void;
    const done = new Promise<PumpResult>((resolve) => {
      resolveDone = resolve;
    });

    const note = (cause: CloseCause) => {
      closedBy ??= cause;
    };

    const onError = (side: PumpEnd) => (err: Error) => {
      const code = errnoOf(err) ?? 'EIO';
      error ??= { side, code, message: messageOf(err) };
      note(side);
      const other = side === 'downstream' ? upstream : downstream;
      // A reset on one leg becomes a reset on the other where the transport has resets (TCP), so
      // the far peer learns it was not a clean end; Unix and vsock legs can only be closed.
      if (code === 'ECONNRESET' && isTcp(other) && !other.destroyed) other.resetAndDestroy();
      else other.destroy();
    };
    downstream.on('error', onError('downstream'));
    upstream.on('error', onError('upstream'));

    // Half-close: FIN from one side becomes shutdown(SHUT_WR) on the other once its bytes are written.
    // A paused net.Socket still emits 'end' when EOF arrives with nothing buffered, so a FIN that
    // came during the handshake may already be behind us: that side is then ended from the start.
    const onEnd = (side: PumpEnd, other: net.Socket) => () => {
      note(side);
      other.end();
    };
    if (downstream.readableEnded) process.nextTick(onEnd('downstream', upstream));
    else downstream.on('end', onEnd('downstream', upstream));
    if (upstream.readableEnded) process.nextTick(onEnd('upstream', downstream));
    else upstream.on('end', onEnd('upstream', downstream));

    let closed = 0;
    const onLegClosed = (side: PumpEnd, leg: net.Socket, other: net.Socket) => () => {
      const orderly = leg.readableEnded && leg.writableFinished;
      if (!orderly) {
        // This leg went away without finishing both directions: the other cannot continue alone.
        note(side);
        if (!other.destroyed) other.destroy();
      }
      closed += 1;
      if (closed < 2) return;
      if (idleTimer) clearInterval(idleTimer);
      resolveDone({
        bytesUp,
        bytesDown,
        closedBy: closedBy ?? 'aborted',
        ...(error ? { error } : {}),
        durationMs: Date.now() - started,
        path: 'js',
      });
    };
    downstream.once('close', onLegClosed('downstream', downstream, upstream));
    upstream.once('close', onLegClosed('upstream', upstream, downstream));

    if (opts.headUp && opts.headUp.length > 0) {
      bytesUp += opts.headUp.length;
      upstream.write(opts.headUp);
    }
    if (opts.headDown && opts.headDown.length > 0) {
      bytesDown += opts.headDown.length;
      downstream.write(opts.headDown);
    }
    forward(downstream, upstream, (n) => {
      bytesUp += n;
      lastActivity = Date.now();
    });
    forward(upstream, downstream, (n) => {
      bytesDown += n;
      lastActivity = Date.now();
    });
    downstream.resume();
    upstream.resume();

    if (opts.idleTimeoutMs && opts.idleTimeoutMs > 0) {
      const idle = opts.idleTimeoutMs;
      idleTimer = setInterval(
        () => {
          if (Date.now() - lastActivity >= idle) {
            note('idle_timeout');
            downstream.destroy();
            upstream.destroy();
          }
        },
        Math.min(idle, 1000),
      );
      idleTimer.unref();
    }

    return {
      done,
      abort(_reason?: string) {
        note('aborted');
        downstream.destroy();
        upstream.destroy();
      },
    };
  },
};
