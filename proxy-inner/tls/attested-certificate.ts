/**
 * `tls.certificate: attested`: a TLS identity that exists only inside this enclave. The key pair
 * is generated here at startup (P-256; it is never written anywhere, never leaves the process) and
 * a self-signed certificate is issued for the configured names. Its trust comes from the
 * attestation, not from a CA: documents served at /.well-known/enclave-attestation bind the
 * certificate's SubjectPublicKeyInfo (shared/attestation/tls-binding.ts), and a client that checks
 * one over the same connection knows the TLS peer is the measured enclave, not the parent relaying
 * the bytes (which could terminate TLS only with a key of its own).
 *
 * With `embed_attestation`, the certificate also carries a document binding the same key
 * (shared/attestation/embedded.ts), so clients need no round trip. That document has no client
 * nonce: its freshness is its signing chain (the NSM's leaf lives about three hours), so the
 * certificate is re-issued — same key, fresh document — before the earliest certificate of that
 * chain expires. New handshakes take the new SecureContext; connections already up keep theirs.
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
import { decodeCoseSign1 } from '../../shared/attestation/cose.js';
import { parseAttestationDocument } from '../../shared/attestation/document.js';
import { EMBEDDED_ATTESTATION_OID, embeddedAttestationValue } from '../../shared/attestation/embedded.js';
import { spkiSha256, tlsBindingUserData } from '../../shared/attestation/tls-binding.js';
import { messageOf } from '../../shared/errors/index.js';
import { logger } from '../../shared/log/logger.js';
import { pemSecureContext } from '../../shared/tls/identity.js';
import type { Nsm } from '../nsm/nsm.js';

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const OID_COMMON_NAME = '2.5.4.3';
const OID_ORGANIZATION = '2.5.4.10';
/** Long enough not to matter: the certificate's trust is the attestation, checked per connection. */
const VALIDITY_MS = 365 * 24 * 3600_000;
const BACKDATE_MS = 5 * 60_000;
/**
 * Re-issue this long before the document's chain expires: a client whose clock runs up to this much
 * ahead still accepts the old one, and the NSM's leaf (which it renews itself when near its end)
 * has been replaced by then.
 */
export const REISSUE_BEFORE_EXPIRY_MS = 10 * 60_000;
/** Retry after a failed attestation, or when the NSM still signs with the leaf about to expire. */
export const REISSUE_RETRY_MS = 60_000;
/** setTimeout's longest delay (about 24.8 days); longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const log = logger('attested-tls');

function extension(extnID: string, critical: boolean, value: object): Extension {
  return new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

function generalName(name: string): GeneralName {
  return net.isIP(name) ? new GeneralName({ iPAddress: name }) : new GeneralName({ dNSName: name });
}

/** 16 random bytes, positive (the top bit clear) and never starting with a zero byte (DER's minimal form). */
function serialNumber(): ArrayBuffer {
  const serial = crypto.randomBytes(16);
  serial.writeUInt8((serial.readUInt8(0) & 0x7f) | 0x01, 0);
  return new Uint8Array(serial).buffer;
}

export interface SelfSignedOptions {
  publicKey: crypto.KeyObject;
  privateKey: crypto.KeyObject;
  /** DNS names and IP addresses (subjectAltName); the first is also the common name. */
  names: [string, ...string[]];
  now: number;
  /** An attestation document to carry in the extension (shared/attestation/embedded.ts). */
  document?: Buffer;
}

/** A self-signed P-256 certificate (DER) for `names`, optionally carrying an attestation document. */
export function selfSignedCertificate(opts: SelfSignedOptions): Buffer {
  const subject = new Name([
    new RelativeDistinguishedName([
      new AttributeTypeAndValue({ type: OID_ORGANIZATION, value: new AttributeValue({ utf8String: 'enclaver-proxy attested TLS' }) }),
    ]),
    new RelativeDistinguishedName([
      new AttributeTypeAndValue({ type: OID_COMMON_NAME, value: new AttributeValue({ utf8String: opts.names[0] }) }),
    ]),
  ]);
  const algorithm = new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 });
  const extensions = [
    extension(id_ce_basicConstraints, true, new BasicConstraints({ cA: false })),
    extension(id_ce_keyUsage, true, new KeyUsage(KeyUsageFlags.digitalSignature)),
    extension(id_ce_extKeyUsage, false, new ExtendedKeyUsage([id_kp_serverAuth])),
    extension(id_ce_subjectAltName, false, new SubjectAlternativeName(opts.names.map(generalName))),
  ];
  // Non-critical: a client that does not know the extension must still accept the certificate.
  if (opts.document) extensions.push(extension(EMBEDDED_ATTESTATION_OID, false, embeddedAttestationValue(opts.document)));
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: serialNumber(),
    signature: algorithm,
    issuer: subject,
    validity: new Validity({ notBefore: new Date(opts.now - BACKDATE_MS), notAfter: new Date(opts.now + VALIDITY_MS) }),
    subject,
    subjectPublicKeyInfo: AsnConvert.parse(opts.publicKey.export({ type: 'spki', format: 'der' }), SubjectPublicKeyInfo),
    extensions: new Extensions(extensions),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = crypto.sign('sha256', tbsDer, { key: opts.privateKey, dsaEncoding: 'der' });
  return Buffer.from(
    AsnConvert.serialize(
      new Certificate({ tbsCertificate: tbs, signatureAlgorithm: algorithm, signatureValue: new Uint8Array(signature).buffer }),
    ),
  );
}

/** When the earliest certificate of a document's signing chain (leaf, intermediates, root) expires, ms. */
export function documentChainExpiry(document: Buffer): number {
  const parsed = parseAttestationDocument(decodeCoseSign1(document).payload);
  return Math.min(...[parsed.certificate, ...parsed.cabundle].map((der) => new Date(new crypto.X509Certificate(der).validTo).getTime()));
}

/** Runs `run` at `atMs` (epoch ms) unless the returned function is called first. Tests pass their own. */
export type ScheduleAt = (atMs: number, run: () => void) => () => void;

function timerScheduler(now: () => number): ScheduleAt {
  return (atMs, run) => {
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      const delay = atMs - now();
      timer = delay > MAX_TIMER_MS ? setTimeout(arm, MAX_TIMER_MS) : setTimeout(run, Math.max(0, delay));
      // A pending re-issue alone must not keep the process alive.
      timer.unref();
    };
    arm();
    return () => clearTimeout(timer);
  };
}

export interface AttestedCertificateOptions {
  /** DNS names and IP addresses the certificate is issued for (subjectAltName). */
  names: readonly string[];
  now?: () => number;
  /** Carry a document binding the key in the certificate, re-issued before its chain expires. */
  embed?: { nsm: Pick<Nsm, 'attest'>; schedule?: ScheduleAt };
}

/** What handshakes present until the next re-issue. */
interface Issued {
  pem: string;
  context: tls.SecureContext;
  /** The embedded document and when its chain expires; absent without `embed`. */
  embedded: { document: Buffer; expiresAt: number } | undefined;
}

export class AttestedCertificate {
  readonly spkiDer: Buffer;
  /** What documents put in `user_data` to bind this certificate's key. */
  readonly userData: Buffer;
  /** When the next re-issue is due (epoch ms); undefined without `embed`. */
  reissueAt: number | undefined;
  private readonly names: [string, ...string[]];
  private readonly publicKey: crypto.KeyObject;
  private readonly privateKey: crypto.KeyObject;
  private readonly keyPem: string;
  private readonly now: () => number;
  private readonly schedule: ScheduleAt;
  private issued: Issued;
  private cancelReissue: (() => void) | undefined;
  private readonly reissued: (() => void)[] = [];

  /** Throws when the first document cannot be had: an embedding listener must not start without one. */
  constructor(private readonly opts: AttestedCertificateOptions) {
    const [first, ...rest] = opts.names;
    if (first === undefined) throw new Error('an attested certificate needs at least one name');
    this.names = [first, ...rest];
    ({ publicKey: this.publicKey, privateKey: this.privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }));
    this.keyPem = this.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    this.spkiDer = this.publicKey.export({ type: 'spki', format: 'der' });
    this.userData = tlsBindingUserData(this.spkiDer);
    this.now = opts.now ?? Date.now;
    this.schedule = opts.embed?.schedule ?? timerScheduler(this.now);
    this.issued = this.issue();
    this.scheduleReissue();
  }

  get certificatePem(): string {
    return this.issued.pem;
  }

  /** The document the current certificate carries (undefined without `embed`). */
  get embeddedDocument(): Buffer | undefined {
    return this.issued.embedded?.document;
  }

  /** SHA-256 of the SPKI, hex: what operators compare with the `user_data` of a document. */
  get spkiSha256Hex(): string {
    return spkiSha256(this.spkiDer).toString('hex');
  }

  secureContext(): Promise<tls.SecureContext> {
    return Promise.resolve(this.issued.context);
  }

  /** `listener` runs after each re-issue (the native fast path then loads the new identity). */
  onReissue(listener: () => void): void {
    this.reissued.push(listener);
  }

  /** Stops re-issuing (the listener is closing). */
  close(): void {
    this.cancelReissue?.();
    this.cancelReissue = undefined;
    this.reissueAt = undefined;
  }

  private issue(): Issued {
    const now = this.now();
    const document = this.opts.embed?.nsm.attest({ userData: this.userData });
    const der = selfSignedCertificate({
      publicKey: this.publicKey,
      privateKey: this.privateKey,
      names: this.names,
      now,
      ...(document ? { document } : {}),
    });
    const pem = new crypto.X509Certificate(der).toString();
    return {
      pem,
      context: pemSecureContext({ certificate: pem, key: this.keyPem }),
      embedded: document ? { document, expiresAt: documentChainExpiry(document) } : undefined,
    };
  }

  private scheduleReissue(retry = false): void {
    const embedded = this.issued.embedded;
    if (!embedded) return;
    const now = this.now();
    // Not before a minute from now: the NSM may still sign with the leaf that is about to expire.
    const at = retry ? now + REISSUE_RETRY_MS : Math.max(now + REISSUE_RETRY_MS, embedded.expiresAt - REISSUE_BEFORE_EXPIRY_MS);
    this.reissueAt = at;
    this.cancelReissue = this.schedule(at, () => this.reissue());
  }

  private reissue(): void {
    try {
      this.issued = this.issue();
    } catch (err) {
      // The certificate in use stays until its document expires; clients then fall back to the endpoint or refuse.
      log.error({ err: messageOf(err), spki_sha256: this.spkiSha256Hex }, 'attested TLS: re-issuing the certificate failed; retrying');
      this.scheduleReissue(true);
      return;
    }
    this.scheduleReissue();
    for (const listener of this.reissued) listener();
    log.info(
      {
        spki_sha256: this.spkiSha256Hex,
        document_chain_expires: new Date(this.issued.embedded?.expiresAt ?? 0).toISOString(),
        next_reissue: new Date(this.reissueAt ?? 0).toISOString(),
      },
      'attested TLS: certificate re-issued with a fresh attestation document (new handshakes get it)',
    );
  }
}
