/**
 * Listener kinds of the inner side: config → the module that handles its connections. The switch
 * is over the `kind` of the normalized listener (a discriminated union), and exhaustive: a new
 * kind does not compile until it has a handler here.
 *
 * Each kind's module is imported when a listener of that kind exists (`import()`), so an inner
 * with one TCP listener does not load the KMS, SigV4 and CMS code before it is ready.
 */
import type { InnerConfig, InnerListenerConfig } from '../shared/config/types.js';
import type { ConnectionHandler } from '../shared/listener/types.js';
import type { SideListener } from '../shared/runtime/side-runtime.js';
import { PairPort } from '../shared/wire/ports.js';
import { parentChannel } from '../shared/transport/vsock.js';
import type { InnerAws } from './aws-services.js';
import type { AuditSink } from './egress/attempt.js';
import type { TlsIdentities } from './tls/tls-identities.js';

export interface InnerServices {
  /** KMS proxy, IMDS endpoint and attestation API; loaded and built on first use. */
  aws: () => Promise<InnerAws>;
  /** TLS identities of terminating listeners (PEM files or KMS-sealed keys). */
  tls: TlsIdentities;
  /** Where egress listeners send their audit records. */
  audit: AuditSink;
}

/** Which listeners need the AWS services (NSM, IMDS relay): the AWS kinds, KMS-sealed TLS keys, attested certificates. */
export function needsAws(config: InnerConfig): boolean {
  return config.listeners.some(
    (l) =>
      l.kind === 'kms' ||
      l.kind === 'imds' ||
      l.kind === 'attestation_api' ||
      ((l.kind === 'tcp_proxy' || l.kind === 'http') &&
        l.tls !== undefined &&
        (l.tls.source === 'attested' || 'kmsCiphertext' in l.tls.privateKey)),
  );
}

/** The AWS services of this inner: its `nsm` and `aws` sections, and the outer's IMDS relay. */
export async function innerAws(config: InnerConfig): Promise<InnerAws> {
  const { InnerAws } = await import('./aws-services.js');
  return new InnerAws({ nsm: config.nsm, imdsRelay: parentChannel(PairPort.Imds), ...config.aws });
}

async function handlerFor(l: InnerListenerConfig, { aws, audit, tls }: InnerServices): Promise<ConnectionHandler> {
  const http = () => import('../shared/listener/http-kind.js');
  switch (l.kind) {
    case 'tcp_proxy': {
      const { tcpProxy } = await import('../shared/tcp-proxy/tcp-proxy.js');
      const identity = await tls.identityFor(l);
      return tcpProxy({ listener: l, cluster: l.cluster, ...(identity ? { tls: identity.context } : {}) });
    }
    case 'http': {
      const { httpIngress } = await import('./http-ingress/http-ingress.js');
      const identity = await tls.identityFor(l);
      const clusters = new Map(
        [...l.http.routes.map((r) => r.cluster), ...(l.http.defaultCluster ? [l.http.defaultCluster] : [])].map((c) => [c.name, c]),
      );
      return httpIngress({
        listener: l.name,
        routes: l.http.routes.map((r) => ({ ...r, cluster: r.cluster.name })),
        defaultCluster: l.http.defaultCluster?.name,
        clusters,
        expectProxyProtocol: l.expectProxyProtocol,
        tls: identity?.context,
        localEndpoints: identity?.endpoints ?? [],
        limits: {
          maxHeaderBytes: l.http.maxHeaderBytes,
          maxHeaders: l.http.maxHeaders,
          headTimeoutMs: l.http.headTimeoutMs,
          idleTimeoutMs: l.idleTimeoutMs,
          keepAliveTimeoutMs: l.http.keepAliveTimeoutMs,
        },
        accessLog: l.accessLog,
        http2: l.http.http2,
      });
    }
    case 'egress': {
      const { egressProxy } = await import('./egress/egress-proxy.js');
      return egressProxy(
        { name: l.name, idleTimeoutMs: l.idleTimeoutMs, egress: l.egress },
        { relay: parentChannel(PairPort.Egress), audit },
      );
    }
    case 'kms': {
      const [{ httpListenerKind }, { kmsSettings }] = await Promise.all([http(), import('./kms/settings.js')]);
      return httpListenerKind((await aws()).kmsRequestListener(kmsSettings(l.kms)));
    }
    case 'imds':
      return (await http()).httpListenerKind((await aws()).imdsRequestListener());
    case 'attestation_api':
      return (await http()).httpListenerKind((await aws()).attestationRequestListener());
    default: {
      // Every kind has an arm above: `l` is `never` here, and a new kind fails to compile.
      const unhandled: never = l;
      return unhandled;
    }
  }
}

/** Each listener of the inner with the handler of its kind. */
export async function innerListeners(config: InnerConfig, services: InnerServices): Promise<SideListener<InnerConfig>[]> {
  return Promise.all(config.listeners.map(async (listener) => ({ listener, handler: await handlerFor(listener, services) })));
}
