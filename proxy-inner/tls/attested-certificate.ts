/**
 * `tls.certificate: attested`: a TLS identity that exists only inside this enclave. The key pair
 * is generated here at startup (P-256; it is never written anywhere, never leaves the process) and
 * a self-signed certificate is issued for the configured names. Its trust comes from the
 * attestation, not from a CA: documents served at /.well-known/enclave-attestation bind the
 * certificate's SubjectPublicKeyInfo (shared/attestation/tls-binding.ts), and a client that checks
 * one over the same connection knows the TLS peer is the measured enclave, not the parent relaying
 * the bytes (which could terminate TLS only with a key of its own).
 */
import crypto from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_kp_serverAuth,
} from '@peculiar/asn1-x509';
import { spkiSha256, tlsBindingUserData } from '../../shared/attestation/tls-binding.js';

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const OID_COMMON_NAME = '2.5.4.3';
const OID_ORGANIZATION = '2.5.4.10';
/** Long enough not to matter: the certificate's trust is the attestation, checked per connection. */
const VALIDITY_MS = 365 * 24 * 3600_000;
const BACKDATE_MS = 5 * 60_000;

export interface AttestedCertificateOptions {
  /** DNS names and IP addresses the certificate is issued for (subjectAltName). */
  names: readonly string[];
  now?: () => number;
}

function extension(extnID: string, critical: boolean, value: object): Extension {
  return new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

function generalName(name: string): GeneralName {
  return net.isIP(name) ? new GeneralName({ iPAddress: name }) : new GeneralName({ dNSName: name });
}

function serialNumber(): ArrayBuffer {
  const serial = crypto.randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  return new Uint8Array(serial).buffer;
}

export class AttestedCertificate {
  readonly certificatePem: string;
  readonly spkiDer: Buffer;
  /** What documents put in `user_data` to bind this certificate's key. */
  readonly userData: Buffer;
  private readonly context: tls.SecureContext;

  constructor(opts: AttestedCertificateOptions) {
    if (opts.names.length === 0) throw new Error('an attested certificate needs at least one name');
    const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.spkiDer = publicKey.export({ type: 'spki', format: 'der' });
    this.userData = tlsBindingUserData(this.spkiDer);
    const now = opts.now?.() ?? Date.now();
    const subject = new Name([
      new RelativeDistinguishedName([
        new AttributeTypeAndValue({ type: OID_ORGANIZATION, value: new AttributeValue({ utf8String: 'enclaver-proxy attested TLS' }) }),
      ]),
      new RelativeDistinguishedName([
        new AttributeTypeAndValue({ type: OID_COMMON_NAME, value: new AttributeValue({ utf8String: opts.names[0]! }) }),
      ]),
    ]);
    const algorithm = new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 });
    const tbs = new TBSCertificate({
      version: Version.v3,
      serialNumber: serialNumber(),
      signature: algorithm,
      issuer: subject,
      validity: new Validity({ notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(now + VALIDITY_MS) }),
      subject,
      subjectPublicKeyInfo: AsnConvert.parse(this.spkiDer, SubjectPublicKeyInfo),
      extensions: new Extensions([
        extension(id_ce_basicConstraints, true, new BasicConstraints({ cA: false })),
        extension(id_ce_keyUsage, true, new KeyUsage(KeyUsageFlags.digitalSignature)),
        extension(id_ce_extKeyUsage, false, new ExtendedKeyUsage([id_kp_serverAuth])),
        extension(id_ce_subjectAltName, false, new SubjectAlternativeName(opts.names.map(generalName))),
      ]),
    });
    const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
    const signature = crypto.sign('sha256', tbsDer, { key: privateKey, dsaEncoding: 'der' });
    const der = Buffer.from(
      AsnConvert.serialize(
        new Certificate({ tbsCertificate: tbs, signatureAlgorithm: algorithm, signatureValue: new Uint8Array(signature).buffer }),
      ),
    );
    this.certificatePem = new crypto.X509Certificate(der).toString();
    this.context = tls.createSecureContext({
      cert: this.certificatePem,
      key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
      minVersion: 'TLSv1.2',
    });
  }

  /** SHA-256 of the SPKI, hex: what operators compare with the `user_data` of a document. */
  get spkiSha256Hex(): string {
    return spkiSha256(this.spkiDer).toString('hex');
  }

  secureContext(): Promise<tls.SecureContext> {
    return Promise.resolve(this.context);
  }
}
