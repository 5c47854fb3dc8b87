/**
 * A throw-away certificate chain shaped like AWS's: root → intermediate → short-lived leaf,
 * P-384 keys, ecdsa-with-SHA384, the leaf a non-CA with digitalSignature. It exists only to sign
 * simulated attestation documents; nothing it signs is worth anything off this machine.
 */
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Asn1Schema from '@peculiar/asn1-schema';
import type * as Asn1X509 from '@peculiar/asn1-x509';

/**
 * The ASN.1 code (~270 modules, ~40 ms of start-up) is loaded with the first certificate: every
 * inner loads this file (the NSM opens the simulator only off Nitro), and one with the real NSM
 * never needs it. require(), because issuing is synchronous (the simulator starts in openNsm).
 */
let asn1: { schema: typeof Asn1Schema; x509: typeof Asn1X509 } | undefined;
function loadAsn1(): { schema: typeof Asn1Schema; x509: typeof Asn1X509 } {
  const require = createRequire(import.meta.url);
  asn1 ??= { schema: require('@peculiar/asn1-schema') as typeof Asn1Schema, x509: require('@peculiar/asn1-x509') as typeof Asn1X509 };
  return asn1;
}

const ECDSA_WITH_SHA384 = '1.2.840.10045.4.3.3';
const OID_COMMON_NAME = '2.5.4.3';
const OID_ORGANIZATION = '2.5.4.10';

export interface Issued {
  der: Buffer;
  privateKey: crypto.KeyObject;
  subject: Asn1X509.Name;
}

function name(commonName: string): Asn1X509.Name {
  const { AttributeTypeAndValue, AttributeValue, Name, RelativeDistinguishedName } = loadAsn1().x509;
  const attr = (type: string, text: string) =>
    new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value: new AttributeValue({ utf8String: text }) })]);
  return new Name([attr(OID_ORGANIZATION, 'enclaver-proxy NSM simulator (not AWS)'), attr(OID_COMMON_NAME, commonName)]);
}

function extension(extnID: string, value: Asn1X509.BasicConstraints | Asn1X509.KeyUsage): Asn1X509.Extension {
  const { AsnConvert, OctetString } = loadAsn1().schema;
  const { Extension } = loadAsn1().x509;
  return new Extension({ extnID, critical: true, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

/** A positive 16-byte serial (top bit clear, so DER needs no sign byte). */
function serialNumber(): ArrayBuffer {
  const serial = crypto.randomBytes(16);
  serial.writeUInt8((serial.readUInt8(0) & 0x7f) | 0x01, 0);
  return new Uint8Array(serial).buffer;
}

export interface IssueOptions {
  commonName: string;
  validFrom: Date;
  validTo: Date;
  /** undefined for a leaf; the number of CAs allowed below for a CA. */
  pathLen?: number;
  issuer?: Issued;
}

export function issueCertificate(opts: IssueOptions): Issued {
  const { AsnConvert } = loadAsn1().schema;
  const {
    AlgorithmIdentifier,
    BasicConstraints,
    Certificate,
    Extensions,
    KeyUsage,
    KeyUsageFlags,
    SubjectPublicKeyInfo,
    TBSCertificate,
    Validity,
    Version,
    id_ce_basicConstraints,
    id_ce_keyUsage,
  } = loadAsn1().x509;
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const subject = name(opts.commonName);
  const isCa = opts.pathLen !== undefined;
  const algorithm = new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA384 });
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: serialNumber(),
    signature: algorithm,
    issuer: opts.issuer?.subject ?? subject,
    validity: new Validity({ notBefore: opts.validFrom, notAfter: opts.validTo }),
    subject,
    subjectPublicKeyInfo: AsnConvert.parse(publicKey.export({ type: 'spki', format: 'der' }), SubjectPublicKeyInfo),
    extensions: new Extensions([
      extension(id_ce_basicConstraints, new BasicConstraints(isCa ? { cA: true, pathLenConstraint: opts.pathLen } : { cA: false })),
      extension(id_ce_keyUsage, new KeyUsage(isCa ? KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign : KeyUsageFlags.digitalSignature)),
    ]),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = crypto.sign('sha384', tbsDer, { key: opts.issuer?.privateKey ?? privateKey, dsaEncoding: 'der' });
  const cert = new Certificate({ tbsCertificate: tbs, signatureAlgorithm: algorithm, signatureValue: new Uint8Array(signature).buffer });
  return { der: Buffer.from(AsnConvert.serialize(cert)), privateKey, subject };
}

export function toPem(der: Buffer): string {
  return new crypto.X509Certificate(der).toString();
}
