/**
 * One accepted egress connection: created at accept and passed explicitly to every protocol
 * handler, so that no handler needs a socket → state lookup. It numbers the connection's attempts
 * (keep-alive HTTP makes several), knows when the last one was audited, and keeps the tunnel's
 * exact byte counts (the JS socket's own counters stop when the native pump takes the fd over).
 */
import type net from 'node:net';
import type { ConnectionContext } from '../../shared/listener/types.js';
import type { PumpResult, PumpSession } from '../../shared/pump/index.js';
import { formatHostPort } from '../../shared/transport/address.js';

export class EgressConnection {
  /** `127.0.0.1:54321`, `[::1]:54321` or `unix`: the audit record's `src`. */
  readonly src: string;
  private attempts = 0;
  /** Attempts not finished yet: a tunnel outlives its JS socket when the native pump carries it. */
  private open = 0;
  private settledWaiters: (() => void)[] = [];
  /** Payload bytes of the connection's tunnel, exact from the pump. */
  tunnel: { up: number; down: number } | null = null;
  /** Ends the tunnel's pump (set while one runs: the JS socket is gone by then). */
  private abortTunnel: (() => void) | null = null;

  constructor(
    readonly socket: net.Socket,
    readonly ctx: ConnectionContext,
  ) {
    const { remoteAddress, remotePort } = socket;
    this.src = remoteAddress === undefined || remotePort === undefined ? 'unix' : formatHostPort(remoteAddress, remotePort);
  }

  /** The id of a new attempt: the connection id for the first, `<id>.<n>` for later keep-alive requests. */
  beginAttempt(): string {
    this.attempts += 1;
    this.open += 1;
    return this.attempts === 1 ? this.ctx.id : `${this.ctx.id}.${this.attempts}`;
  }

  endAttempt(): void {
    if (--this.open === 0) for (const resolve of this.settledWaiters.splice(0)) resolve();
  }

  /** Resolves once every attempt on the connection has finished (and been audited). */
  settled(): Promise<void> {
    if (this.open === 0) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  /** Drain's deadline passed: close the connection, wherever its bytes are. */
  abort(): void {
    this.socket.destroy();
    this.abortTunnel?.();
  }

  /** Waits for the tunnel's pump to end; `abort()` ends it meanwhile. */
  async carry(session: PumpSession): Promise<PumpResult> {
    this.abortTunnel = () => session.abort('drain deadline');
    try {
      return await session.done;
    } finally {
      this.abortTunnel = null;
    }
  }

  /** What the listener counts for this connection: the tunnel's bytes when there was one. */
  bytes(): { bytesIn: number; bytesOut: number } {
    return this.tunnel
      ? { bytesIn: this.tunnel.up, bytesOut: this.tunnel.down }
      : { bytesIn: this.socket.bytesRead, bytesOut: this.socket.bytesWritten };
  }
}
