/** Listener kinds of the inner side: config → the module that handles its connections. */
import type { ListenerConfig, SideConfig } from '../shared/config/types.js';
import type { ConnectionHandler } from '../shared/listener/types.js';
import { tcpProxy } from '../shared/tcp-proxy/tcp-proxy.js';
import { parseAddress } from '../shared/transport/index.js';
import { PairPort } from '../shared/wire/ports.js';
import type { AuditSink } from './egress/attempt.js';
import { egressProxy } from './egress/egress-proxy.js';

export interface InnerServices {
  /** Where egress listeners send their audit records. */
  audit: AuditSink;
}

export function innerListenerKinds(config: SideConfig, services: InnerServices): (l: ListenerConfig) => ConnectionHandler {
  return (l) => {
    if (l.cluster !== undefined) return tcpProxy({ listener: l, cluster: config.clusters.get(l.cluster)! });
    if (l.egress !== undefined) {
      return egressProxy({
        listener: l.name,
        protocols: l.egress.protocols,
        policy: l.egress.policy,
        relay: parseAddress(`vsock://parent:${PairPort.Egress}`),
        audit: services.audit,
        requireSniMatch: l.egress.requireSniMatch,
        connectTimeoutMs: l.egress.connectTimeoutMs,
        handshakeTimeoutMs: l.egress.handshakeTimeoutMs,
        idleTimeoutMs: l.idleTimeoutMs,
      });
    }
    throw new Error(`listener ${l.name} has no kind`);
  };
}
