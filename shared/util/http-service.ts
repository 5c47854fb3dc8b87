/**
 * The small HTTP services on loopback inside the enclave (KMS proxy, IMDS endpoint, attestation
 * API) share one way to listen, read a bounded body and answer, so limits and shutdown behave
 * the same everywhere.
 */
import http from 'node:http';
import type net from 'node:net';
import { ProxyError, TransportError, errnoOf, messageOf } from '../errors/index.js';
import { type Address, formatAddress } from '../transport/index.js';

export interface HttpService {
  /** http://host:port of the bound listener (the real port when 0 was asked for). */
  url: string;
  server: http.Server;
  close(): Promise<void>;
}

export class BodyTooLargeError extends ProxyError {}

export async function listenHttp(address: Address, handler: http.RequestListener): Promise<HttpService> {
  if (address.kind === 'vsock') throw new TransportError('listen', formatAddress(address), 'loopback HTTP services listen on tcp:// or unix:// addresses', 'EINVAL');
  const server = http.createServer({ keepAliveTimeout: 5000 }, handler);
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new TransportError('listen', formatAddress(address), messageOf(err), errnoOf(err), err)));
    if (address.kind === 'tcp') server.listen({ host: address.host, port: address.port }, resolve);
    else server.listen({ path: address.path }, resolve);
  });
  const a = server.address();
  const url = typeof a === 'string' || a === null ? `http://unix:${address.kind === 'unix' ? address.path : ''}` : `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  return {
    url,
    server,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    }),
  };
}

/** The whole request body, refused once it passes `limit` bytes (the rest is not read). */
export function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(new BodyTooLargeError('body_too_large', `request body of ${declared} bytes exceeds the limit of ${limit}`, { limit, size: declared }));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new BodyTooLargeError('body_too_large', `request body exceeds the limit of ${limit} bytes`, { limit }));
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

export function send(res: http.ServerResponse, status: number, body: string | Buffer, headers: Record<string, string> = {}): void {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { 'content-length': String(bytes.length), ...headers });
  res.end(bytes);
}

export function sendText(res: http.ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  send(res, status, text, { 'content-type': 'text/plain', ...headers });
}

export function sendJson(res: http.ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  send(res, status, JSON.stringify(value), { 'content-type': 'application/json', ...headers });
}
