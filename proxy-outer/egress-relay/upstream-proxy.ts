/**
 * For parents that may only reach the Internet through a corporate proxy: the relay opens the
 * tunnel through it (HTTP CONNECT, or SOCKS5 with the `socks` package) instead of connecting
 * itself. The proxy resolves the name, so the relay reports no connected address.
 */
import net from 'node:net';
import { ProxyError, messageOf } from '../../shared/errors/index.js';
import { formatHostPort } from '../../shared/transport/address.js';
import { readPrefix } from '../../shared/util/read-prefix.js';

export interface UpstreamProxy {
  kind: 'http' | 'socks5';
  host: string;
  port: number;
}

export class UpstreamProxyError extends ProxyError {
  constructor(
    message: string,
    readonly timedOut = false,
  ) {
    super('upstream_proxy_failed', message, { timedOut });
  }
}

function httpConnect(proxy: UpstreamProxy, host: string, port: number, timeoutMs: number): Promise<{ socket: net.Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: proxy.host, port: proxy.port, allowHalfOpen: true, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new UpstreamProxyError('upstream proxy did not connect in time', true));
    }, timeoutMs);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new UpstreamProxyError(`upstream proxy: ${messageOf(err)}`));
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      const authority = formatHostPort(host, port);
      socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
      readPrefix<string>(
        socket,
        (buf) => {
          const end = buf.indexOf('\r\n\r\n');
          return end < 0 ? { done: false } : { done: true, value: buf.subarray(0, end).toString('latin1'), consumed: end + 4 };
        },
        { timeoutMs, maxBytes: 16384, what: 'upstream proxy CONNECT response' },
      ).then(
        ({ value, rest }) => {
          const status = /^HTTP\/1\.[01] ([0-9]{3})/.exec(value)?.[1];
          if (status !== '200') {
            socket.destroy();
            reject(new UpstreamProxyError(`upstream proxy answered CONNECT with ${status ?? 'garbage'}`));
            return;
          }
          resolve({ socket, rest });
        },
        (err: unknown) => {
          socket.destroy();
          reject(new UpstreamProxyError(`upstream proxy: ${messageOf(err)}`, err instanceof ProxyError && err.code === 'prefix_timeout'));
        },
      );
    });
  });
}

/** A tunnel to host:port through the proxy; `rest` holds destination bytes read with the answer. */
export async function connectThroughProxy(
  proxy: UpstreamProxy,
  host: string,
  port: number,
  timeoutMs: number,
): Promise<{ socket: net.Socket; rest: Buffer }> {
  if (proxy.kind === 'http') return httpConnect(proxy, host, port, timeoutMs);
  // Imported on first use: most outers have no SOCKS5 upstream, and start-up need not load it.
  const { SocksClient } = await import('socks');
  try {
    const { socket } = await SocksClient.createConnection({
      proxy: { host: proxy.host, port: proxy.port, type: 5 },
      command: 'connect',
      destination: { host, port },
      timeout: timeoutMs,
    });
    return { socket, rest: Buffer.alloc(0) };
  } catch (err) {
    throw new UpstreamProxyError(`upstream SOCKS5 proxy: ${messageOf(err)}`, /timed? ?out/i.test(messageOf(err)));
  }
}
