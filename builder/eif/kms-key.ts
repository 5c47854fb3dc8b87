/**
 * An EIF signing key held in AWS KMS, as nitro-cli signs with `--private-key arn:aws:kms:…`
 * (aws-nitro-enclaves-cose, crypto/kms.rs): GetPublicKey once, the algorithm from the curve,
 * then Sign with MessageType DIGEST (the builder hashes the COSE Sig_structure itself, so only a
 * digest goes to KMS) and the DER signature KMS returns turned into COSE's raw r‖s.
 *
 * Refused before any layer is read: a key that is not SIGN_VERIFY, not ECC_NIST_P256/P384/P521,
 * or whose public key is not the certificate's (the EIF would carry a certificate that does not
 * verify its own signature). The region is the ARN's; credentials and endpoint are the SDK's
 * standard ones (environment, profile, SSO, instance role; AWS_ENDPOINT_URL_KMS /
 * AWS_ENDPOINT_URL). A KMS failure is one line with the operation, the KMS error code and the
 * ARN; nothing the SDK resolved (keys, tokens) is ever put in a message.
 *
 * The SDK is an optional dependency, imported here only: it stays out of the enclave's runtime
 * bundle (docs/decisions.md, "EIF signing with a KMS key").
 */
import crypto from 'node:crypto';
import type { KMSClient as KmsClient, SigningAlgorithmSpec } from '@aws-sdk/client-kms';
import { COSE_ALGORITHMS, type CoseAlgorithm } from '../../shared/attestation/cose.js';
import { KMS_KEY_ARN_PATTERN } from '../../shared/config/build.js';
import { BuildError } from '../errors.js';
import type { EifKey } from './signature.js';

/** KMS key specs an EIF can be signed with, and the COSE algorithm and KMS signing algorithm of each. */
const KEY_SPECS: Record<string, { algorithm: CoseAlgorithm; signing: SigningAlgorithmSpec }> = {
  ECC_NIST_P256: { algorithm: 'ES256', signing: 'ECDSA_SHA_256' },
  ECC_NIST_P384: { algorithm: 'ES384', signing: 'ECDSA_SHA_384' },
  ECC_NIST_P521: { algorithm: 'ES512', signing: 'ECDSA_SHA_512' },
};

/** A build waits on KMS at most this long per attempt: a hung endpoint fails the build instead of stalling it. */
const CONNECT_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * An ECDSA-Sig-Value (DER `SEQUENCE { r INTEGER, s INTEGER }`, what KMS returns) as raw r‖s,
 * each left-padded to `half` bytes; undefined when it is not exactly that.
 */
export function derSignatureToRaw(der: Uint8Array, half: number): Buffer | undefined {
  let at = 0;
  const length = (): number | undefined => {
    const first = der[at++];
    if (first === undefined || first === 0x80 || first > 0x81) return undefined;
    if (first < 0x80) return first;
    const long = der[at++];
    return long !== undefined && long >= 0x80 ? long : undefined;
  };
  if (der[at++] !== 0x30 || length() !== der.length - at) return undefined;
  const raw = Buffer.alloc(2 * half);
  for (const slot of [0, 1]) {
    if (der[at++] !== 0x02) return undefined;
    const n = length();
    if (n === undefined || n === 0 || at + n > der.length) return undefined;
    let int = Buffer.from(der.subarray(at, at + n));
    at += n;
    // DER puts a 0x00 before an integer whose top bit is set (it would read as negative).
    if (int.length > 1 && int[0] === 0) int = int.subarray(1);
    if (int.length > half) return undefined;
    int.copy(raw, slot * half + half - int.length);
  }
  return at === der.length ? raw : undefined;
}

/** The SDK error as one line: the KMS error code and its message, or why KMS was not reached. */
function describeFailure(err: unknown): { code: string; text: string } {
  const e = err as { name?: unknown; code?: unknown; message?: unknown; $fault?: unknown };
  const message = (typeof e.message === 'string' ? e.message : String(err)).split('\n')[0]?.slice(0, 300) ?? '';
  const name = typeof e.name === 'string' ? e.name : 'Error';
  // Service errors (KMS answered) carry $fault; everything else never reached KMS or was not answered.
  if (e.$fault !== undefined) return { code: name, text: `${name}: ${message}` };
  if (name === 'CredentialsProviderError')
    return {
      code: name,
      text:
        `no AWS credentials (${message}); give them the usual way: AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ` +
        'SSO, or an instance role',
    };
  const code = typeof e.code === 'string' ? e.code : name;
  return { code, text: `KMS not reached: ${message}` };
}

function kmsFailure(operation: string, arn: string, err: unknown): BuildError {
  const { code, text } = describeFailure(err);
  return new BuildError(
    'kms_request_failed',
    `KMS key ${arn}: ${operation} failed: ${text}`,
    { arn, operation, kmsError: code },
    { cause: err },
  );
}

async function kmsClient(region: string): Promise<{ client: KmsClient; sdk: typeof import('@aws-sdk/client-kms') }> {
  let sdk: typeof import('@aws-sdk/client-kms');
  try {
    sdk = await import('@aws-sdk/client-kms');
  } catch (err) {
    throw new BuildError(
      'kms_client_missing',
      `signing with a KMS key needs the optional dependency @aws-sdk/client-kms, which is not installed (${(err as Error).message.split('\n')[0]}): ` +
        'npm install @aws-sdk/client-kms next to enclaver-proxy',
      {},
      { cause: err },
    );
  }
  const client = new sdk.KMSClient({
    region,
    requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS },
  });
  return { client, sdk };
}

/** GetPublicKey, then an `EifKey` whose `sign` calls KMS Sign (once per build). */
export async function openKmsKey(arn: string, certificate: crypto.X509Certificate, certificateFile: string): Promise<EifKey> {
  const region = new RegExp(KMS_KEY_ARN_PATTERN).exec(arn)?.[1];
  if (region === undefined)
    throw new BuildError('signing_key_invalid', `${arn} is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)`, { arn });
  const { client, sdk } = await kmsClient(region);
  let answer;
  try {
    answer = await client.send(new sdk.GetPublicKeyCommand({ KeyId: arn }));
  } catch (err) {
    client.destroy();
    throw kmsFailure('GetPublicKey', arn, err);
  }
  const refuse = (why: string) => {
    client.destroy();
    return new BuildError('signing_key_invalid', `KMS key ${arn} cannot sign this EIF: ${why}`, { arn, certificate: certificateFile });
  };
  if (answer.KeyUsage !== 'SIGN_VERIFY') throw refuse(`its KeyUsage is ${String(answer.KeyUsage)}, not SIGN_VERIFY`);
  const spec = KEY_SPECS[String(answer.KeySpec)];
  if (spec === undefined)
    throw refuse(`its KeySpec is ${String(answer.KeySpec)}; an EIF is signed with ECDSA: ECC_NIST_P256, ECC_NIST_P384 or ECC_NIST_P521`);
  let publicKey: crypto.KeyObject;
  try {
    publicKey = crypto.createPublicKey({ key: Buffer.from(answer.PublicKey ?? []), format: 'der', type: 'spki' });
  } catch {
    throw refuse('GetPublicKey returned no readable public key');
  }
  if (!publicKey.equals(certificate.publicKey))
    throw refuse(`its public key is not the one in ${certificateFile} (the certificate measured into PCR8 must carry the signing key)`);
  const { hash, half } = COSE_ALGORITHMS[spec.algorithm];
  return {
    name: `KMS key ${arn}`,
    algorithm: spec.algorithm,
    async sign(message) {
      const digest = crypto.createHash(hash).update(message).digest();
      let signed;
      try {
        signed = await client.send(
          new sdk.SignCommand({ KeyId: arn, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: spec.signing }),
        );
      } catch (err) {
        throw kmsFailure('Sign', arn, err);
      } finally {
        client.destroy();
      }
      const raw = derSignatureToRaw(signed.Signature ?? new Uint8Array(), half);
      if (raw === undefined)
        throw new BuildError('signature_invalid', `KMS key ${arn}: Sign returned a signature that is not a DER ECDSA signature`, { arn });
      return raw;
    },
  };
}
