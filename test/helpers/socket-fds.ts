/** Raw socket fds for addon tests: connected loopback TCP pairs taken away from libuv. */
import net from 'node:net';
import type { NativeAddon } from '../../shared/native/addon.js';

export interface RawPair {
  /** The fd the test owns (a dup of the accepted side). */
  fd: number;
  /** The ordinary net.Socket at the other end. */
  peer: net.Socket;
}

function fdOf(socket: net.Socket): number {
  return (socket as unknown as { _handle: { fd: number } })._handle.fd;
}

/** A connected TCP pair on loopback: one end as a raw fd, the other as a net.Socket. */
export async function rawSocketPair(addon: NativeAddon): Promise<RawPair> {
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const peer = net.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, allowHalfOpen: true });
  peer.on('error', () => {});
  await new Promise((r) => peer.once('connect', r));
  const socket = await accepted;
  const fd = addon.dupFd(fdOf(socket));
  socket.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  return { fd, peer };
}
