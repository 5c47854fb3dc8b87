/**
 * TEST-ONLY: SigV4 verification written from the algorithm (not with the signing library the
 * proxy uses), so that a proxy that signs the wrong bytes, drops a header or uses the wrong
 * scope is caught. Answers with the error KMS would give.
 */
import crypto from 'node:crypto';
import type http from 'node:http';
import type { CredentialStore } from '../credential-store.js';

export interface SigV4Failure {
  errorType: string;
  message: string;
}

const AUTH =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;
const REQUIRED_SIGNED = ['host', 'x-amz-date', 'content-type', 'x-amz-target'];
const MAX_SKEW_MS = 5 * 60_000;

const sha256 = (data: string | Buffer) => crypto.createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string) => crypto.createHmac('sha256', key).update(data).digest();

function amzDateToMs(v: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(v);
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : NaN;
}

/** null when the request is signed correctly by valid, unexpired credentials for this region. */
export function verifySigV4(req: http.IncomingMessage, body: Buffer, region: string, store: CredentialStore): SigV4Failure | null {
  const auth = req.headers.authorization;
  const m = typeof auth === 'string' ? AUTH.exec(auth) : null;
  if (!m) return { errorType: 'IncompleteSignatureException', message: 'Authorization header missing or not AWS4-HMAC-SHA256' };
  const [, keyId, day, scopeRegion, service, signedList, signature] = m as unknown as string[];
  if (scopeRegion !== region || service !== 'kms')
    return { errorType: 'InvalidSignatureException', message: `credential scope ${scopeRegion}/${service} is not ${region}/kms` };
  const signed = signedList!.split(';');
  const missing = REQUIRED_SIGNED.filter((h) => !signed.includes(h));
  const creds = store.lookup(keyId!);
  if (!creds) return { errorType: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' };
  if (!signed.includes('x-amz-security-token')) missing.push('x-amz-security-token');
  if (missing.length) return { errorType: 'InvalidSignatureException', message: `headers not signed: ${missing.join(', ')}` };
  if (req.headers['x-amz-security-token'] !== creds.sessionToken)
    return { errorType: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' };
  if (store.isExpired(creds))
    return { errorType: 'ExpiredTokenException', message: 'The security token included in the request is expired' };
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  if (!amzDate.startsWith(day!) || Math.abs(amzDateToMs(amzDate) - Date.now()) > MAX_SKEW_MS)
    return { errorType: 'InvalidSignatureException', message: 'Signature expired or x-amz-date out of range' };

  const canonicalHeaders = [...signed]
    .sort()
    .map(
      (h) =>
        `${h}:${String(req.headers[h] ?? '')
          .trim()
          .replace(/\s+/g, ' ')}\n`,
    )
    .join('');
  const canonical = ['POST', '/', '', canonicalHeaders, signed.join(';'), sha256(body)].join('\n');
  const scope = `${day}/${region}/kms/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  const kSigning = hmac(hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, day!), region), 'kms'), 'aws4_request');
  const expected = crypto.createHmac('sha256', kSigning).update(stringToSign).digest('hex');
  if (!crypto.timingSafeEqual(Buffer.from(expected), Buffer.from(signature!))) {
    return {
      errorType: 'InvalidSignatureException',
      message: 'The request signature we calculated does not match the signature you provided.',
    };
  }
  return null;
}
