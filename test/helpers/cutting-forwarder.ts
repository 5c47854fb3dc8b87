/**
 * A TCP forwarder on loopback, in the test process, between a registry client and a registry,
 * that interrupts one blob upload: it follows the client's HTTP/1.1 requests on each connection
 * (heads, Content-Length bodies; keep-alive included) and, on the first
 * `PUT …/blobs/uploads/…` whose body is at least `minBody` bytes, either
 *   - `cut`: forwards `afterBytes` bytes of that body and then destroys both sockets, or
 *   - `answer`: forwards none of that request, reads its whole body and answers it itself (a
 *     401 challenge, say), closing the connection after the answer.
 * Byte counts, not timers, decide where the interruption falls, so the test is deterministic.
 * After that one interruption it forwards everything untouched. A body it cannot frame
 * (chunked) is passed through and never interrupted.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export type Interruption = { kind: 'cut'; afterBytes: number } | { kind: 'answer'; status: number; headers: Record<string, string> };

export interface Cut {
  /** The request path (with the query: the upload's `digest=`). */
  path: string;
  digest: string | null;
  /** The body's declared size, and how much of it reached the registry. */
  size: number;
  forwarded: number;
}

export interface CuttingForwarder {
  /** HOST:PORT to name instead of the registry's. */
  host: string;
  /** The request interrupted, once it is. */
  readonly cut: Cut | null;
  close(): Promise<void>;
}

type State =
  | { kind: 'head'; buffered: Buffer }
  | { kind: 'body'; remaining: number }
  | { kind: 'interrupting'; remaining: number; cut: Cut }
  | { kind: 'raw' };

export async function startCuttingForwarder(
  upstream: string,
  opts: { minBody: number; interrupt: Interruption },
): Promise<CuttingForwarder> {
  const [upstreamHost = '', upstreamPort = ''] = upstream.split(/:(?=\d+$)/);
  let interrupted: Cut | null = null;
  const sockets = new Set<net.Socket>();

  const server = net.createServer((client) => {
    const registry = net.connect(Number(upstreamPort), upstreamHost);
    for (const s of [client, registry]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        registry.destroy();
      });
    }
    registry.pipe(client);
    registry.on('end', () => client.end());
    client.on('end', () => registry.end());

    let state: State = { kind: 'head', buffered: Buffer.alloc(0) };
    const forward = (bytes: Buffer) => {
      if (bytes.length && !registry.write(bytes)) {
        client.pause();
        registry.once('drain', () => client.resume());
      }
    };

    /** Feed client bytes through the request framing; returns once `data` is used up or the connection is cut. */
    const feed = (data: Buffer): void => {
      while (data.length) {
        if (state.kind === 'raw') return forward(data);
        if (state.kind === 'head') {
          const all = Buffer.concat([state.buffered, data]);
          const end = all.indexOf('\r\n\r\n');
          if (end < 0) {
            state = { kind: 'head', buffered: all };
            return;
          }
          const head = all.subarray(0, end + 4);
          data = all.subarray(end + 4);
          const [requestLine = '', ...fields] = head.toString('latin1').split('\r\n');
          const header = (name: string) =>
            fields
              .find((f) => f.toLowerCase().startsWith(`${name}:`))
              ?.slice(name.length + 1)
              .trim();
          const [method, path = ''] = requestLine.split(' ');
          const length = Number(header('content-length') ?? 0);
          if (header('transfer-encoding') !== undefined) state = { kind: 'raw' };
          else if (interrupted === null && method === 'PUT' && path.includes('/blobs/uploads/') && length >= opts.minBody) {
            const forwarded = opts.interrupt.kind === 'cut' ? opts.interrupt.afterBytes : 0;
            const digest = new URL(path, 'http://x').searchParams.get('digest');
            state = {
              kind: 'interrupting',
              remaining: opts.interrupt.kind === 'cut' ? forwarded : length,
              cut: { path, digest, size: length, forwarded },
            };
          } else state = { kind: 'body', remaining: length };
          if (opts.interrupt.kind === 'cut' || state.kind !== 'interrupting') forward(head);
          continue;
        }
        const take = Math.min(state.remaining, data.length);
        if (state.kind === 'body' || opts.interrupt.kind === 'cut') forward(data.subarray(0, take));
        data = data.subarray(take);
        state.remaining -= take;
        if (state.kind === 'interrupting' && state.remaining === 0) {
          interrupted = state.cut;
          registry.destroy();
          if (opts.interrupt.kind === 'cut') client.destroy();
          else {
            const { status, headers } = opts.interrupt;
            const fields = Object.entries({ ...headers, 'content-length': '0', connection: 'close' }).map(([k, v]) => `${k}: ${v}\r\n`);
            client.end(`HTTP/1.1 ${status} Interrupted\r\n${fields.join('')}\r\n`);
          }
          return;
        }
        if (state.kind === 'body' && state.remaining === 0) state = { kind: 'head', buffered: Buffer.alloc(0) };
      }
    };
    client.on('data', (d: Buffer) => feed(d));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    get cut() {
      return interrupted;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
