/**
 * A TCP forwarder on loopback, in the test process, between a registry client and a registry,
 * that cuts one blob upload mid-way: it follows the client's HTTP/1.1 requests on each
 * connection (heads, Content-Length bodies; keep-alive included) and, on the first
 * `PUT …/blobs/uploads/…` whose body is at least `minBody` bytes, forwards `afterBytes` bytes of
 * that body and then destroys both sockets. Byte counts, not timers, decide where the cut falls,
 * so the test is deterministic. After that one cut it forwards everything untouched. A body it
 * cannot frame (chunked) is passed through and never cut.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface Cut {
  /** The request path (with the query: the upload's `digest=`). */
  path: string;
  digest: string | null;
  /** The body's declared size, and how much of it was forwarded before the cut. */
  size: number;
  forwarded: number;
}

export interface CuttingForwarder {
  /** HOST:PORT to name instead of the registry's. */
  host: string;
  /** The cut made, once it is made. */
  readonly cut: Cut | null;
  close(): Promise<void>;
}

type State =
  | { kind: 'head'; buffered: Buffer }
  | { kind: 'body'; remaining: number }
  | { kind: 'cutting'; remaining: number; cut: Cut }
  | { kind: 'raw' };

export async function startCuttingForwarder(upstream: string, opts: { minBody: number; afterBytes: number }): Promise<CuttingForwarder> {
  const [upstreamHost = '', upstreamPort = ''] = upstream.split(/:(?=\d+$)/);
  let cut: Cut | null = null;
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
          forward(head);
          const [requestLine = '', ...fields] = head.toString('latin1').split('\r\n');
          const header = (name: string) =>
            fields
              .find((f) => f.toLowerCase().startsWith(`${name}:`))
              ?.slice(name.length + 1)
              .trim();
          const [method, path = ''] = requestLine.split(' ');
          const length = Number(header('content-length') ?? 0);
          if (header('transfer-encoding') !== undefined) state = { kind: 'raw' };
          else if (cut === null && method === 'PUT' && path.includes('/blobs/uploads/') && length >= opts.minBody)
            state = {
              kind: 'cutting',
              remaining: opts.afterBytes,
              cut: { path, digest: new URL(path, 'http://x').searchParams.get('digest'), size: length, forwarded: opts.afterBytes },
            };
          else state = { kind: 'body', remaining: length };
          continue;
        }
        const take = Math.min(state.remaining, data.length);
        forward(data.subarray(0, take));
        data = data.subarray(take);
        state.remaining -= take;
        if (state.kind === 'cutting' && state.remaining === 0) {
          cut = state.cut;
          client.destroy();
          registry.destroy();
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
      return cut;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
