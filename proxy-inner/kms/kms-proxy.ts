/**
 * The KMS endpoint the app talks to inside the enclave (AWS_ENDPOINT_URL_KMS points here).
 *
 * For Decrypt, GenerateDataKey, GenerateDataKeyPair, GenerateRandom and DeriveSharedSecret it
 * adds a `Recipient` (this enclave's attestation document binding the recipient key), opens the
 * `CiphertextForRecipient` KMS answers with, and returns the plaintext in the field the SDK
 * expects. A Recipient the app set itself is left alone, and every other action passes through.
 * Whatever the app sent as credentials is dropped: the exact bytes forwarded are signed with the
 * instance role's credentials. KMS errors come back with their status, body and request id.
 */
import type http from 'node:http';
import { ProxyError, messageOf } from '../../shared/errors/index.js';
import type { AwsCredentials } from '../aws/credentials.js';
import {
  KMS_CONTENT_TYPE,
  RECIPIENT_KEY_ENCRYPTION_ALGORITHM,
  type PlaintextField,
  attestedPlaintextField,
  kmsActionOf,
} from '../aws/kms-actions.js';
import { signKmsRequest } from '../aws/sigv4.js';
import { BodyTooLargeError, readBody, send } from '../../shared/util/http-service.js';
import { logger } from '../../shared/log/logger.js';
import type { AttestationSource } from './attestation-source.js';
import { kmsRequests } from './metrics.js';
import type { RecipientKey } from './recipient-key.js';
import type { KmsUpstream, UpstreamResponse } from './upstream.js';

const log = logger('kms-proxy');

/** KMS requests are small (plaintexts ≤ 4 KiB, ciphertexts ≤ 6 KiB); this leaves ample room. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
/** Response headers worth keeping: the ones the SDK reads. */
const PASSED_RESPONSE_HEADERS = ['content-type', 'x-amzn-requestid', 'x-amzn-errortype'];

export interface KmsProxyOptions {
  credentials: () => Promise<AwsCredentials>;
  region: () => Promise<string>;
  /** Where requests for a region go. */
  endpointFor: (region: string) => URL;
  upstream: KmsUpstream;
  recipientKey: RecipientKey;
  attestation: AttestationSource;
  maxBodyBytes?: number;
}

type Outcome = 'attested' | 'passed_through' | 'kms_error' | 'rejected' | 'failed';

/** A refusal by the proxy itself, answered in KMS's JSON error shape so SDKs surface it. */
class KmsProxyError extends ProxyError {
  constructor(
    readonly status: number,
    readonly errorType: string,
    code: string,
    message: string,
    context: Record<string, unknown> = {},
  ) {
    super(code, message, context);
  }
}

function sendKmsError(res: http.ServerResponse, err: KmsProxyError): void {
  send(res, err.status, JSON.stringify({ __type: err.errorType, message: `enclaver-proxy: ${err.message}` }), {
    'content-type': KMS_CONTENT_TYPE,
    'x-amzn-errortype': err.errorType,
    'x-enclaver-proxy-error': err.code,
  });
}

function passThrough(res: http.ServerResponse, upstream: UpstreamResponse): void {
  const headers: Record<string, string> = {};
  for (const name of PASSED_RESPONSE_HEADERS) {
    const value = upstream.headers[name];
    if (value !== undefined) headers[name] = value;
  }
  send(res, upstream.status, upstream.body, headers);
}

function parseJsonObject(body: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new KmsProxyError(400, 'SerializationException', 'kms_json_invalid', `${what} is not valid JSON: ${messageOf(err)}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new KmsProxyError(400, 'SerializationException', 'kms_json_invalid', `${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

export class KmsProxy {
  private readonly maxBodyBytes: number;

  constructor(private readonly opts: KmsProxyOptions) {
    this.maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  }

  readonly requestListener: http.RequestListener = (req, res) => {
    let action = 'unknown';
    this.handle(req, res, (a) => {
      action = a;
    }).then(
      (outcome) => {
        kmsRequests.inc({ action, outcome });
      },
      (err: unknown) => {
        const proxyErr =
          err instanceof KmsProxyError
            ? err
            : new KmsProxyError(
                502,
                'EnclaverProxyUpstreamException',
                err instanceof ProxyError ? err.code : 'kms_proxy_failed',
                messageOf(err),
              );
        const outcome: Outcome = proxyErr.status < 500 ? 'rejected' : 'failed';
        kmsRequests.inc({ action, outcome });
        log.warn({ action, code: proxyErr.code, err: proxyErr.message }, 'KMS request not completed');
        if (!res.headersSent) sendKmsError(res, proxyErr);
        else res.destroy();
      },
    );
  };

  private async readRequest(req: http.IncomingMessage): Promise<Buffer> {
    if (req.method !== 'POST')
      throw new KmsProxyError(405, 'UnsupportedOperationException', 'kms_method', `KMS requests are POST, not ${req.method}`);
    try {
      return await readBody(req, this.maxBodyBytes);
    } catch (err) {
      if (err instanceof BodyTooLargeError) throw new KmsProxyError(400, 'ValidationException', err.code, err.message, err.context);
      throw err;
    }
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse, setAction: (a: string) => void): Promise<Outcome> {
    const body = await this.readRequest(req);
    const target = req.headers['x-amz-target'];
    const { response, outcome } = await this.call(typeof target === 'string' ? target : undefined, body, setAction);
    passThrough(res, response);
    return outcome;
  }

  /**
   * One KMS call as the enclave makes it: attested actions get this enclave's Recipient and come
   * back with their plaintext in the SDK's field; the rest pass through. Used by the HTTP listener
   * and by the inner itself (TLS private keys sealed with KMS).
   */
  async call(
    target: string | undefined,
    body: Buffer,
    setAction: (a: string) => void = () => {},
  ): Promise<{ response: UpstreamResponse; outcome: Outcome }> {
    const action = kmsActionOf(target);
    if (!action || target === undefined)
      throw new KmsProxyError(
        400,
        'UnknownOperationException',
        'kms_target',
        `X-Amz-Target "${String(target ?? '')}" is not a KMS action (TrentService.<Action>)`,
      );
    setAction(action);

    const field = attestedPlaintextField(action);
    let forwarded = body;
    let attested: PlaintextField | null = null;
    if (field) {
      const request = parseJsonObject(body, `the ${action} request`);
      if (request.Recipient === undefined || request.Recipient === null) {
        request.Recipient = {
          KeyEncryptionAlgorithm: RECIPIENT_KEY_ENCRYPTION_ALGORITHM,
          AttestationDocument: this.opts.attestation.document().toString('base64'),
        };
        forwarded = Buffer.from(JSON.stringify(request));
        attested = field;
      }
    }

    const region = await this.opts.region();
    const endpoint = this.opts.endpointFor(region);
    const headers = await signKmsRequest({ endpoint, region, target, body: forwarded, credentials: await this.opts.credentials() });
    const upstream = await this.opts.upstream.post(endpoint, headers, forwarded);

    if (upstream.status !== 200) return { response: upstream, outcome: 'kms_error' };
    if (!attested) return { response: upstream, outcome: 'passed_through' };
    const answer = parseJsonObject(upstream.body, `KMS's ${action} response`);
    if (typeof answer.CiphertextForRecipient !== 'string') {
      throw new KmsProxyError(
        502,
        'EnclaverProxyUpstreamException',
        'kms_no_recipient_ciphertext',
        `KMS answered ${action} without CiphertextForRecipient`,
      );
    }
    const plaintext = this.opts.recipientKey.open(Buffer.from(answer.CiphertextForRecipient, 'base64'));
    delete answer.CiphertextForRecipient;
    answer[attested] = plaintext.toString('base64');
    plaintext.fill(0);
    return { response: { ...upstream, body: Buffer.from(JSON.stringify(answer)) }, outcome: 'attested' };
  }
}
