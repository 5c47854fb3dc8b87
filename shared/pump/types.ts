/**
 * The byte-moving step of every pass-through leg, behind one small interface.
 *
 * A caller accepts a connection, does its handshake (PROXY header, CONNECT, SOCKS), connects the
 * other leg, and then hands both sockets to `pump.run()`. From then on the bytes are the pump's:
 * the caller only learns, once, how many moved each way and how the connection ended. The JS pump
 * and the native splice pump implement the same contract, so callers never know which one ran.
 *
 * Directions: "up" is downstream → upstream (client towards server), "down" the reverse.
 */
import type net from 'node:net';

export type PumpEnd = 'downstream' | 'upstream';

export type CloseCause =
  /** That side sent FIN first; the other direction was drained and closed after it. */
  | PumpEnd
  /** `abort()` was called (shutdown, policy, admin). */
  | 'aborted'
  /** No byte moved in either direction for `idleTimeoutMs`. */
  | 'idle_timeout';

export interface PumpError {
  side: PumpEnd;
  /** OS error name, e.g. ECONNRESET, EPIPE. */
  code: string;
  message: string;
}

/**
 * How a connection's bytes moved: `splice` (kernel pipe, never copied into user space), `copy`
 * (the native pump's read/write loop: splice refused on these sockets, or the pipe budget spent),
 * `js` (through JavaScript streams), `none` (the legs failed before any pump took them).
 */
export type PumpPath = 'splice' | 'copy' | 'js' | 'none';

export interface PumpResult {
  bytesUp: number;
  bytesDown: number;
  closedBy: CloseCause;
  /** Set when the connection ended by an error (a reset, a broken pipe) rather than cleanly. */
  error?: PumpError;
  durationMs: number;
  path: PumpPath;
}

export interface PumpOptions {
  /** Bytes already read from downstream (during a handshake) that must reach upstream first. */
  headUp?: Buffer;
  /** Bytes already read from upstream that must reach downstream first. */
  headDown?: Buffer;
  /** Close both legs after this long without traffic; 0 or undefined disables it. */
  idleTimeoutMs?: number;
}

export interface PumpSession {
  /** Settles once per connection, when both legs are closed. Never rejects. */
  readonly done: Promise<PumpResult>;
  /** Tear both legs down now (a reset is not sent; both sockets are closed). */
  abort(reason?: string): void;
}

export interface Pump {
  readonly kind: 'js' | 'native';
  run(downstream: net.Socket, upstream: net.Socket, opts?: PumpOptions): PumpSession;
}
