/**
 * The TLS identities of the inner's terminating listeners. PEM files are read at construction
 * (a bad key stops the process before it listens); KMS-sealed keys are decrypted once, after the
 * listeners are up (the KMS call may need the egress listener), and `ready()` makes any failure
 * fatal at startup rather than at the first client.
 */
import type { ListenerOf } from '../../shared/config/types.js';
import { tlsContextFromFiles, type TlsContextSource } from '../../shared/tcp-proxy/tcp-proxy.js';
import type { InnerAws } from '../aws-services.js';
import { kmsSettings } from '../kms/settings.js';
import { unsealTlsContext } from './kms-private-key.js';

export class TlsIdentities {
  private readonly sealed: TlsContextSource[] = [];

  constructor(private readonly aws: InnerAws | null) {}

  sourceFor(listener: ListenerOf<'tcp_proxy'>): TlsContextSource | undefined {
    const t = listener.tls;
    if (!t) return undefined;
    const key = t.privateKey;
    if ('file' in key) return tlsContextFromFiles(t.certificate, key.file);
    const aws = this.aws;
    if (!aws) throw new Error(`listener ${listener.name}: a KMS-sealed key needs the inner's AWS services`);
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
