/**
 * The TLS identities of the inner's terminating listeners. PEM files are read at construction
 * (a bad key stops the process before it listens); KMS-sealed keys are decrypted once, after the
 * listeners are up (the KMS call may need the egress listener), and `ready()` makes any failure
 * fatal at startup rather than at the first client. Attested certificates are generated at
 * construction, with the endpoint that serves documents binding them (and, with
 * `embed_attestation`, the first embedded document: no document, no start).
 */
import type { ListenerOf } from '../../shared/config/types.js';
import { logger } from '../../shared/log/logger.js';
import { tlsContextFromFiles, type TlsContextSource } from '../../shared/tcp-proxy/tcp-proxy.js';
import type { InnerAws } from '../aws-services.js';
import type { LocalEndpoint } from '../http-ingress/http-ingress.js';
import { kmsSettings } from '../kms/settings.js';
import { attestationEndpoint } from './attestation-endpoint.js';
import { AttestedCertificate } from './attested-certificate.js';
import { unsealTlsContext } from './kms-private-key.js';

const log = logger('tls');

/** A listener's TLS: the context handshakes use, and the paths it answers itself (attested TLS). */
export interface TlsIdentity {
  context: TlsContextSource;
  endpoints: LocalEndpoint[];
}

export class TlsIdentities {
  private readonly sealed: TlsContextSource[] = [];

  constructor(private readonly aws: InnerAws | null) {}

  identityFor(listener: ListenerOf<'tcp_proxy'> | ListenerOf<'http'>): TlsIdentity | undefined {
    const t = listener.tls;
    if (!t) return undefined;
    if (t.source === 'files') return { context: this.fromFiles(listener.name, t), endpoints: [] };
    const aws = this.aws;
    if (!aws) throw new Error(`listener ${listener.name}: an attested certificate needs the inner's NSM`);
    const certificate = new AttestedCertificate({ names: t.names, ...(t.embedAttestation ? { embed: { nsm: aws.nsm } } : {}) });
    log.info(
      {
        listener: listener.name,
        names: t.names,
        spki_sha256: certificate.spkiSha256Hex,
        nsm: aws.nsm.kind,
        embedded_attestation: t.embedAttestation,
        ...(certificate.reissueAt !== undefined ? { next_reissue: new Date(certificate.reissueAt).toISOString() } : {}),
      },
      'attested TLS: key pair generated inside the enclave; documents at /.well-known/enclave-attestation bind it',
    );
    return {
      context: () => certificate.secureContext(),
      endpoints: [attestationEndpoint({ nsm: aws.nsm, userData: certificate.userData })],
    };
  }

  private fromFiles(name: string, t: Extract<NonNullable<ListenerOf<'http'>['tls']>, { source: 'files' }>): TlsContextSource {
    const key = t.privateKey;
    if ('file' in key) return tlsContextFromFiles(t.certificate, key.file);
    const aws = this.aws;
    if (!aws) throw new Error(`listener ${name}: a KMS-sealed key needs the inner's AWS services`);
    const kms = aws.kmsProxy(kmsSettings(key.kms));
    let loading: ReturnType<TlsContextSource> | undefined;
    const source: TlsContextSource = () => (loading ??= unsealTlsContext(kms, t.certificate, key.kmsCiphertext));
    this.sealed.push(source);
    return source;
  }

  /** Decrypt every sealed key now; rejects with the first failure. */
  async ready(): Promise<number> {
    await Promise.all(this.sealed.map((s) => s()));
    return this.sealed.length;
  }
}
