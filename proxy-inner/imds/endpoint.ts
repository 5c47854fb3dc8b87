/**
 * The IMDS the app sees inside the enclave (AWS_EC2_METADATA_SERVICE_ENDPOINT points here). It
 * speaks IMDSv2 — a token from PUT /latest/api/token is required on every GET — and serves only
 * what SDKs read: the role and its credentials (from the shared credential cache), the region and
 * the identity document (relayed). Everything else is refused.
 */
import http from 'node:http';
import { ProxyError, messageOf } from '../../shared/errors/index.js';
import { IMDS_CREDENTIALS_PATH, IMDS_IDENTITY_DOCUMENT_PATH, IMDS_REGION_PATH, IMDS_TOKEN_PATH } from '../../shared/wire/imds-relay.js';
import { send, sendText } from '../../shared/util/http-service.js';
import { logger } from '../../shared/log/logger.js';
import type { CredentialCache } from './credential-cache.js';
import type { ImdsSource } from './relay-client.js';
import { SessionTokens } from './session-tokens.js';

const log = logger('imds-endpoint');

export interface ImdsEndpointOptions {
  cache: CredentialCache;
  /** The configured region, or the one IMDS states. */
  region: () => Promise<string>;
  relay: ImdsSource;
  now?: () => number;
}

async function serveGet(path: string, opts: ImdsEndpointOptions, res: http.ServerResponse): Promise<void> {
  if (path === IMDS_CREDENTIALS_PATH) {
    sendText(res, 200, (await opts.cache.get()).role);
  } else if (path.startsWith(IMDS_CREDENTIALS_PATH)) {
    const cached = await opts.cache.get();
    if (path.slice(IMDS_CREDENTIALS_PATH.length) !== cached.role) sendText(res, 404, 'Not Found');
    else send(res, 200, JSON.stringify(cached.document, null, 2), { 'content-type': 'text/plain' });
  } else if (path === IMDS_REGION_PATH) {
    sendText(res, 200, await opts.region());
  } else if (path === IMDS_IDENTITY_DOCUMENT_PATH) {
    const relayed = await opts.relay.get(path);
    send(res, relayed.status, relayed.body, { 'content-type': relayed.content_type ?? 'text/plain' });
  } else {
    log.info({ path }, 'IMDS path refused: not served inside the enclave');
    sendText(res, 403, 'Forbidden: this metadata path is not relayed into the enclave');
  }
}

export function imdsRequestListener(opts: ImdsEndpointOptions): http.RequestListener {
  const tokens = new SessionTokens(opts.now);
  return (req, res) => {
    const path = new URL(req.url ?? '/', 'http://imds').pathname;
    if (req.method === 'PUT' && path === IMDS_TOKEN_PATH) {
      // As IMDS does: a forwarded PUT is a request that left the host, and gets no token.
      if (req.headers['x-forwarded-for'] !== undefined) return sendText(res, 403, 'Forbidden');
      const ttl = SessionTokens.parseTtl(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
      if (ttl === null) return sendText(res, 400, 'Bad Request: x-aws-ec2-metadata-token-ttl-seconds must be 1..21600');
      return sendText(res, 200, tokens.issue(ttl), { 'x-aws-ec2-metadata-token-ttl-seconds': String(ttl) });
    }
    if (req.method !== 'GET') return sendText(res, 405, 'Method Not Allowed', { allow: 'GET, PUT' });
    if (!tokens.isValid(req.headers['x-aws-ec2-metadata-token'])) return sendText(res, 401, 'Unauthorized');
    serveGet(path, opts, res).catch((err: unknown) => {
      const status = err instanceof ProxyError && typeof err.context.status === 'number' ? err.context.status : 502;
      log.warn({ path, err: messageOf(err) }, 'IMDS request could not be served');
      if (!res.headersSent)
        sendText(res, status, status === 502 ? 'Bad Gateway: instance metadata unavailable' : (http.STATUS_CODES[status] ?? 'Error'));
    });
  };
}
