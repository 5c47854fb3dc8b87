/**
 * A duplex view of a socket whose first bytes were already read by JS (a PROXY header parse
 * read past the header). node:tls wraps a net.Socket's libuv handle directly and would never see
 * bytes sitting in the JS buffer (socket.unshift does not help), so TLS over such a socket goes
 * through this stream instead, which replays `head` before the socket's own bytes.
 */
import { Duplex } from 'node:stream';
import type net from 'node:net';

export function prependedSocket(socket: net.Socket, head: Buffer): Duplex {
  const stream = new Duplex({
    allowHalfOpen: true,
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      socket.write(chunk, cb);
    },
    final(cb) {
      socket.end(cb);
    },
    destroy(err, cb) {
      socket.destroy(err ?? undefined);
      cb(err);
    },
  });
  stream.push(head);
  socket.on('data', (d: Buffer) => {
    if (!stream.push(d)) socket.pause();
  });
  socket.on('end', () => stream.push(null));
  socket.on('error', (err) => stream.destroy(err));
  socket.on('close', () => {
    if (!stream.destroyed) stream.destroy();
  });
  return stream;
}
