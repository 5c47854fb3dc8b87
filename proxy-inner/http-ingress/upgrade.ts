/**
 * An `Upgrade` request (WebSocket, h2c, anything else): sent to the app on a connection of its
 * own; if the app answers 101 the two connections leave HTTP and are handed to the pump (the
 * same byte mover every pass-through leg uses) until either side closes. If the app refuses (any
 * other status), its answer goes to the client with `Connection: close` and the connection ends:
 * the client may not keep talking on a connection whose state it and the app now disagree on.
 */
import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { messageOf } from '../../shared/errors/index.js';
import { jsPump } from '../../shared/pump/index.js';
import { downstreamRawHeaders } from './headers.js';
import type { Upstreams } from './upstream.js';

export interface UpgradeRequest {
  req: http.IncomingMessage;
  /** The client's connection, out of HTTP's hands. */
  socket: Duplex;
  /** Bytes the client sent after the request head. */
  head: Buffer;
  /** Request headers for the app (hop-by-hop removed, Upgrade kept, forwarding headers added). */
  headers: string[];
  cluster: string;
  idleTimeoutMs: number;
  signal: AbortSignal;
}

/** How an Upgrade ended, for the access log: the status the client saw and the bytes each way. */
export interface UpgradeEnd {
  status: number;
  bytesIn: number;
  bytesOut: number;
  error?: string;
}

function statusHead(status: number, statusMessage: string, rawHeaders: string[]): string {
  let head = `HTTP/1.1 ${status} ${statusMessage}\r\n`;
  for (let i = 0; i < rawHeaders.length; i += 2) head += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`;
  return head;
}

function refuse(socket: Duplex, status: number, code: string, message: string): UpgradeEnd {
  const body = JSON.stringify({ error: code, message });
  const text = `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
  if (!socket.destroyed) socket.end(text);
  return { status, bytesIn: 0, bytesOut: Buffer.byteLength(text), error: code };
}

export async function carryUpgrade(u: UpgradeRequest, upstreams: Upstreams): Promise<UpgradeEnd> {
  let app: net.Socket;
  try {
    ({ socket: app } = await upstreams.connectFresh(u.cluster, u.signal));
  } catch (err) {
    return refuse(u.socket, 502, 'upstream_unreachable', `the app cannot be reached: ${messageOf(err)}`);
  }
  if (u.socket.destroyed) {
    app.destroy();
    return { status: 499, bytesIn: 0, bytesOut: 0, error: 'client_gone' };
  }
  return new Promise<UpgradeEnd>((resolve) => {
    // Once the app has answered (101 or a refusal), a later failure can only cut the client off, never answer again.
    let answered = false;
    const request = http.request({ method: u.req.method, path: u.req.url, headers: u.headers, createConnection: () => app });
    request.on('upgrade', (res, appSocket, appHead) => {
      answered = true;
      const head =
        statusHead(101, res.statusMessage ?? 'Switching Protocols', downstreamRawHeaders(res.rawHeaders, { keepUpgrade: true })) +
        'connection: upgrade\r\n\r\n';
      u.socket.write(head);
      const session = jsPump.run(u.socket as net.Socket, appSocket, { headUp: u.head, headDown: appHead, idleTimeoutMs: u.idleTimeoutMs });
      const onAbort = () => session.abort('drain deadline');
      u.signal.addEventListener('abort', onAbort, { once: true });
      void session.done.then((r) => {
        u.signal.removeEventListener('abort', onAbort);
        resolve({
          status: 101,
          bytesIn: r.bytesUp,
          bytesOut: r.bytesDown + Buffer.byteLength(head),
          ...(r.error ? { error: r.error.code } : {}),
        });
      });
    });
    request.on('response', (res) => {
      answered = true;
      // The app refused the upgrade: pass its answer on, delimited by closing the connection.
      const head = `${statusHead(res.statusCode ?? 502, res.statusMessage ?? '', downstreamRawHeaders(res.rawHeaders, { keepUpgrade: false }))}connection: close\r\n\r\n`;
      let bytesOut = Buffer.byteLength(head);
      u.socket.write(head);
      res.on('data', (chunk: Buffer) => {
        bytesOut += chunk.length;
      });
      res.pipe(u.socket);
      const finish = (error?: string) => {
        app.destroy();
        resolve({ status: res.statusCode ?? 502, bytesIn: 0, bytesOut, ...(error ? { error } : {}) });
      };
      res.once('end', () => finish());
      res.once('error', (err) => {
        u.socket.destroy();
        finish(messageOf(err));
      });
    });
    request.on('error', (err) => {
      app.destroy();
      if (answered) {
        u.socket.destroy();
        return;
      }
      resolve(refuse(u.socket, 502, 'upstream_failed', `the app failed the upgrade: ${messageOf(err)}`));
    });
    request.end();
  });
}
