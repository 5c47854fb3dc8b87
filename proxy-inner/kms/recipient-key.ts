/**
 * The KMS recipient key of this process: RSA-2048, generated at startup and never leaving
 * memory. Its SPKI DER goes into attestation documents as `public_key`; KMS encrypts to it, and
 * only this process can open what comes back.
 */
import crypto from 'node:crypto';
import { decryptRecipientEnvelope } from '../aws/cms.js';

export class RecipientKey {
  readonly spkiDer: Buffer;
  private readonly privateKey: crypto.KeyObject;

  constructor() {
    const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 65537 });
    this.spkiDer = publicKey.export({ type: 'spki', format: 'der' });
    this.privateKey = privateKey;
  }

  /** Decrypt a `CiphertextForRecipient` (BER CMS EnvelopedData) addressed to this key. */
  open(ciphertextForRecipient: Buffer): Buffer {
    return decryptRecipientEnvelope(ciphertextForRecipient, this.privateKey);
  }
}
