/**
 * A loopback HTTP service (KMS proxy, IMDS endpoint, attestation API) as a listener kind: the
 * generic Listener accepts, limits, counts and drains; Node's HTTP parser serves each socket.
 */
import http from 'node:http';
import type { ConnectionHandler } from './types.js';

export function httpListenerKind(requestListener: http.RequestListener): ConnectionHandler {
  const server = http.createServer({ keepAliveTimeout: 5000 }, requestListener);
  return (socket, ctx) => new Promise((resolve) => {
    const onAbort = () => socket.destroy();
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    socket.once('close', () => {
      ctx.signal.removeEventListener('abort', onAbort);
      resolve({ bytesIn: socket.bytesRead, bytesOut: socket.bytesWritten });
    });
    server.emit('connection', socket);
    // Listeners accept paused (pass-through legs hand bytes to the pump); HTTP reads them itself.
    socket.resume();
  });
}
