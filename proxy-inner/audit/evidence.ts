/**
 * The boot's checkpoint key: an ECDSA P-384 key pair made inside the enclave at start and never
 * exported, bound to this enclave image by one attestation document (NSM `public_key` = the
 * key's SPKI DER, `user_data` = the boot id). The document goes into the log as line 1 of the
 * boot, so a verifier needs nothing but the file and the PCRs it expects.
 */
import crypto from 'node:crypto';
import { randomUUID } from 'node:crypto';
import { attestationUserData, signLine, type AuditBootRecord } from '../../shared/audit/chain.js';
import type { Nsm } from '../nsm/nsm.js';

export class AuditEvidence {
  readonly bootId: string;
  readonly bootRecord: AuditBootRecord;
  private readonly privateKey: crypto.KeyObject;

  constructor(nsm: Nsm, bootId: string = randomUUID()) {
    this.bootId = bootId;
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    this.privateKey = privateKey;
    const document = nsm.attest({ publicKey: publicKey.export({ type: 'spki', format: 'der' }), userData: attestationUserData(bootId) });
    this.bootRecord = { type: 'audit_boot', ts: new Date().toISOString(), nsm: nsm.kind, attestation: document.toString('base64') };
  }

  /** A checkpoint's line with its signature. */
  sign(unsignedLine: string): string {
    return signLine(unsignedLine, this.privateKey);
  }
}
