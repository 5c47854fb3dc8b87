/**
 * The AttestationDocument inside the COSE payload (aws-nitro-enclaves-nsm-api
 * docs/attestation_process.md §2.2), with the shape checks of §3.2. Real documents encode absent
 * optional fields as CBOR null rather than omitting them, so both are accepted.
 */
import { cborEncoder, decodeCbor } from './cose.js';
import { AttestationError } from './errors.js';

export interface AttestationDocument {
  moduleId: string;
  digest: 'SHA384';
  /** Milliseconds since the Unix epoch, from the NSM's clock. */
  timestamp: number;
  pcrs: Map<number, Buffer>;
  /** DER leaf certificate. */
  certificate: Buffer;
  /** DER certificates ordered [root, intermediate_1 … intermediate_n]. */
  cabundle: Buffer[];
  publicKey: Buffer | null;
  userData: Buffer | null;
  nonce: Buffer | null;
}

const MAX_PCRS = 32;
const PCR_LENGTHS = new Set([32, 48, 64]);
const MAX_CERT_BYTES = 1024;
/** The sources disagree (512 or 1024); 1024 is the CDDL's bound and what NSM accepts. */
export const MAX_OPTIONAL_FIELD_BYTES = 1024;

function malformed(message: string, context: Record<string, unknown> = {}): AttestationError {
  return new AttestationError('malformed', message, context);
}

function optionalBytes(map: Map<unknown, unknown>, key: string): Buffer | null {
  const v = map.get(key);
  if (v === undefined || v === null) return null;
  if (!Buffer.isBuffer(v)) throw malformed(`${key} must be a byte string or null`, { field: key });
  if (v.length > MAX_OPTIONAL_FIELD_BYTES)
    throw malformed(`${key} is ${v.length} bytes (at most ${MAX_OPTIONAL_FIELD_BYTES})`, { field: key, length: v.length });
  return v;
}

function certificateBytes(v: unknown, field: string): Buffer {
  if (!Buffer.isBuffer(v) || v.length === 0 || v.length > MAX_CERT_BYTES)
    throw malformed(`${field} must be a DER certificate of 1..${MAX_CERT_BYTES} bytes`, { field });
  return v;
}

export function parseAttestationDocument(payload: Buffer): AttestationDocument {
  const map = decodeCbor(payload, 'attestation payload');
  if (!(map instanceof Map)) throw malformed('attestation payload must be a CBOR map');

  const moduleId = map.get('module_id');
  if (typeof moduleId !== 'string' || moduleId.length === 0)
    throw malformed('module_id must be a non-empty text string', { field: 'module_id' });
  const digest = map.get('digest');
  if (digest !== 'SHA384') throw malformed(`digest must be "SHA384", got ${JSON.stringify(digest)}`, { field: 'digest' });
  const rawTimestamp = map.get('timestamp');
  const timestamp = typeof rawTimestamp === 'bigint' ? Number(rawTimestamp) : rawTimestamp;
  if (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp) || timestamp <= 0)
    throw malformed('timestamp must be a positive integer (ms since the epoch)', { field: 'timestamp' });

  const rawPcrs = map.get('pcrs');
  if (!(rawPcrs instanceof Map) || rawPcrs.size === 0 || rawPcrs.size > MAX_PCRS)
    throw malformed(`pcrs must be a map of 1..${MAX_PCRS} entries`, { field: 'pcrs' });
  const pcrs = new Map<number, Buffer>();
  for (const [index, value] of rawPcrs) {
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= MAX_PCRS)
      throw malformed(`PCR index ${String(index)} is out of range 0..${MAX_PCRS - 1}`, { field: 'pcrs' });
    if (!Buffer.isBuffer(value) || !PCR_LENGTHS.has(value.length))
      throw malformed(`PCR${index} must be 32, 48 or 64 bytes`, { field: 'pcrs', index });
    pcrs.set(index, value);
  }

  const certificate = certificateBytes(map.get('certificate'), 'certificate');
  const rawBundle = map.get('cabundle');
  if (!Array.isArray(rawBundle) || rawBundle.length === 0)
    throw malformed('cabundle must be a non-empty array of certificates', { field: 'cabundle' });
  const cabundle = rawBundle.map((c, i) => certificateBytes(c, `cabundle[${i}]`));

  return {
    moduleId,
    digest,
    timestamp,
    pcrs,
    certificate,
    cabundle,
    publicKey: optionalBytes(map, 'public_key'),
    userData: optionalBytes(map, 'user_data'),
    nonce: optionalBytes(map, 'nonce'),
  };
}

/** Encode a document with the NSM's field order and null for absent optional fields. */
export function encodeAttestationDocument(doc: AttestationDocument): Buffer {
  return Buffer.from(
    cborEncoder.encode(
      new Map<string, unknown>([
        ['module_id', doc.moduleId],
        ['digest', doc.digest],
        // A BigInt keeps the timestamp a CBOR uint64 (a large Number would be written as a float).
        ['timestamp', BigInt(doc.timestamp)],
        ['pcrs', doc.pcrs],
        ['certificate', doc.certificate],
        ['cabundle', doc.cabundle],
        ['public_key', doc.publicKey],
        ['user_data', doc.userData],
        ['nonce', doc.nonce],
      ]),
    ),
  );
}
