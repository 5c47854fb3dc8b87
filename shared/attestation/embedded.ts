/**
 * The attestation inside the certificate (attested TLS with `embed_attestation: true`, issue 12;
 * the approach Evervault takes): the enclave's self-signed certificate carries an attestation
 * document binding its own key, in a non-critical X.509 extension. A client verifies it when the
 * handshake completes, with nothing more on the wire; a client that does not know the extension
 * ignores it (non-critical) and can still use the /.well-known endpoint.
 *
 * The extension's OID is under `2.25` (ITU-T X.667: an OID made from a random UUID), because the
 * project has no registered arc of its own and a made-up number under someone's enterprise arc
 * could collide; a UUID OID cannot (docs/decisions.md). Its value is an OCTET STRING holding the
 * COSE_Sign1 bytes exactly as the NSM returned them.
 *
 * Both sides use this file: the inner writes the extension, verifiers read it.
 */
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { Certificate, Extension } from '@peculiar/asn1-x509';
import { AttestationError } from './errors.js';

/** 2.25 + the decimal value of UUID 5966b29e-d6f8-4c15-979e-79292be52309. */
export const EMBEDDED_ATTESTATION_OID = '2.25.118834528757917157360841640728355742473';

/**
 * The OID as the ASN.1 parser reads it back: asn1js cannot hold an arc above 2^53 as a number and
 * writes it as `{hex}`, so extensions are matched against this round-tripped form.
 */
const PARSED_OID = AsnConvert.parse(
  AsnConvert.serialize(new Extension({ extnID: EMBEDDED_ATTESTATION_OID, critical: false, extnValue: new OctetString(0) })),
  Extension,
).extnID;

/** The DER that goes inside the extension's extnValue: an OCTET STRING of the document. */
export function embeddedAttestationValue(document: Buffer): OctetString {
  return new OctetString(new Uint8Array(document).buffer);
}

/** The document a certificate (DER) carries in the extension, or undefined when it has none. */
export function embeddedAttestation(certificateDer: Buffer): Buffer | undefined {
  let certificate: Certificate;
  try {
    certificate = AsnConvert.parse(certificateDer, Certificate);
  } catch (err) {
    throw new AttestationError('malformed', `the TLS certificate does not parse: ${(err as Error).message}`);
  }
  const extension = certificate.tbsCertificate.extensions?.find((e) => e.extnID === PARSED_OID);
  if (!extension) return undefined;
  try {
    return Buffer.from(AsnConvert.parse(extension.extnValue.buffer, OctetString).buffer);
  } catch (err) {
    throw new AttestationError('malformed', `the certificate's attestation extension is not an OCTET STRING: ${(err as Error).message}`, {
      oid: EMBEDDED_ATTESTATION_OID,
    });
  }
}
