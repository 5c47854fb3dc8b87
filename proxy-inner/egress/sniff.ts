/**
 * One port for HTTP and SOCKS5: the first byte tells them apart. A SOCKS5 greeting starts with
 * 0x05; an HTTP request line starts with a method token (ASCII letters). The byte is read, not
 * consumed: it is put back for the protocol handler.
 */
import type net from 'node:net';
import { readPrefix } from '../../shared/util/read-prefix.js';

export type Sniffed = 'socks5' | 'http';

export async function sniffProtocol(socket: net.Socket, timeoutMs: number): Promise<Sniffed> {
  const { value, rest } = await readPrefix(socket, (buf) => (buf.length >= 1 ? { done: true, value: buf[0]!, consumed: 0 } : { done: false }), { timeoutMs, maxBytes: 65536, what: 'first byte' });
  socket.unshift(rest);
  return value === 0x05 ? 'socks5' : 'http';
}
