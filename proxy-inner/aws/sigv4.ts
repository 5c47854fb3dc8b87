/**
 * SigV4 signing of a KMS request by the proxy with the relayed role credentials. The bytes
 * signed are exactly the bytes forwarded: the body is hashed as given and never re-serialised.
 * Signing itself is @smithy/signature-v4, the signer the AWS SDK uses.
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentials } from './credentials.js';
import { KMS_CONTENT_TYPE } from './kms-actions.js';

export interface KmsRequestToSign {
  /** The upstream endpoint, e.g. https://kms.eu-west-1.amazonaws.com */
  endpoint: URL;
  region: string;
  target: string;
  body: Buffer;
  credentials: AwsCredentials;
  signingDate?: Date;
}

/** Headers to send upstream: host, content-type, x-amz-target, x-amz-date, [x-amz-security-token], authorization. */
export async function signKmsRequest(req: KmsRequestToSign): Promise<Record<string, string>> {
  const signer = new SignatureV4({ service: 'kms', region: req.region, credentials: req.credentials, sha256: Sha256, uriEscapePath: true });
  const signed = await signer.sign(
    {
      method: 'POST',
      protocol: req.endpoint.protocol,
      hostname: req.endpoint.hostname,
      port: req.endpoint.port ? Number(req.endpoint.port) : undefined,
      path: '/',
      query: {},
      headers: {
        host: req.endpoint.host,
        'content-type': KMS_CONTENT_TYPE,
        'x-amz-target': req.target,
      },
      body: req.body,
    },
    { signingDate: req.signingDate },
  );
  return signed.headers;
}
