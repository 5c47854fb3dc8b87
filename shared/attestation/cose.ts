/**
 * COSE_Sign1 (RFC 8152 §4.2) as the Nitro Secure Module emits it and nitro-cli signs EIFs with:
 * protected header `{1: alg}`, empty unprotected header, raw r||s signature. AWS documents are
 * untagged, but the spec allows tag 18, so both are read; we always write untagged, like the NSM.
 *
 * The NSM signs with ES384 only, so attestation documents are decoded with ES384 alone (the
 * default): a document under any other algorithm is refused before its signature is looked at.
 * EIF signatures may also be ES256 or ES512 (nitro-cli picks the algorithm from the key's curve),
 * and their reader says so explicitly.
 */
import crypto from 'node:crypto';
import { Decoder, Encoder, Tag } from 'cbor-x';
import { AttestationError } from './errors.js';

export const COSE_SIGN1_TAG = 18;
const COSE_HEADER_ALG = 1;

/**
 * The ECDSA algorithms COSE names (RFC 8152 §8.1): each fixes the curve, the hash, and the width
 * of r and s in the raw signature (ceil(curve bits / 8): 32, 48, 66).
 */
export const COSE_ALGORITHMS = {
  ES256: { id: -7, curve: 'prime256v1', hash: 'sha256', half: 32 },
  ES384: { id: -35, curve: 'secp384r1', hash: 'sha384', half: 48 },
  ES512: { id: -36, curve: 'secp521r1', hash: 'sha512', half: 66 },
} as const;
export type CoseAlgorithm = keyof typeof COSE_ALGORITHMS;

/** The COSE algorithm an EC key signs with (nitro-cli's mapping), or undefined for another key. */
export function coseAlgorithmOf(key: crypto.KeyObject): CoseAlgorithm | undefined {
  if (key.asymmetricKeyType !== 'ec') return undefined;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return (Object.keys(COSE_ALGORITHMS) as CoseAlgorithm[]).find((a) => COSE_ALGORITHMS[a].curve === curve);
}

/** Maps decode as Map so integer keys (COSE labels, PCR indices) keep their type. */
export const cborDecoder = new Decoder({ mapsAsObjects: false, useRecords: false });
export const cborEncoder = new Encoder({ mapsAsObjects: false, useRecords: false, variableMapSize: true });

export interface CoseSign1 {
  algorithm: CoseAlgorithm;
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

/** `accept`: the algorithms this reader takes (attestation documents: ES384, the NSM's only one). */
export function decodeCoseSign1(bytes: Uint8Array, accept: readonly CoseAlgorithm[] = ['ES384']): CoseSign1 {
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
  const algorithm = accept.find((a) => COSE_ALGORITHMS[a].id === alg);
  if (algorithm === undefined)
    throw new AttestationError(
      'unsupported_algorithm',
      `COSE algorithm ${String(alg)} is not ${accept.map((a) => `${a} (${COSE_ALGORITHMS[a].id})`).join(' or ')}`,
      { alg },
    );
  const bytesWanted = 2 * COSE_ALGORITHMS[algorithm].half;
  if (signature.length !== bytesWanted)
    throw malformed(`${algorithm} signature must be ${bytesWanted} bytes, got ${signature.length}`, { length: signature.length });
  return { algorithm, protectedHeader, payload, signature, tagged };
}

/** The bytes that are actually signed: Sig_structure = ["Signature1", protected, h'', payload]. */
export function sigStructure(protectedHeader: Buffer, payload: Buffer): Buffer {
  return Buffer.from(cborEncoder.encode(['Signature1', protectedHeader, Buffer.alloc(0), payload]));
}

/** False also when the key is not on the algorithm's curve (COSE ties each ESxxx to one curve). */
export function verifyCoseSignature(cose: CoseSign1, publicKey: crypto.KeyObject): boolean {
  if (coseAlgorithmOf(publicKey) !== cose.algorithm) return false;
  return crypto.verify(
    COSE_ALGORITHMS[cose.algorithm].hash,
    sigStructure(cose.protectedHeader, cose.payload),
    { key: publicKey, dsaEncoding: 'ieee-p1363' },
    cose.signature,
  );
}

/** Signs the Sig_structure's bytes with the algorithm's hash and returns the raw r||s signature. */
export type CoseSignFunction = (toBeSigned: Buffer) => Promise<Buffer>;

const protectedHeaderOf = (algorithm: CoseAlgorithm): Buffer =>
  Buffer.from(cborEncoder.encode(new Map([[COSE_HEADER_ALG, COSE_ALGORITHMS[algorithm].id]])));
const encodeSign1 = (protectedHeader: Buffer, payload: Buffer, signature: Buffer): Buffer =>
  Buffer.from(cborEncoder.encode([protectedHeader, new Map(), payload, signature]));

/**
 * An untagged COSE_Sign1 over `payload`, signed by `sign`: a local key or a remote one such as
 * KMS, hence asynchronous.
 */
export async function signCoseSign1With(payload: Buffer, algorithm: CoseAlgorithm, sign: CoseSignFunction): Promise<Buffer> {
  const protectedHeader = protectedHeaderOf(algorithm);
  return encodeSign1(protectedHeader, payload, await sign(sigStructure(protectedHeader, payload)));
}

/** Sign `payload` as an untagged ES384 COSE_Sign1 with a local key, byte-compatible with what the NSM returns. */
export function signCoseSign1(payload: Buffer, privateKey: crypto.KeyObject): Buffer {
  const protectedHeader = protectedHeaderOf('ES384');
  const signature = crypto.sign('sha384', sigStructure(protectedHeader, payload), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return encodeSign1(protectedHeader, payload, signature);
}
