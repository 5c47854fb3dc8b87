/**
 * How an attestation document binds a TLS key (attested TLS, issue 12): `user_data` holds the
 * SHA-256 of the certificate's SubjectPublicKeyInfo as a multihash (0x12 = sha2-256, 0x20 = 32
 * bytes, then the digest), the shape nitriding uses for its certificate fingerprint. The SPKI and
 * not the whole certificate: a certificate re-issued for the same key (new names, new validity)
 * stays bound, and the key is what the TLS handshake proves possession of.
 *
 * Both sides use this file: the inner writes the binding, verifiers check it.
 */
import crypto from 'node:crypto';
import type { AttestationDocument } from './document.js';
import { AttestationError } from './errors.js';

/** Where an attested TLS listener serves fresh documents: `GET …?nonce=HEX`. */
export const ATTESTATION_WELL_KNOWN_PATH = '/.well-known/enclave-attestation';

const MULTIHASH_SHA2_256 = Buffer.from([0x12, 0x20]);

export function spkiSha256(spkiDer: Buffer): Buffer {
  return crypto.createHash('sha256').update(spkiDer).digest();
}

/** The SPKI (DER) of an X.509 certificate's key. */
export function spkiOf(cert: crypto.X509Certificate): Buffer {
  return cert.publicKey.export({ type: 'spki', format: 'der' });
}

/** The `user_data` that binds the TLS key with this SPKI. */
export function tlsBindingUserData(spkiDer: Buffer): Buffer {
  return Buffer.concat([MULTIHASH_SHA2_256, spkiSha256(spkiDer)]);
}

/** Throws unless the document's user_data binds exactly this SPKI. */
export function checkTlsBinding(document: AttestationDocument, spkiDer: Buffer): void {
  const u = document.userData;
  if (!u || u.length !== 34 || !u.subarray(0, 2).equals(MULTIHASH_SHA2_256)) {
    throw new AttestationError('binding_missing', 'the document binds no TLS key (user_data is not a sha2-256 multihash of an SPKI)', {
      userData: u?.toString('hex') ?? null,
    });
  }
  const expected = spkiSha256(spkiDer);
  if (!u.subarray(2).equals(expected)) {
    throw new AttestationError(
      'binding_mismatch',
      "the document binds a different TLS key than this connection's: someone else terminated TLS",
      {
        bound: u.subarray(2).toString('hex'),
        connection: expected.toString('hex'),
      },
    );
  }
}
