/**
 * The TLS identities of the inner's terminating listeners. PEM files are read at construction
 * (a bad key stops the process before it listens); KMS-sealed keys are decrypted once, after the
 * listeners are up (the KMS call may need the egress listener), and `ready()` makes any failure
 * fatal at startup rather than at the first client. Attested certificates are generated at
 * construction, with the endpoint that serves documents binding them (and, with
 * `embed_attestation`, the first embedded document: no document, no start). Each kind's code (X.509
 * and COSE for attested certificates, KMS for sealed keys) is imported only when a listener uses it.
 */
import type { ListenerOf } from '../../shared/config/types.js';
import { logger } from '../../shared/log/logger.js';
import type { TlsContextSource } from '../../shared/tcp-proxy/tcp-proxy.js';
import type { InnerAws } from '../aws-services.js';
import type { LocalEndpoint } from '../http-ingress/http-ingress.js';

const log = logger('tls');

/** A listener's TLS: the context handshakes use, and the paths it answers itself (attested TLS). */
export interface TlsIdentity {
  context: TlsContextSource;
  endpoints: LocalEndpoint[];
}

export class TlsIdentities {
  private readonly sealed: TlsContextSource[] = [];

  constructor(private readonly aws: InnerAws | null) {}

  async identityFor(listener: ListenerOf<'tcp_proxy'> | ListenerOf<'http'>): Promise<TlsIdentity | undefined> {
    const t = listener.tls;
    if (!t) return undefined;
    if (t.source === 'files') return { context: await this.fromFiles(listener.name, t), endpoints: [] };
    const aws = this.aws;
    if (!aws) throw new Error(`listener ${listener.name}: an attested certificate needs the inner's NSM`);
    const [{ AttestedCertificate }, { attestationEndpoint }] = await Promise.all([
      import('./attested-certificate.js'),
      import('./attestation-endpoint.js'),
    ]);
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
      context: Object.assign(() => certificate.secureContext(), { onChange: (l: () => void) => certificate.onReissue(l) }),
      endpoints: [attestationEndpoint({ nsm: aws.nsm, userData: certificate.userData })],
    };
  }

  private async fromFiles(
    name: string,
    t: Extract<NonNullable<ListenerOf<'http'>['tls']>, { source: 'files' }>,
  ): Promise<TlsContextSource> {
    const key = t.privateKey;
    if ('file' in key) return (await import('../../shared/tcp-proxy/tcp-proxy.js')).tlsContextFromFiles(t.certificate, key.file);
    const aws = this.aws;
    if (!aws) throw new Error(`listener ${name}: a KMS-sealed key needs the inner's AWS services`);
    const [{ kmsSettings }, { unsealTlsContext }] = await Promise.all([import('../kms/settings.js'), import('./kms-private-key.js')]);
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
