/**
 * The outer's `/enclave/metrics`: the enclave's Prometheus metrics, fetched over vsock on each
 * scrape (vsock://<enclave CID>:17005), so one scrape target on the parent covers both sides.
 */
import type http from 'node:http';
import { messageOf } from '../../shared/errors/index.js';
import { connect } from '../../shared/transport/index.js';
import { readPrefix } from '../../shared/util/read-prefix.js';
import { encodeFrame, FrameType, MAX_PAYLOAD, parseFrame } from '../../shared/wire/frame.js';
import { PairPort } from '../../shared/wire/ports.js';

const TIMEOUT_MS = 2000;

export async function fetchEnclaveMetrics(enclaveCid: number): Promise<{ contentType: string; body: string }> {
  const socket = await connect({ kind: 'vsock', cid: enclaveCid, port: PairPort.Metrics }, { timeoutMs: TIMEOUT_MS });
  try {
    socket.write(encodeFrame(FrameType.MetricsRequest, {}));
    const { value } = await readPrefix(socket, parseFrame, {
      timeoutMs: TIMEOUT_MS,
      maxBytes: MAX_PAYLOAD + 6,
      what: 'metrics response frame',
    });
    const { content_type: contentType, body, error } = value.payload;
    if (value.type !== FrameType.MetricsResponse || typeof body !== 'string' || typeof contentType !== 'string') {
      throw new Error(
        typeof error === 'string' ? `the enclave could not collect its metrics: ${error}` : 'unexpected answer to a metrics request',
      );
    }
    return { contentType, body };
  } finally {
    socket.destroy();
  }
}

export function enclaveMetricsRoute(enclaveCid: number) {
  return async (_req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    try {
      const { contentType, body } = await fetchEnclaveMetrics(enclaveCid);
      res.writeHead(200, { 'content-type': contentType }).end(body);
    } catch (err) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end(`enclave metrics unavailable: ${messageOf(err)}\n`);
    }
  };
}
