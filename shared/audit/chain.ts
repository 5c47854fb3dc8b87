/**
 * The audit log as evidence: how the inner turns records into lines that the untrusted parent can
 * store and forward but not alter, drop, reorder or forge unnoticed (docs/audit.md).
 *
 * - Every line is `{"seq":N,"boot_id":"…","prev":"<hex SHA-256 of the previous line>",…fields}`,
 *   built inside the enclave. The hash is over the line's exact bytes as written (no newline), so
 *   the verifier needs no canonical JSON: the outer writes the inner's text verbatim.
 * - Line 1 of a boot is an `audit_boot` record carrying an attestation document whose
 *   `public_key` is the boot's checkpoint key (ECDSA P-384, made inside at start) and whose
 *   `user_data` names the boot: only this enclave image could have produced that key.
 * - `audit_checkpoint` records sign their own line (which holds `prev`, the chain head): one
 *   signature covers every record before it. The last line of a cleanly stopped boot is a closing
 *   checkpoint, so a cut tail shows as "no closing checkpoint".
 * Checkpoints, not records, are signed: a hash per record costs microseconds, a P-384 signature
 * about a millisecond, which would show in the egress handshake rate.
 */
import crypto from 'node:crypto';

/** The `prev` of a boot's first line. */
export const GENESIS_PREV = '0'.repeat(64);
/** `user_data` of the boot's attestation: binds the document to this stream (and only this one). */
export const ATTESTATION_USER_DATA_PREFIX = 'enclaver-proxy audit v1 boot_id=';
/** ES384 signatures in IEEE P1363 form (r || s), base64 in the line. */
export const CHECKPOINT_SIGNATURE = { hash: 'sha384', dsaEncoding: 'ieee-p1363' } as const;

/** First line of every boot: the attested checkpoint key. */
export interface AuditBootRecord {
  type: 'audit_boot';
  ts: string;
  /** `device` on Nitro; `simulator` documents are signed by a throw-away CA and prove nothing. */
  nsm: 'device' | 'simulator';
  /** Base64 COSE_Sign1 attestation document; `public_key` = SPKI DER of the checkpoint key. */
  attestation: string;
}

/** Signed statement: "the chain up to `prev` (records first_seq … last_seq) is mine". */
export interface AuditCheckpointRecord {
  type: 'audit_checkpoint';
  ts: string;
  /** Records covered by this checkpoint and not by the one before. */
  first_seq: number;
  last_seq: number;
  /** The boot's stream ends here (clean shutdown): any later line of this boot is forged. */
  closing: boolean;
}

export type EvidenceRecord = AuditBootRecord | AuditCheckpointRecord;

export interface ChainPosition {
  seq: number;
  boot_id: string;
  prev: string;
}

export function lineHash(line: string): string {
  // One-shot: no Hash object per record (it runs once per egress attempt).
  return crypto.hash('sha256', line, 'hex');
}

/** One line (without newline): the stream position first, then the record's own fields. */
export function chainLine(pos: ChainPosition, record: object): string {
  return JSON.stringify({ seq: pos.seq, boot_id: pos.boot_id, prev: pos.prev, ...record });
}

/** The line with `"sig"` appended as its last field; the signature covers the line without it. */
export function signLine(unsigned: string, key: crypto.KeyObject): string {
  const sig = crypto.sign(CHECKPOINT_SIGNATURE.hash, Buffer.from(unsigned, 'utf8'), { key, dsaEncoding: CHECKPOINT_SIGNATURE.dsaEncoding });
  return `${unsigned.slice(0, -1)},"sig":"${sig.toString('base64')}"}`;
}

/** Whether a signed line's `sig` verifies with the key (false for any malformed line). */
export function verifyLineSignature(line: string, sig: string, key: crypto.KeyObject): boolean {
  const suffix = `,"sig":"${sig}"}`;
  if (!line.endsWith(suffix)) return false;
  const unsigned = `${line.slice(0, -suffix.length)}}`;
  try {
    return crypto.verify(
      CHECKPOINT_SIGNATURE.hash,
      Buffer.from(unsigned, 'utf8'),
      { key, dsaEncoding: CHECKPOINT_SIGNATURE.dsaEncoding },
      Buffer.from(sig, 'base64'),
    );
  } catch {
    return false;
  }
}

export function attestationUserData(bootId: string): Buffer {
  return Buffer.from(`${ATTESTATION_USER_DATA_PREFIX}${bootId}`, 'utf8');
}
