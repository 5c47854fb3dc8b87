/** Listener kinds of the inner side: config → the module that handles its connections. */
import fs from 'node:fs';
import type { ListenerConfig, SideConfig } from '../shared/config/types.js';
import { httpListenerKind } from '../shared/listener/http-kind.js';
import type { ConnectionHandler } from '../shared/listener/types.js';
import { tcpProxy } from '../shared/tcp-proxy/tcp-proxy.js';
import { PairPort } from '../shared/wire/ports.js';
import { VSOCK_CID_PARENT } from '../shared/transport/address.js';
import { InnerAws } from './aws-services.js';
import type { OpenNsmOptions } from './nsm/index.js';
import { parseAddress } from '../shared/transport/index.js';
import type { AuditSink } from './egress/attempt.js';
import { egressProxy } from './egress/egress-proxy.js';
import type { TlsIdentities } from './tls/tls-identities.js';

export interface InnerServices {
  /** KMS proxy, IMDS endpoint and attestation API, when a listener needs them. */
  aws: InnerAws | null;
  /** TLS identities of terminating listeners (PEM files or KMS-sealed keys). */
  tls: TlsIdentities;
  /** Where egress listeners send their audit records. */
  audit: AuditSink;
}

/** The AWS services, when some listener needs them (KMS proxy, IMDS endpoint, attestation API). */
export function innerAws(config: SideConfig): InnerAws | null {
  const sealedTlsKey = (l: ListenerConfig) => l.tls !== undefined && 'kmsCiphertext' in l.tls.privateKey;
  if (!config.listeners.some((l) => l.kms || l.imds || l.attestationApi || sealedTlsKey(l))) return null;
  return new InnerAws({
    nsm: innerNsmOptions(config),
    imdsRelay: { kind: 'vsock', cid: VSOCK_CID_PARENT, port: PairPort.Imds },
    region: config.aws.region,
    credentialRefreshMarginMs: config.aws.credentialRefreshMarginMs,
  });
}

export function innerNsmOptions(config: SideConfig): OpenNsmOptions {
  return { mode: config.nsm.mode, simulator: { pcrs: config.nsm.simulatorPcrs, rootCertificatePath: config.nsm.simulatorRootCertificatePath } };
}

export function innerListenerKinds(config: SideConfig, { aws, audit, tls }: InnerServices): (l: ListenerConfig) => ConnectionHandler {
  return (l) => {
    if (l.cluster !== undefined) {
      const identity = tls.sourceFor(l);
      return tcpProxy({ listener: l, cluster: config.clusters.get(l.cluster)!, ...(identity ? { tls: identity } : {}) });
    }
    if (l.egress !== undefined) {
      return egressProxy({
        listener: l.name,
        protocols: l.egress.protocols,
        policy: l.egress.policy,
        relay: parseAddress(`vsock://parent:${PairPort.Egress}`),
        audit,
        requireSniMatch: l.egress.requireSniMatch,
        connectTimeoutMs: l.egress.connectTimeoutMs,
        handshakeTimeoutMs: l.egress.handshakeTimeoutMs,
        idleTimeoutMs: l.idleTimeoutMs,
      });
    }
    if (aws && l.kms) {
      const k = l.kms;
      return httpListenerKind(aws.kmsRequestListener({
        endpoint: k.endpoint, endpoints: k.endpoints, egressProxy: k.egressProxy, attestationReuseMs: k.attestationReuseMs, maxBodyBytes: k.maxBodyBytes,
        ...(k.caFile ? { ca: fs.readFileSync(k.caFile, 'utf8') } : {}),
      }));
    }
    if (aws && l.imds) return httpListenerKind(aws.imdsRequestListener());
    if (aws && l.attestationApi) return httpListenerKind(aws.attestationRequestListener());
    throw new Error(`listener ${l.name} has no kind`);
  };
}
