/**
 * Listener kinds of the inner side: config → the module that handles its connections. The switch
 * is over the `kind` of the normalized listener (a discriminated union), and exhaustive: a new
 * kind does not compile until it has a handler here.
 */
import fs from 'node:fs';
import type { InnerConfig, InnerListenerConfig, KmsEndpointConfig } from '../shared/config/types.js';
import { httpListenerKind } from '../shared/listener/http-kind.js';
import type { ConnectionHandler } from '../shared/listener/types.js';
import { tcpProxy } from '../shared/tcp-proxy/tcp-proxy.js';
import { PairPort } from '../shared/wire/ports.js';
import { parentChannel } from '../shared/transport/vsock.js';
import { InnerAws, type KmsProxySettings } from './aws-services.js';
import type { AuditSink } from './egress/attempt.js';
import { egressProxy } from './egress/egress-proxy.js';
import { httpIngress } from './http-ingress/http-ingress.js';
import type { TlsIdentities } from './tls/tls-identities.js';

export interface InnerServices {
  /** KMS proxy, IMDS endpoint and attestation API; built on first use (see `innerAws`). */
  aws: () => InnerAws;
  /** TLS identities of terminating listeners (PEM files or KMS-sealed keys). */
  tls: TlsIdentities;
  /** Where egress listeners send their audit records. */
  audit: AuditSink;
}

/** Which listeners need the AWS services (NSM, IMDS relay): the AWS kinds, KMS-sealed TLS keys, attested certificates. */
export function needsAws(config: InnerConfig): boolean {
  return config.listeners.some((l) => l.kind === 'kms' || l.kind === 'imds' || l.kind === 'attestation_api'
    || ((l.kind === 'tcp_proxy' || l.kind === 'http') && l.tls !== undefined && (l.tls.source === 'attested' || 'kmsCiphertext' in l.tls.privateKey)));
}

/** The AWS services of this inner: its `nsm` and `aws` sections, and the outer's IMDS relay. */
export function innerAws(config: InnerConfig): InnerAws {
  return new InnerAws({ nsm: config.nsm, imdsRelay: parentChannel(PairPort.Imds), ...config.aws });
}

/** The KMS settings of a listener or sealed key, with its extra CA read from the file. */
export function kmsSettings(kms: KmsEndpointConfig & Pick<KmsProxySettings, 'attestationReuseMs' | 'maxBodyBytes'>): KmsProxySettings {
  return { ...kms, ...(kms.caFile ? { ca: fs.readFileSync(kms.caFile, 'utf8') } : {}) };
}

export function innerListenerKinds({ aws, audit, tls }: InnerServices): (l: InnerListenerConfig) => ConnectionHandler {
  return (l) => {
    switch (l.kind) {
      case 'tcp_proxy': {
        const identity = tls.identityFor(l);
        return tcpProxy({ listener: l, cluster: l.cluster, ...(identity ? { tls: identity.context } : {}) });
      }
      case 'http': {
        const identity = tls.identityFor(l);
        const clusters = new Map([...l.http.routes.map((r) => r.cluster), ...(l.http.defaultCluster ? [l.http.defaultCluster] : [])].map((c) => [c.name, c]));
        return httpIngress({
          listener: l.name,
          routes: l.http.routes.map((r) => ({ ...r, cluster: r.cluster.name })),
          defaultCluster: l.http.defaultCluster?.name,
          clusters,
          expectProxyProtocol: l.expectProxyProtocol,
          tls: identity?.context,
          localEndpoints: identity?.endpoints ?? [],
          limits: { maxHeaderBytes: l.http.maxHeaderBytes, maxHeaders: l.http.maxHeaders, headTimeoutMs: l.http.headTimeoutMs, idleTimeoutMs: l.idleTimeoutMs, keepAliveTimeoutMs: l.http.keepAliveTimeoutMs },
          accessLog: l.accessLog,
          http2: l.http.http2,
        });
      }
      case 'egress':
        return egressProxy({ name: l.name, idleTimeoutMs: l.idleTimeoutMs, egress: l.egress }, { relay: parentChannel(PairPort.Egress), audit });
      case 'kms':
        return httpListenerKind(aws().kmsRequestListener(kmsSettings(l.kms)));
      case 'imds':
        return httpListenerKind(aws().imdsRequestListener());
      case 'attestation_api':
        return httpListenerKind(aws().attestationRequestListener());
      default: {
        // Every kind has an arm above: `l` is `never` here, and a new kind fails to compile.
        const unhandled: never = l;
        return unhandled;
      }
    }
  };
}
