/**
 * The in-enclave attestation API, compatible with Enclaver's: `POST /v1/attestation` with an
 * optional JSON body `{nonce?, user_data?, public_key?}` (nonce and user_data base64, public_key a
 * PEM public key) answers the raw COSE_Sign1 document as application/cbor. For curl and scripts,
 * `Accept: application/json` (or `?format=json`) answers `{"document": "<base64>"}` instead.
 *
 * Unlike Enclaver, public_key goes into the document as the full SPKI DER (what KMS expects of
 * a Recipient), not just the SPKI's bit-string contents.
 */
import crypto from 'node:crypto';
import type http from 'node:http';
import { ProxyError, messageOf } from '../../shared/errors/index.js';
import { MAX_OPTIONAL_FIELD_BYTES } from '../../shared/attestation/document.js';
import { BodyTooLargeError, readBody, send, sendJson } from '../../shared/util/http-service.js';
import { logger } from '../../shared/log/logger.js';
import type { Nsm } from '../nsm/nsm.js';

const log = logger('attestation-api');
export const ATTESTATION_PATH = '/v1/attestation';
const MAX_BODY_BYTES = 16 * 1024;

class BadRequest extends ProxyError {}

function base64Field(body: Record<string, unknown>, name: string): Buffer | null {
  const v = body[name];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v))
    throw new BadRequest('attestation_field', `${name} must be a base64 string`, { field: name });
  const bytes = Buffer.from(v, 'base64');
  if (bytes.length > MAX_OPTIONAL_FIELD_BYTES)
    throw new BadRequest('attestation_field', `${name} is ${bytes.length} bytes; the NSM takes at most ${MAX_OPTIONAL_FIELD_BYTES}`, {
      field: name,
    });
  return bytes;
}

function publicKeyField(body: Record<string, unknown>): Buffer | null {
  const v = body.public_key;
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw new BadRequest('attestation_field', 'public_key must be a PEM public key', { field: 'public_key' });
  try {
    return crypto.createPublicKey(v).export({ type: 'spki', format: 'der' });
  } catch (err) {
    throw new BadRequest('attestation_field', `public_key is not a PEM public key: ${messageOf(err)}`, { field: 'public_key' });
  }
}

async function parseRequest(
  req: http.IncomingMessage,
): Promise<{ nonce: Buffer | null; userData: Buffer | null; publicKey: Buffer | null }> {
  let raw: Buffer;
  try {
    raw = await readBody(req, MAX_BODY_BYTES);
  } catch (err) {
    if (err instanceof BodyTooLargeError) throw new BadRequest(err.code, err.message);
    throw err;
  }
  if (raw.length === 0) return { nonce: null, userData: null, publicKey: null };
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new BadRequest('attestation_json', 'the body must be a JSON object');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new BadRequest('attestation_json', 'the body must be a JSON object');
  const b = body as Record<string, unknown>;
  return { nonce: base64Field(b, 'nonce'), userData: base64Field(b, 'user_data'), publicKey: publicKeyField(b) };
}

function wantsJson(req: http.IncomingMessage, url: URL): boolean {
  return url.searchParams.get('format') === 'json' || /\bapplication\/json\b/.test(String(req.headers.accept ?? ''));
}

export function attestationRequestListener(nsm: Pick<Nsm, 'attest'>): http.RequestListener {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://api');
    if (url.pathname !== ATTESTATION_PATH) return sendJson(res, 404, { error: 'not_found', message: `only ${ATTESTATION_PATH} is served` });
    if (req.method !== 'POST') return sendJson(res, 405, { error: 'method_not_allowed', message: 'use POST' }, { allow: 'POST' });
    parseRequest(req)
      .then((fields) => {
        const document = nsm.attest(fields);
        if (wantsJson(req, url)) sendJson(res, 200, { document: document.toString('base64') });
        else send(res, 200, document, { 'content-type': 'application/cbor' });
      })
      .catch((err: unknown) => {
        if (err instanceof BadRequest) return sendJson(res, 400, { error: err.code, message: err.message });
        log.error({ err: messageOf(err) }, 'attestation failed');
        sendJson(res, 500, { error: err instanceof ProxyError ? err.code : 'attestation_failed', message: messageOf(err) });
      });
  };
}
