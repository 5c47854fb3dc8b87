/**
 * COSE_Sign1 (RFC 8152 §4.2) as the Nitro Secure Module emits it: ES384 only, protected header
 * `{1: -35}`, empty unprotected header, raw r||s signature. AWS documents are untagged, but the
 * spec allows tag 18, so both are read; we always write untagged, like the NSM.
 */
import crypto from 'node:crypto';
import { Decoder, Encoder, Tag } from 'cbor-x';
import { AttestationError } from './errors.js';

export const COSE_SIGN1_TAG = 18;
const COSE_HEADER_ALG = 1;
const COSE_ALG_ES384 = -35;
/** P-384 signatures in IEEE-P1363 form are r||s, 48 bytes each. */
const ES384_SIGNATURE_BYTES = 96;

/** Maps decode as Map so integer keys (COSE labels, PCR indices) keep their type. */
export const cborDecoder = new Decoder({ mapsAsObjects: false, useRecords: false });
export const cborEncoder = new Encoder({ mapsAsObjects: false, useRecords: false, variableMapSize: true });

export interface CoseSign1 {
  protectedHeader: Buffer;
  payload: Buffer;
  signature: Buffer;
  tagged: boolean;
}

function malformed(message: string, context: Record<string, unknown> = {}): AttestationError {
  return new AttestationError('malformed', message, context);
}

export function decodeCbor(bytes: Uint8Array, what: string): unknown {
  try {
    return cborDecoder.decode(bytes);
  } catch (err) {
    throw malformed(`${what} is not valid CBOR: ${(err as Error).message}`, { what });
  }
}

export function decodeCoseSign1(bytes: Uint8Array): CoseSign1 {
  let value = decodeCbor(bytes, 'attestation document');
  let tagged = false;
  if (value instanceof Tag) {
    if (value.tag !== COSE_SIGN1_TAG) throw malformed(`unexpected CBOR tag ${value.tag} (COSE_Sign1 is tag 18)`, { tag: value.tag });
    value = value.value;
    tagged = true;
  }
  if (!Array.isArray(value) || value.length !== 4) throw malformed('a COSE_Sign1 must be a CBOR array of 4 items');
  const [protectedHeader, unprotected, payload, signature] = value as unknown[];
  if (!Buffer.isBuffer(protectedHeader)) throw malformed('COSE protected header must be a byte string');
  if (!(unprotected instanceof Map)) throw malformed('COSE unprotected header must be a map');
  if (!Buffer.isBuffer(payload) || payload.length === 0) throw malformed('COSE payload must be a non-empty byte string');
  if (!Buffer.isBuffer(signature)) throw malformed('COSE signature must be a byte string');

  const header = decodeCbor(protectedHeader, 'COSE protected header');
  const alg = header instanceof Map ? header.get(COSE_HEADER_ALG) : undefined;
  if (alg !== COSE_ALG_ES384)
    throw new AttestationError('unsupported_algorithm', `COSE algorithm ${String(alg)} is not ES384 (-35)`, { alg });
  if (signature.length !== ES384_SIGNATURE_BYTES)
    throw malformed(`ES384 signature must be ${ES384_SIGNATURE_BYTES} bytes, got ${signature.length}`, { length: signature.length });
  return { protectedHeader, payload, signature, tagged };
}

/** The bytes that are actually signed: Sig_structure = ["Signature1", protected, h'', payload]. */
export function sigStructure(protectedHeader: Buffer, payload: Buffer): Buffer {
  return Buffer.from(cborEncoder.encode(['Signature1', protectedHeader, Buffer.alloc(0), payload]));
}

export function verifyCoseSignature(cose: CoseSign1, publicKey: crypto.KeyObject): boolean {
  return crypto.verify(
    'sha384',
    sigStructure(cose.protectedHeader, cose.payload),
    { key: publicKey, dsaEncoding: 'ieee-p1363' },
    cose.signature,
  );
}

/** Sign `payload` as an untagged ES384 COSE_Sign1, byte-compatible with what the NSM returns. */
export function signCoseSign1(payload: Buffer, privateKey: crypto.KeyObject): Buffer {
  const protectedHeader = Buffer.from(cborEncoder.encode(new Map([[COSE_HEADER_ALG, COSE_ALG_ES384]])));
  const signature = crypto.sign('sha384', sigStructure(protectedHeader, payload), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return Buffer.from(cborEncoder.encode([protectedHeader, new Map(), payload, signature]));
}
