/**
 * One request from the client to the app and its response back, through an undici Pool.
 *
 * Both bodies stream with backpressure: undici reads the client's request body (Node's
 * IncomingMessage) only as fast as the app's connection takes it, and writes the app's response
 * into the client's ServerResponse only as fast as the client reads. Nothing is buffered whole.
 *
 * Failures: the app unreachable, or gone before its response head → 502 with a JSON body. The app
 * gone mid-response → the client connection is destroyed (a truncated response must not look
 * complete). The client gone → the app request is aborted.
 */
import type http from 'node:http';
import type { Dispatcher, Pool } from 'undici';
import { errnoOf, messageOf } from '../../shared/errors/index.js';
import { downstreamResponseHeaders } from './headers.js';

/** How a forwarded exchange ended, for the access log. */
export type ForwardEnd =
  | { kind: 'complete' }
  /** The client went away before the response was written. */
  | { kind: 'client_gone' }
  /** The app failed; `answered` says whether a 502 could still be sent. */
  | { kind: 'upstream_failed'; code: string; answered: boolean };

function hasBody(req: http.IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function upstreamCode(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  // undici reports an app connection lost mid-body as a premature close of the response it was writing.
  if (code === 'UND_ERR_SOCKET' || code === 'ERR_STREAM_PREMATURE_CLOSE') return 'upstream_reset';
  if (typeof code === 'string') return code.startsWith('UND_ERR_') ? code.slice(8).toLowerCase() : code.toLowerCase();
  return errnoOf(err)?.toLowerCase() ?? 'upstream_error';
}

export function badGateway(res: http.ServerResponse, code: string, message: string): void {
  const body = JSON.stringify({ error: code, message });
  res.writeHead(502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
  res.end(body);
}

export function forwardRequest(pool: Pool, req: http.IncomingMessage, res: http.ServerResponse, headers: string[], onEnd: (end: ForwardEnd) => void): void {
  const abort = new AbortController();
  let responded = false;
  // A close undici caused (it destroys the response with the app's error) is not the client leaving.
  const onClientClose = () => { if (!res.writableFinished && !res.errored) abort.abort(); };
  res.once('close', onClientClose);
  const options: Dispatcher.RequestOptions = {
    method: req.method as Dispatcher.HttpMethod,
    path: req.url ?? '/',
    headers,
    body: hasBody(req) ? req : null,
    signal: abort.signal,
  };
  pool.stream(options, ({ statusCode, headers: appHeaders }) => {
    responded = true;
    res.writeHead(statusCode, downstreamResponseHeaders(appHeaders as Record<string, string | string[] | undefined>));
    return res;
  }, (err) => {
    res.off('close', onClientClose);
    if (!err) return onEnd({ kind: 'complete' });
    if (abort.signal.aborted) return onEnd({ kind: 'client_gone' });
    const code = upstreamCode(err);
    if (!responded && !res.headersSent && !res.destroyed) {
      badGateway(res, code, `the app did not answer: ${messageOf(err)}`);
      return onEnd({ kind: 'upstream_failed', code, answered: true });
    }
    res.destroy();
    onEnd({ kind: 'upstream_failed', code, answered: false });
  });
}
