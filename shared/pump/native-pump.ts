/**
 * The splice pump: after the handshake, both sockets leave libuv and the addon's pump thread
 * moves their bytes with splice(2); JavaScript hears about the connection once more, when it ends.
 *
 * Hand-over, per socket: wait until Node has flushed what it was asked to write, take whatever
 * Node already read but nobody consumed (it is sent first, after opts.headUp/headDown), dup the fd
 * (close-on-exec) and destroy the net.Socket so libuv drops its epoll registration and its own fd.
 * From then on the JS sockets are closed objects: the connection lives on in the pump, and
 * `session.done` is the only signal of its end.
 *
 * A pair that cannot be handed over (a TLS socket, a socket without an fd) runs on the JS pump,
 * so callers never need to know which sockets qualify.
 */
import type net from 'node:net';
import { choosePumpSettings } from '../native/pump-settings.js';
import { errnoMessage, errnoName, type NativeAddon, type NativePumpOutcome } from '../native/addon.js';
import { messageOf, errnoOf } from '../errors/index.js';
import { jsPump } from './js-pump.js';
import { present } from '../util/checked.js';
import type { Pump, PumpOptions, PumpResult, PumpSession } from './types.js';

interface HandleWithFd {
  fd?: number;
}

function fdOf(socket: net.Socket): number | undefined {
  const handle = (socket as unknown as { _handle?: HandleWithFd | null })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** A socket whose bytes the pump thread can move: a plain stream socket that still has its fd. */
function canHandOver(socket: net.Socket): boolean {
  return !socket.destroyed && !(socket as { encrypted?: boolean }).encrypted && fdOf(socket) !== undefined;
}

/** Resolves once Node has connected the socket and flushed every byte it was asked to write. */
function settled(socket: net.Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (socket.destroyed) {
        cleanup();
        reject(new Error('socket closed before the pump took it over'));
      } else if (!socket.connecting && socket.writableLength === 0) {
        cleanup();
        resolve();
      }
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      socket.off('connect', check);
      socket.off('drain', check);
      socket.off('close', check);
      socket.off('error', onError);
    };
    socket.on('connect', check);
    socket.on('drain', check);
    socket.on('close', check);
    socket.on('error', onError);
    check();
  });
}

/** Bytes Node read from the kernel that no consumer took yet: they belong in front of the stream. */
function takeBuffered(socket: net.Socket): Buffer[] {
  socket.pause();
  const chunks: Buffer[] = [];
  while (socket.readableLength > 0) {
    const chunk: unknown = socket.read();
    if (chunk === null) break;
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  }
  return chunks;
}

function head(first: Buffer | undefined, buffered: Buffer[]): Buffer | undefined {
  const parts = first && first.length > 0 ? [first, ...buffered] : buffered;
  if (parts.length === 0) return undefined;
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

function toResult(o: NativePumpOutcome, startedAt: number): PumpResult {
  return {
    bytesUp: o.bytesUp,
    bytesDown: o.bytesDown,
    closedBy: o.closedBy,
    ...(o.errorSide !== undefined && o.errno !== undefined
      ? { error: { side: o.errorSide, code: errnoName(o.errno), message: errnoMessage(o.errno) } }
      : {}),
    durationMs: Date.now() - startedAt,
    path: o.copied ? 'copy' : 'splice',
  };
}

let configuredAddon: NativeAddon | undefined;

/**
 * The pump engine takes its settings once, before its first connection: whoever starts it first
 * (this pump, or a fast-path listener) calls this.
 */
export function configureNativePump(addon: NativeAddon): void {
  if (configuredAddon === addon) return;
  addon.pumpConfigure(choosePumpSettings());
  configuredAddon = addon;
}

export interface NativePumpOptions {
  /** false: the pump thread copies with read/write instead of splice (tests of the fallback path). */
  splice?: boolean;
}

export function createNativePump(addon: NativeAddon, pumpOptions: NativePumpOptions = {}): Pump {
  const splice = pumpOptions.splice ?? true;
  return {
    kind: 'native',
    run(downstream: net.Socket, upstream: net.Socket, opts: PumpOptions = {}): PumpSession {
      if (!canHandOver(downstream) || !canHandOver(upstream)) return jsPump.run(downstream, upstream, opts);
      configureNativePump(addon);
      const startedAt = Date.now();
      let pumpId: number | undefined;
      let aborted = false;
      let resolveDone!: (r: PumpResult) => void;
      const done = new Promise<PumpResult>((resolve) => {
        resolveDone = resolve;
      });

      const failBeforeHandOver = (side: 'downstream' | 'upstream', err: unknown) => {
        downstream.destroy();
        upstream.destroy();
        resolveDone({
          bytesUp: 0,
          bytesDown: 0,
          closedBy: aborted ? 'aborted' : side,
          ...(aborted ? {} : { error: { side, code: errnoOf(err) ?? 'EIO', message: messageOf(err) } }),
          durationMs: Date.now() - startedAt,
          path: 'none',
        });
      };

      const handOver = () => {
        const headUp = head(opts.headUp, takeBuffered(downstream));
        const headDown = head(opts.headDown, takeBuffered(upstream));
        let downstreamFd: number | undefined;
        let upstreamFd: number | undefined;
        try {
          // canHandOver saw both fds; a socket that lost its handle since then fails here, by name.
          downstreamFd = addon.dupFd(present(fdOf(downstream), 'downstream socket fd'));
          upstreamFd = addon.dupFd(present(fdOf(upstream), 'upstream socket fd'));
        } catch (err) {
          if (downstreamFd !== undefined) addon.closeFd(downstreamFd);
          failBeforeHandOver(downstreamFd === undefined ? 'downstream' : 'upstream', err);
          return;
        }
        // libuv closes only its own fds; the connections live on in the duplicates.
        downstream.destroy();
        upstream.destroy();
        try {
          pumpId = addon.pumpStart(
            {
              downstreamFd,
              upstreamFd,
              splice,
              ...(headUp ? { headUp } : {}),
              ...(headDown ? { headDown } : {}),
              ...(opts.idleTimeoutMs && opts.idleTimeoutMs > 0 ? { idleTimeoutMs: opts.idleTimeoutMs } : {}),
            },
            (outcome) => resolveDone(toResult(outcome, startedAt)),
          );
        } catch (err) {
          // pumpStart closed both fds; there is nothing left to pump.
          failBeforeHandOver('downstream', err);
        }
      };

      // Hand over at once when nothing is in flight (the common case), else when Node is done.
      const ready = [downstream, upstream].every((s) => !s.connecting && s.writableLength === 0);
      if (ready) {
        handOver();
      } else {
        // The first failure tears both sockets down, which settles the other wait too.
        const wait = (socket: net.Socket, side: 'downstream' | 'upstream') =>
          settled(socket).then(
            () => undefined,
            (err: unknown) => {
              downstream.destroy();
              upstream.destroy();
              return { side, err };
            },
          );
        void Promise.all([wait(downstream, 'downstream'), wait(upstream, 'upstream')]).then(([down, up]) => {
          const failure = down ?? up;
          if (failure) failBeforeHandOver(failure.side, failure.err);
          else handOver();
        });
      }

      return {
        done,
        abort(_reason?: string) {
          aborted = true;
          if (pumpId !== undefined) {
            addon.pumpAbort(pumpId);
          } else {
            // Still waiting for Node to flush: closing the sockets ends the wait.
            downstream.destroy();
            upstream.destroy();
          }
        },
      };
    },
  };
}
