/**
 * Verification of a Nitro attestation document (docs/attestation_process.md §3):
 * ES384 COSE signature by the leaf, chain [leaf, cabundle[n-1] … cabundle[1]] anchored at a
 * pinned root, every certificate valid at the chosen instant, then the caller's PCR and nonce
 * expectations. Each refusal is an AttestationError whose code names what failed.
 */
import crypto from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { BasicConstraints, Certificate, KeyUsage, KeyUsageFlags, id_ce_basicConstraints, id_ce_keyUsage } from '@peculiar/asn1-x509';
import { AWS_NITRO_ROOT_G1_PEM } from './aws-root.js';
import { decodeCoseSign1, verifyCoseSignature } from './cose.js';
import { type AttestationDocument, parseAttestationDocument } from './document.js';
import { AttestationError } from './errors.js';
import { clockSkewHint } from '../util/clock-skew.js';

/** The instant certificates must be valid at: the document's own timestamp, now, or a given date. */
export type ValidityInstant = 'document' | 'now' | Date;

export interface VerifyOptions {
  /** PEM or DER of the trusted root; the AWS Nitro G1 root by default. */
  root?: string | Buffer;
  at?: ValidityInstant;
  /** PCR index → expected value (bytes or hex, case-insensitive). */
  expectedPcrs?: Map<number, Buffer | string>;
  expectedNonce?: Buffer;
}

export interface VerifiedAttestation {
  document: AttestationDocument;
  tagged: boolean;
  /** The instant the chain was checked at. */
  checkedAt: Date;
}

function toX509(der: Buffer, what: string): crypto.X509Certificate {
  try {
    return new crypto.X509Certificate(der);
  } catch (err) {
    throw new AttestationError('malformed', `${what} is not a valid X.509 certificate: ${(err as Error).message}`, { what });
  }
}

function rootDer(root: string | Buffer): Buffer {
  return toX509(typeof root === 'string' ? Buffer.from(root) : root, 'the pinned root').raw;
}

interface CaProfile {
  ca: boolean;
  pathLen: number | undefined;
  keyUsage: number;
}

/**
 * Results that depend only on certificate bytes — a parsed profile, "this DER is signed by that
 * DER" — are remembered by SHA-256: the same root, intermediates and (for hours) leaf come back
 * in every document, and re-parsing and re-verifying them was most of the cost. Validity, which
 * depends on the instant, is always checked afresh.
 */
const MEMO_LIMIT = 256;
const profiles = new Map<string, CaProfile>();
const verifiedLinks = new Set<string>();

function fingerprint(der: Buffer): string {
  return crypto.createHash('sha256').update(der).digest('hex');
}

/** Bounded by starting over: a verifier that sees more distinct certificates than this gains nothing. */
function remember<T>(memo: Map<string, T> | Set<string>, key: string, value?: T): void {
  if (memo.size >= MEMO_LIMIT) memo.clear();
  if (memo instanceof Map) memo.set(key, value as T);
  else memo.add(key);
}

/** basicConstraints and keyUsage, which Node's X509Certificate does not expose in full. */
function caProfile(der: Buffer, what: string): CaProfile {
  const key = fingerprint(der);
  const known = profiles.get(key);
  if (known) return known;
  const profile = parseCaProfile(der, what);
  remember(profiles, key, profile);
  return profile;
}

function parseCaProfile(der: Buffer, what: string): CaProfile {
  const cert = AsnConvert.parse(der, Certificate);
  let ca = false;
  let pathLen: number | undefined;
  let keyUsage: number | undefined;
  for (const ext of cert.tbsCertificate.extensions ?? []) {
    const value = ext.extnValue.buffer;
    if (ext.extnID === id_ce_basicConstraints) {
      const bc = AsnConvert.parse(value, BasicConstraints);
      ca = bc.cA;
      pathLen = bc.pathLenConstraint;
    } else if (ext.extnID === id_ce_keyUsage) {
      keyUsage = AsnConvert.parse(value, KeyUsage).toNumber();
    }
  }
  if (keyUsage === undefined) throw new AttestationError('chain_invalid', `${what} has no keyUsage extension`, { certificate: what });
  return { ca, pathLen, keyUsage };
}

function checkValidity(cert: crypto.X509Certificate, what: string, at: Date): void {
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  const context = {
    certificate: what,
    subject: cert.subject,
    notBefore: notBefore.toISOString(),
    notAfter: notAfter.toISOString(),
    at: at.toISOString(),
  };
  // Checked against this machine's clock (not the document's timestamp): a skewed clock may be the cause.
  const skew = Math.abs(at.getTime() - Date.now()) < 60_000 ? (code: string) => clockSkewHint({ code }, at) : () => '';
  if (at < notBefore)
    throw new AttestationError(
      'not_yet_valid',
      `${what} is not valid before ${notBefore.toISOString()} (checked at ${at.toISOString()})${skew('not_yet_valid')}`,
      context,
    );
  if (at > notAfter)
    throw new AttestationError(
      'expired',
      `${what} expired at ${notAfter.toISOString()} (checked at ${at.toISOString()})${skew('expired')}`,
      context,
    );
}

interface ChainLink {
  der: Buffer;
  name: string;
  cert: crypto.X509Certificate;
}

function checkLeafProfile(profile: CaProfile, name: string): void {
  if (profile.ca) throw new AttestationError('chain_invalid', 'the leaf certificate is a CA', { certificate: name });
  if ((profile.keyUsage & KeyUsageFlags.digitalSignature) === 0)
    throw new AttestationError('chain_invalid', 'the leaf certificate may not sign (no digitalSignature key usage)', { certificate: name });
}

/** `casBelow`: how many CAs sit between this one and the leaf (pathLen counts those, not the leaf). */
function checkCaProfile(profile: CaProfile, name: string, casBelow: number): void {
  if (!profile.ca || (profile.keyUsage & KeyUsageFlags.keyCertSign) === 0)
    throw new AttestationError('chain_invalid', `${name} is not a CA allowed to sign certificates`, { certificate: name });
  if (profile.pathLen !== undefined && casBelow > profile.pathLen)
    throw new AttestationError('chain_invalid', `${name} allows ${profile.pathLen} CAs below it, the chain has ${casBelow}`, {
      certificate: name,
    });
}

function checkChain(doc: AttestationDocument, pinnedRoot: Buffer, at: Date): void {
  const [bundleRoot, ...intermediates] = doc.cabundle;
  if (!bundleRoot?.equals(pinnedRoot)) {
    const rootSha256 = bundleRoot ? fingerprint(bundleRoot) : 'none';
    throw new AttestationError('wrong_root', `the document chains to a root (SHA-256 ${rootSha256}) that is not the pinned root`, {
      rootSha256,
    });
  }
  // Leaf first, then the intermediates from the one nearest the leaf up to the root.
  const named: Array<{ der: Buffer; name: string }> = [
    { der: doc.certificate, name: 'leaf certificate' },
    ...intermediates.map((der, i) => ({ der, name: `cabundle[${i + 1}]` })).reverse(),
    { der: pinnedRoot, name: 'root certificate' },
  ];
  const chain: ChainLink[] = named.map(({ der, name }) => ({ der, name, cert: toX509(der, name) }));
  chain.forEach((link, i) => {
    const issuer = chain[i + 1] ?? link;
    const key = `${fingerprint(link.der)}<${fingerprint(issuer.der)}`;
    if (!verifiedLinks.has(key)) {
      if (!link.cert.checkIssued(issuer.cert) || !link.cert.verify(issuer.cert.publicKey))
        throw new AttestationError('chain_invalid', `${link.name} is not signed by ${issuer === link ? 'itself' : issuer.name}`, {
          certificate: link.name,
          subject: link.cert.subject,
        });
      remember(verifiedLinks, key);
    }
    const profile = caProfile(link.der, link.name);
    if (i === 0) checkLeafProfile(profile, link.name);
    else checkCaProfile(profile, link.name, i - 1);
    checkValidity(link.cert, link.name, at);
  });
}

function pcrBytes(expected: Buffer | string, index: number): Buffer {
  if (Buffer.isBuffer(expected)) return expected;
  if (!/^([0-9a-fA-F]{2})+$/.test(expected)) throw new AttestationError('malformed', `expected PCR${index} is not hex`, { index });
  return Buffer.from(expected, 'hex');
}

export function verifyAttestation(bytes: Uint8Array, options: VerifyOptions = {}): VerifiedAttestation {
  const cose = decodeCoseSign1(bytes);
  const document = parseAttestationDocument(cose.payload);
  const leaf = toX509(document.certificate, 'leaf certificate');
  if (!verifyCoseSignature(cose, leaf.publicKey))
    throw new AttestationError('bad_signature', "the COSE signature does not verify with the leaf certificate's key", {
      moduleId: document.moduleId,
    });

  const at = options.at ?? 'document';
  const checkedAt = at === 'document' ? new Date(document.timestamp) : at === 'now' ? new Date() : at;
  checkChain(document, rootDer(options.root ?? AWS_NITRO_ROOT_G1_PEM), checkedAt);

  for (const [index, expected] of options.expectedPcrs ?? []) {
    const actual = document.pcrs.get(index);
    if (!actual) throw new AttestationError('pcr_missing', `the document has no PCR${index}`, { index });
    const want = pcrBytes(expected, index);
    if (!actual.equals(want))
      throw new AttestationError(
        'pcr_mismatch',
        `PCR${index} mismatch: document has ${actual.toString('hex')}, expected ${want.toString('hex')}`,
        { index, actual: actual.toString('hex'), expected: want.toString('hex') },
      );
  }
  if (options.expectedNonce && !(document.nonce && document.nonce.equals(options.expectedNonce))) {
    throw new AttestationError(
      'nonce_mismatch',
      document.nonce ? "the document's nonce differs from the expected one" : 'the document carries no nonce',
      { actual: document.nonce?.toString('hex') ?? null, expected: options.expectedNonce.toString('hex') },
    );
  }
  return { document, tagged: cose.tagged, checkedAt };
}
