/**
 * HTTP on an accepted socket, with the deadlines Node does not give it.
 *
 * Every HTTP-parsing listener (egress absolute-form, KMS proxy, IMDS endpoint, attestation API,
 * admin) accepts through its own listener and hands each socket to an `http.Server` that never
 * `listen()`s. Node arms `headersTimeout` / `requestTimeout` only from a listening server's
 * periodic check, so such sockets had no deadline at all: a half-sent request stayed open for
 * ever (issue 9). serveHttpConnection arms them per connection instead:
 *
 *   - the first request's head must be complete `headMs` after accept;
 *   - after a response, the connection is closed unless the next request's head is complete
 *     within `keepAliveMs` (an idle keep-alive connection and a slow next head alike);
 *   - while a request is being answered, no deadline: a body or a response may take its time
 *     (KMS and upstream calls have their own timeouts).
 *
 * Each connection gets its own `http.Server`, so handlers close over their connection instead of
 * looking it up by socket.
 */
import http from 'node:http';
import type net from 'node:net';
import type { ConnectionHandler } from './types.js';

export interface HttpDeadlines {
  /** The first request's head, counted from accept. */
  headMs: number;
  /** Idle after a response until the next request's head is complete. */
  keepAliveMs: number;
}

/** Node's own `headersTimeout` is 60 s; a loopback client has no excuse for more than 15. */
export const DEFAULT_HTTP_DEADLINES: HttpDeadlines = { headMs: 15_000, keepAliveMs: 5_000 };

/** Give `socket` to `server` (one connection's server) and enforce the deadlines on it. */
export function serveHttpConnection(server: http.Server, socket: net.Socket, deadlines: HttpDeadlines): void {
  let inFlight = 0;
  let timer: NodeJS.Timeout | undefined = setTimeout(() => socket.destroy(), deadlines.headMs);
  const disarm = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  server.prependListener('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
    inFlight += 1;
    disarm();
    res.once('close', () => {
      inFlight -= 1;
      if (inFlight === 0 && !socket.destroyed) timer = setTimeout(() => socket.destroy(), deadlines.keepAliveMs);
    });
  });
  socket.once('close', disarm);
  server.emit('connection', socket);
  // Listeners accept paused (pass-through legs hand bytes to the pump); HTTP reads them itself.
  socket.resume();
}

/**
 * A loopback HTTP service (KMS proxy, IMDS endpoint, attestation API) as a listener kind: the
 * generic Listener accepts, limits, counts and drains; Node's HTTP parser serves each socket.
 */
export function httpListenerKind(
  requestListener: http.RequestListener,
  deadlines: HttpDeadlines = DEFAULT_HTTP_DEADLINES,
): ConnectionHandler {
  return (socket, ctx) =>
    new Promise((resolve) => {
      const onAbort = () => socket.destroy();
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      socket.once('close', () => {
        ctx.signal.removeEventListener('abort', onAbort);
        resolve({ bytesIn: socket.bytesRead, bytesOut: socket.bytesWritten });
      });
      const server = http.createServer({ keepAliveTimeout: deadlines.keepAliveMs, requestTimeout: 0 }, requestListener);
      serveHttpConnection(server, socket, deadlines);
    });
}
