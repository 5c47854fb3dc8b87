/**
 * Read a handshake (PROXY header, wire frame, CONNECT line, SOCKS greeting) from the front of a
 * socket without consuming a byte of what follows it.
 *
 * The parser is asked, after every chunk, whether the bytes so far hold a complete message. Bytes
 * past the message are returned as `rest`, for the caller to hand to the pump as its head: they
 * already left the kernel and must not be lost when the pump takes over.
 */
import type net from 'node:net';
import { ProxyError } from '../errors/index.js';

export type PrefixParse<T> = { done: false } | { done: true; value: T; consumed: number };

export class PrefixError extends ProxyError {}

export interface ReadPrefixOptions {
  timeoutMs: number;
  maxBytes: number;
  /** Used in error messages: "PROXY v2 header", "egress request frame", … */
  what: string;
}

export function readPrefix<T>(
  socket: net.Socket,
  parse: (buf: Buffer) => PrefixParse<T>,
  opts: ReadPrefixOptions,
): Promise<{ value: T; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const finish = (outcome: { err: Error } | { value: T; rest: Buffer }) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.off('close', onEnd);
      socket.pause();
      if ('err' in outcome) reject(outcome.err);
      else resolve(outcome);
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      let r: PrefixParse<T>;
      try {
        r = parse(buf);
      } catch (err) {
        finish({ err: err as Error });
        return;
      }
      if (r.done) {
        finish({ value: r.value, rest: buf.subarray(r.consumed) });
      } else if (buf.length > opts.maxBytes) {
        finish({
          err: new PrefixError('prefix_too_large', `${opts.what} exceeds ${opts.maxBytes} bytes`, {
            what: opts.what,
            limit: opts.maxBytes,
          }),
        });
      }
    };
    const onEnd = () =>
      finish({
        err: new PrefixError('prefix_truncated', `connection closed after ${buf.length} bytes, before a complete ${opts.what}`, {
          what: opts.what,
          received: buf.length,
        }),
      });
    const onError = (err: Error) => finish({ err });
    const timer = setTimeout(
      () =>
        finish({
          err: new PrefixError('prefix_timeout', `no complete ${opts.what} within ${opts.timeoutMs} ms`, {
            what: opts.what,
            received: buf.length,
          }),
        }),
      opts.timeoutMs,
    );
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
    socket.resume();
  });
}
