/**
 * The EIF signature section and PCR8, as nitro-cli writes and checks them: a CBOR array with one
 * `PcrSignature` map `{signing_certificate, signature}`, where the certificate is the PEM text
 * and the signature an untagged COSE_Sign1 whose payload is the CBOR map
 * `{register_index: 0, register_value: PCR0}`. serde_cbor writes Rust `Vec<u8>` as an array of
 * small integers, not a byte string, so the byte fields are encoded the same way here.
 * PCR8 measures the certificate's DER.
 *
 * The algorithm follows the certificate's curve as in nitro-cli (P-256 → ES256, P-384 → ES384,
 * P-521 → ES512). The key that signs is an `EifKey`: a PEM file here, or a KMS key
 * (./kms-key.ts, which loads the AWS SDK only when a KMS key is used).
 */
import crypto from 'node:crypto';
import { Decoder, Encoder } from 'cbor-x';
import {
  COSE_ALGORITHMS,
  coseAlgorithmOf,
  decodeCoseSign1,
  signCoseSign1With,
  verifyCoseSignature,
  type CoseAlgorithm,
} from '../../shared/attestation/cose.js';
import type { SigningKey } from '../../shared/config/build.js';
import { BuildError } from '../errors.js';
import { openKmsKey } from './kms-key.js';
import { pcrOfBytes } from './pcr.js';

const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/** A key that signs: the raw r‖s ECDSA signature of `message` under `algorithm` (the message hashed with its hash). */
export interface EifKey {
  /** The key file or the KMS key ARN, for messages. */
  readonly name: string;
  readonly algorithm: CoseAlgorithm;
  sign(message: Buffer): Promise<Buffer>;
}

/** A signing identity: the certificate (measured into PCR8) and the key whose public half it carries. */
export interface EifSigner {
  certificatePem: Buffer;
  certificate: crypto.X509Certificate;
  /** The certificate's file, for messages. */
  certificateFile: string;
  key: EifKey;
}

const CURVES = 'ECDSA P-256, P-384 or P-521';

/** The certificate, refused unless its key is on a curve an EIF signature can use. */
export function loadCertificate(certificatePem: Buffer, file: string): crypto.X509Certificate {
  let certificate: crypto.X509Certificate;
  try {
    certificate = new crypto.X509Certificate(certificatePem);
  } catch (err) {
    throw new BuildError('signing_key_invalid', `${file}: not a PEM X.509 certificate (${(err as Error).message})`, { file });
  }
  if (coseAlgorithmOf(certificate.publicKey) === undefined)
    throw new BuildError(
      'signing_key_invalid',
      `${file}: the certificate's key must be ${CURVES}, not ${describeKey(certificate.publicKey)}`,
      {
        file,
      },
    );
  return certificate;
}

function describeKey(key: crypto.KeyObject): string {
  return `${key.asymmetricKeyType ?? 'a symmetric key'} ${key.asymmetricKeyDetails?.namedCurve ?? ''}`.trim();
}

function pemKey(keyPem: Buffer, file: string, certificate: crypto.X509Certificate, certificateFile: string): EifKey {
  let privateKey: crypto.KeyObject;
  try {
    privateKey = crypto.createPrivateKey(keyPem);
  } catch (err) {
    throw new BuildError('signing_key_invalid', `${file}: not a PEM private key (${(err as Error).message})`, { file });
  }
  const algorithm = coseAlgorithmOf(privateKey);
  if (algorithm === undefined)
    throw new BuildError('signing_key_invalid', `${file}: the EIF signing key must be ${CURVES}, not ${describeKey(privateKey)}`, {
      file,
    });
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new BuildError('signing_key_invalid', `${file} does not match the public key of ${certificateFile}`, {
      file,
      certificate: certificateFile,
    });
  }
  const hash = COSE_ALGORITHMS[algorithm].hash;
  return {
    name: file,
    algorithm,
    sign: (message) => Promise.resolve(crypto.sign(hash, message, { key: privateKey, dsaEncoding: 'ieee-p1363' })),
  };
}

/**
 * The signer for a certificate and its key. A KMS key is asked for its public key here (before
 * any layer is read), so a wrong, unusable or unreachable key fails the build at once.
 * `readKey` reads the key file (the caller names the config key in its errors).
 */
export async function openSigner(
  certificatePem: Buffer,
  certificateFile: string,
  key: SigningKey,
  readKey: (file: string) => Buffer,
): Promise<EifSigner> {
  const certificate = loadCertificate(certificatePem, certificateFile);
  const eifKey =
    key.kind === 'file'
      ? pemKey(readKey(key.file), key.file, certificate, certificateFile)
      : await openKmsKey(key.arn, certificate, certificateFile);
  return { certificatePem, certificate, certificateFile, key: eifKey };
}

/**
 * What a build does with the certificate: sign PCR0 with its key, or only measure it into PCR8
 * (`measure`, whose EIF is thrown away: no key is read and no KMS call is made).
 */
export type EifSigning = { kind: 'sign'; signer: EifSigner } | { kind: 'measure'; certificatePem: Buffer };

export function certificateDer(certificatePem: Buffer): Buffer {
  return new crypto.X509Certificate(certificatePem).raw;
}

const byteArray = (b: Buffer): number[] => Array.from(b);

/**
 * The section for this PCR0. The signature is verified against the certificate before it is
 * returned: a KMS key that signs with other material than the public key it reported would
 * otherwise give an EIF that nobody can verify, found out only at launch.
 */
export async function signatureSection(signer: EifSigner, pcr0Hex: string): Promise<Buffer> {
  const payload = Buffer.from(encoder.encode({ register_index: 0, register_value: byteArray(Buffer.from(pcr0Hex, 'hex')) }));
  const cose = await signCoseSign1With(payload, signer.key.algorithm, (m) => signer.key.sign(m));
  if (!verifyCoseSignature(decodeCoseSign1(cose, [signer.key.algorithm]), signer.certificate.publicKey))
    throw new BuildError(
      'signature_invalid',
      `${signer.key.name}: the signature it made does not verify with the public key of ${signer.certificateFile}; no EIF was written`,
      { key: signer.key.name, certificate: signer.certificateFile },
    );
  return Buffer.from(encoder.encode([{ signing_certificate: byteArray(signer.certificatePem), signature: byteArray(cose) }]));
}

export interface SignatureCheck {
  certificatePem: string;
  subject: string;
  issuer: string;
  validFrom: string;
  validTo: string;
  fingerprint256: string;
  /** The COSE algorithm the signature names (ES256, ES384, ES512). */
  algorithm: CoseAlgorithm;
  /** PCR0 the signature covers. */
  signedPcr0: string;
  signatureValid: boolean;
  pcr8: string;
}

function bytesField(value: unknown, what: string, file: string): Buffer {
  if (Array.isArray(value) && value.every((n) => Number.isInteger(n) && n >= 0 && n < 256)) return Buffer.from(value as number[]);
  if (value instanceof Uint8Array) return Buffer.from(value);
  throw new BuildError('eif_invalid', `${file}: signature section: ${what} is not a byte array`, { file });
}

export function checkSignatureSection(section: Buffer, file: string): SignatureCheck {
  let decoded: unknown;
  try {
    decoded = decoder.decode(section);
  } catch (err) {
    throw new BuildError('eif_invalid', `${file}: signature section is not CBOR (${(err as Error).message})`, { file });
  }
  const first = Array.isArray(decoded) ? (decoded[0] as Record<string, unknown> | undefined) : undefined;
  if (!first || typeof first !== 'object')
    throw new BuildError('eif_invalid', `${file}: signature section holds no PCR signature`, { file });
  const certificatePem = bytesField(first.signing_certificate, 'signing_certificate', file);
  const coseBytes = bytesField(first.signature, 'signature', file);
  let certificate: crypto.X509Certificate;
  try {
    certificate = new crypto.X509Certificate(certificatePem);
  } catch {
    throw new BuildError('eif_invalid', `${file}: signature section's certificate is not a PEM certificate`, { file });
  }
  const cose = decodeCoseSign1(coseBytes, ['ES256', 'ES384', 'ES512']);
  const info = decoder.decode(cose.payload) as { register_index?: unknown; register_value?: unknown };
  const signedPcr0 = bytesField(info.register_value, 'register_value', file).toString('hex');
  return {
    certificatePem: certificatePem.toString('utf8'),
    subject: certificate.subject,
    issuer: certificate.issuer,
    validFrom: certificate.validFrom,
    validTo: certificate.validTo,
    fingerprint256: certificate.fingerprint256,
    algorithm: cose.algorithm,
    signedPcr0,
    signatureValid: info.register_index === 0 && verifyCoseSignature(cose, certificate.publicKey),
    pcr8: pcrOfBytes(certificate.raw),
  };
}
