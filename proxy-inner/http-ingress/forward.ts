/**
 * One request from the client to the app and its response back, through an undici Pool.
 *
 * Both bodies stream with backpressure: undici reads the client's request body only as fast as the
 * app's connection takes it, and writes the app's response into the client's side only as fast as
 * the client reads. Nothing is buffered whole.
 *
 * Failures: the app unreachable, or gone before its response head → 502 with a JSON body. The app
 * gone mid-response → the client's side is destroyed (a truncated response must not look
 * complete). The client gone → the app request is aborted.
 */
import type { Dispatcher, Pool } from 'undici';
import { errnoOf, messageOf } from '../../shared/errors/index.js';
import type { Exchange } from './exchange.js';
import { downstreamResponseHeaders } from './headers.js';

/** How a forwarded exchange ended, for the access log. */
export type ForwardEnd =
  | { kind: 'complete' }
  /** The client went away before the response was written. */
  | { kind: 'client_gone' }
  /** The app failed; `answered` says whether a 502 could still be sent. */
  | { kind: 'upstream_failed'; code: string; answered: boolean };

function upstreamCode(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  // undici reports an app connection lost mid-body as a premature close of the response it was writing.
  if (code === 'UND_ERR_SOCKET' || code === 'ERR_STREAM_PREMATURE_CLOSE') return 'upstream_reset';
  if (typeof code === 'string') return code.startsWith('UND_ERR_') ? code.slice(8).toLowerCase() : code.toLowerCase();
  return errnoOf(err)?.toLowerCase() ?? 'upstream_error';
}

export function badGateway(x: Exchange, code: string, message: string): void {
  x.answer(502, { 'content-type': 'application/json' }, JSON.stringify({ error: code, message }), { close: true });
}

/** `headers`: the request headers for the app (headers.ts), in raw form. */
export function forwardRequest(pool: Pool, x: Exchange, headers: string[], onEnd: (end: ForwardEnd) => void): void {
  const abort = new AbortController();
  let responded = false;
  const sink = x.sink;
  // A close undici caused (it destroys the sink with the app's error) is not the client leaving.
  const onClientClose = () => {
    if (!sink.writableFinished && !sink.errored) abort.abort();
  };
  sink.once('close', onClientClose);
  const options: Dispatcher.RequestOptions = {
    method: x.method as Dispatcher.HttpMethod,
    path: x.url,
    headers,
    body: x.body,
    signal: abort.signal,
  };
  pool.stream(
    options,
    ({ statusCode, headers: appHeaders }) => {
      responded = true;
      x.writeHead(statusCode, downstreamResponseHeaders(appHeaders as Record<string, string | string[] | undefined>));
      return sink;
    },
    (err) => {
      sink.off('close', onClientClose);
      if (!err) return onEnd({ kind: 'complete' });
      if (abort.signal.aborted) return onEnd({ kind: 'client_gone' });
      const code = upstreamCode(err);
      if (!responded && !x.headersSent() && !sink.destroyed) {
        badGateway(x, code, `the app did not answer: ${messageOf(err)}`);
        return onEnd({ kind: 'upstream_failed', code, answered: true });
      }
      sink.destroy();
      onEnd({ kind: 'upstream_failed', code, answered: false });
    },
  );
}
