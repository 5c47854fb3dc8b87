/**
 * One request and its response as the HTTP listener handles them, whatever the client spoke:
 * HTTP/1.1 (Node's IncomingMessage + ServerResponse) or HTTP/2 (one stream of a session). Routing,
 * forwarding, the proxy's own answers and the access line are written once, against this; the two
 * adapters below are the only places that know the difference.
 */
import http from 'node:http';
import http2 from 'node:http2';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { headerPairs } from '../../shared/util/header-pairs.js';

export type ResponseHeaders = Record<string, string | string[] | number>;

export interface Exchange {
  method: string;
  /** The request target: path and query. */
  url: string;
  /** `Host` (HTTP/1.1) or `:authority` (HTTP/2); empty when absent. */
  host: string;
  /** Request headers in HTTP/1.1 raw form ([name, value, …], no pseudo-headers, `host` included). */
  rawHeaders: string[];
  /** The request body, or null when the request has none. */
  body: Readable | null;
  /** Write the response head; the body then goes to `sink`. */
  writeHead(status: number, headers: ResponseHeaders): void;
  /** A complete answer of the proxy's own (404, 431, 502, the attestation document). */
  answer(status: number, headers: ResponseHeaders, body: string | Buffer, opts?: { close?: boolean }): void;
  headersSent(): boolean;
  statusCode(): number;
  /** Where the response body is written; 'close' on it means the exchange is over, one way or another. */
  sink: Writable;
  /** Bytes read and written for this exchange so far (the connection's, for HTTP/1.1). */
  bytes(): { in: number; out: number };
}

function hasBody(headers: http.IncomingHttpHeaders): boolean {
  const length = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

export function http1Exchange(req: http.IncomingMessage, res: http.ServerResponse): Exchange {
  const socket = req.socket;
  const readAtStart = socket.bytesRead;
  const writtenAtStart = socket.bytesWritten;
  return {
    method: req.method ?? '',
    url: req.url ?? '/',
    host: req.headers.host ?? '',
    rawHeaders: req.rawHeaders,
    body: hasBody(req.headers) ? req : null,
    writeHead: (status, headers) => {
      res.writeHead(status, headers);
    },
    answer(status, headers, body, opts) {
      res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body), ...(opts?.close ? { connection: 'close' } : {}) });
      res.end(body);
    },
    headersSent: () => res.headersSent,
    statusCode: () => res.statusCode,
    // A ServerResponse is a legacy stream with the Writable surface undici and the close checks use.
    sink: res as unknown as Writable,
    bytes: () => ({ in: socket.bytesRead - readAtStart, out: socket.bytesWritten - writtenAtStart }),
  };
}

const { HTTP2_HEADER_AUTHORITY, HTTP2_HEADER_METHOD, HTTP2_HEADER_PATH, HTTP2_HEADER_STATUS } = http2.constants;

export function http2Exchange(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, rawHeaders: string[]): Exchange {
  let status = 0;
  let bytesOut = 0;
  let bytesIn = 0;
  const h1Raw: string[] = [];
  let host: string | undefined;
  for (const [name, value] of headerPairs(rawHeaders)) {
    if (name.startsWith(':')) continue;
    if (name === 'host') host = value;
    h1Raw.push(name, value);
  }
  const authority = String(headers[HTTP2_HEADER_AUTHORITY] ?? host ?? '');
  if (host === undefined && authority) h1Raw.unshift('host', authority);
  // An HTTP/2 request has a body unless its HEADERS frame ended the stream. undici destroys a request
  // body once it has sent it, and this stream is also where the response goes: it gets a pipe of its own.
  const body = stream.readableEnded || stream.endAfterHeaders ? null : stream.pipe(new PassThrough());
  stream.on('data', (d: Buffer) => {
    bytesIn += d.length;
  });
  const respond = (s: number, h: ResponseHeaders, endStream: boolean) => {
    status = s;
    // HTTP/2 forbids connection-specific fields (RFC 9113 §8.2.2); the caller may have added one.
    const { connection: _connection, ...rest } = h;
    stream.respond({ ...rest, [HTTP2_HEADER_STATUS]: s }, { endStream });
  };
  const sink = stream as unknown as Writable;
  const write = sink.write.bind(sink);
  sink.write = ((chunk: Buffer, ...args: never[]) => {
    bytesOut += chunk.length;
    return write(chunk, ...args);
  }) as Writable['write'];
  return {
    method: String(headers[HTTP2_HEADER_METHOD] ?? ''),
    url: String(headers[HTTP2_HEADER_PATH] ?? '/'),
    host: authority,
    rawHeaders: h1Raw,
    body,
    writeHead: (s, h) => respond(s, h, false),
    answer(s, h, text) {
      if (stream.destroyed) return;
      respond(s, { ...h, 'content-length': Buffer.byteLength(text) }, false);
      bytesOut += Buffer.byteLength(text);
      stream.end(text);
    },
    headersSent: () => stream.headersSent,
    statusCode: () => status,
    sink,
    bytes: () => ({ in: bytesIn, out: bytesOut }),
  };
}
