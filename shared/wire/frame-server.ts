/**
 * One server for the pair's frame channels (status, logs and audit on the outer, metrics on the
 * inner): listen, accept only the expected peer, decode frames, and close a connection whose
 * frames are malformed without touching the others.
 *
 * Peer rules (issue 9): a connection from any other vsock CID than the channel's is refused and
 * logged (shared/transport/peer.ts). An `exclusive` channel takes one stream at a time: while a
 * connection is open a second one is refused and logged, so a process that reaches the port
 * cannot slip a fake `exited` status in beside the enclave's own stream (the audit collector
 * applies the same rule per boot, on the stream's first record). The inner only redials after
 * its connection closed, so it never needs two.
 */
import type net from 'node:net';
import { messageOf } from '../errors/index.js';
import type { Logger } from '../log/logger.js';
import { listen, type Address, type Listening } from '../transport/index.js';
import { describePeer, peerAllowed, peerOf, type Peer } from '../transport/peer.js';
import { FrameDecoder, type Frame } from './frame.js';

export interface FrameConnection {
  readonly socket: net.Socket;
  readonly peer: Peer;
}

export interface FrameHandler {
  /** The frames decoded from one read, in order; throwing closes this connection. */
  frames(frames: Frame[]): void;
  /** The stream is over: the peer ended it, or it closed (called once). */
  ended?(): void;
}

export interface FrameChannel {
  /** For logs: "status channel", "audit stream", … */
  what: string;
  address: Address;
  log: Logger;
  /** The one vsock CID that may connect (the enclave's on the outer, the parent's on the inner). */
  peerCid: number;
  exclusive: boolean;
  accept(conn: FrameConnection): FrameHandler;
  /** Who is connecting; the kernel is asked by default (tests substitute a CID). */
  identify?: (socket: net.Socket) => Peer;
}

export interface FrameServer {
  readonly listening: Listening;
  /** Stop listening and close every connection. */
  close(): Promise<void>;
}

export async function serveFrames(channel: FrameChannel): Promise<FrameServer> {
  const { what, log } = channel;
  const open = new Set<net.Socket>();
  const identify = channel.identify ?? ((socket: net.Socket) => peerOf(socket, channel.address));
  const refuse = (socket: net.Socket, peer: Peer, why: string) => {
    log.warn({ peer: describePeer(peer) }, `${what}: connection refused: ${why}`);
    socket.destroy();
  };
  const listening = await listen(channel.address, (socket) => {
    socket.on('error', () => {});
    const peer = identify(socket);
    if (!peerAllowed(peer, channel.peerCid)) return refuse(socket, peer, `only vsock CID ${channel.peerCid} may use it`);
    if (channel.exclusive && open.size > 0) return refuse(socket, peer, 'a stream is already open (one per boot)');
    open.add(socket);
    const handler = channel.accept({ socket, peer });
    const decoder = new FrameDecoder();
    // The slot frees when the peer ends its side: its next stream may arrive before our 'close'.
    let over = false;
    const end = () => {
      if (over) return;
      over = true;
      open.delete(socket);
      handler.ended?.();
    };
    socket.on('end', () => {
      end();
      socket.end();
    });
    socket.once('close', end);
    socket.on('data', (chunk: Buffer) => {
      try {
        handler.frames(decoder.push(chunk));
      } catch (err) {
        log.warn({ err: messageOf(err) }, `malformed frame on the ${what}; closing it`);
        socket.destroy();
      }
    });
    socket.resume();
  });
  return {
    listening,
    async close() {
      for (const s of open) s.destroy();
      await listening.close();
    },
  };
}

export interface EnclaveStream {
  what: string;
  address: Address;
  log: Logger;
  enclaveCid: number;
  /** Each frame in order; throwing closes the connection. */
  onFrame(frame: Frame): void;
  /** A stream was accepted / is over (the enclave's supervisor waits for its last words). */
  onOpen?(): void;
  onEnded?(): void;
}

/** The outer's one-stream-per-boot channels from the enclave whose frames stand alone (status, logs). */
export function serveEnclaveStream(s: EnclaveStream): Promise<FrameServer> {
  return serveFrames({
    what: s.what,
    address: s.address,
    log: s.log,
    peerCid: s.enclaveCid,
    exclusive: true,
    accept: () => {
      s.onOpen?.();
      return {
        frames: (frames) => {
          for (const f of frames) s.onFrame(f);
        },
        ended: () => s.onEnded?.(),
      };
    },
  });
}
