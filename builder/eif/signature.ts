/**
 * The EIF signature section and PCR8, as nitro-cli writes and checks them: a CBOR array with one
 * `PcrSignature` map `{signing_certificate, signature}`, where the certificate is the PEM text
 * and the signature an untagged ES384 COSE_Sign1 whose payload is the CBOR map
 * `{register_index: 0, register_value: PCR0}`. serde_cbor writes Rust `Vec<u8>` as an array of
 * small integers, not a byte string, so the byte fields are encoded the same way here.
 * PCR8 measures the certificate's DER.
 */
import crypto from 'node:crypto';
import { Decoder, Encoder } from 'cbor-x';
import { signCoseSign1, decodeCoseSign1, verifyCoseSignature } from '../../shared/attestation/cose.js';
import { BuildError } from '../errors.js';
import { pcrOfBytes } from './pcr.js';

const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/** A loaded signing identity: ECDSA P-384 key and the certificate that carries its public half. */
export interface EifSigner {
  certificatePem: Buffer;
  certificate: crypto.X509Certificate;
  privateKey: crypto.KeyObject;
}

export function loadSigner(certificatePem: Buffer, keyPem: Buffer, names: { certificate: string; key: string }): EifSigner {
  let certificate: crypto.X509Certificate;
  try {
    certificate = new crypto.X509Certificate(certificatePem);
  } catch (err) {
    throw new BuildError('signing_key_invalid', `${names.certificate}: not a PEM X.509 certificate (${(err as Error).message})`, {
      file: names.certificate,
    });
  }
  let privateKey: crypto.KeyObject;
  try {
    privateKey = crypto.createPrivateKey(keyPem);
  } catch (err) {
    throw new BuildError('signing_key_invalid', `${names.key}: not a PEM private key (${(err as Error).message})`, { file: names.key });
  }
  const curve = privateKey.asymmetricKeyDetails?.namedCurve;
  if (privateKey.asymmetricKeyType !== 'ec' || curve !== 'secp384r1') {
    throw new BuildError(
      'signing_key_invalid',
      `${names.key}: the EIF signing key must be ECDSA P-384 (secp384r1), not ${privateKey.asymmetricKeyType} ${curve ?? ''}`.trim(),
      { file: names.key },
    );
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new BuildError('signing_key_invalid', `${names.key} does not match the public key of ${names.certificate}`, {
      file: names.key,
      certificate: names.certificate,
    });
  }
  return { certificatePem, certificate, privateKey };
}

export function certificateDer(certificatePem: Buffer): Buffer {
  return new crypto.X509Certificate(certificatePem).raw;
}

const byteArray = (b: Buffer): number[] => Array.from(b);

export function encodeSignatureSection(signer: EifSigner, pcr0Hex: string): Buffer {
  const payload = Buffer.from(encoder.encode({ register_index: 0, register_value: byteArray(Buffer.from(pcr0Hex, 'hex')) }));
  const cose = signCoseSign1(payload, signer.privateKey);
  return Buffer.from(encoder.encode([{ signing_certificate: byteArray(signer.certificatePem), signature: byteArray(cose) }]));
}

export interface SignatureCheck {
  certificatePem: string;
  subject: string;
  issuer: string;
  validFrom: string;
  validTo: string;
  fingerprint256: string;
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
  const cose = decodeCoseSign1(coseBytes);
  const info = decoder.decode(cose.payload) as { register_index?: unknown; register_value?: unknown };
  const signedPcr0 = bytesField(info.register_value, 'register_value', file).toString('hex');
  return {
    certificatePem: certificatePem.toString('utf8'),
    subject: certificate.subject,
    issuer: certificate.issuer,
    validFrom: certificate.validFrom,
    validTo: certificate.validTo,
    fingerprint256: certificate.fingerprint256,
    signedPcr0,
    signatureValid: info.register_index === 0 && verifyCoseSignature(cose, certificate.publicKey),
    pcr8: pcrOfBytes(certificate.raw),
  };
}
