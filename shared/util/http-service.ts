/**
 * The small HTTP services on loopback inside the enclave (KMS proxy, IMDS endpoint, attestation
 * API) share one way to read a bounded body and to answer, so limits behave the same everywhere.
 */
import type http from 'node:http';
import { ProxyError } from '../errors/index.js';

export class BodyTooLargeError extends ProxyError {}

/** The whole request body, refused once it passes `limit` bytes (the rest is not read). */
export function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(
      new BodyTooLargeError('body_too_large', `request body of ${declared} bytes exceeds the limit of ${limit}`, { limit, size: declared }),
    );
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
