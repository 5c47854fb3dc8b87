/** Listener kinds of the outer side: config → the module that handles its connections. */
import type { ListenerConfig, SideConfig } from '../shared/config/types.js';
import type { ConnectionHandler } from '../shared/listener/types.js';
import { tcpProxy } from '../shared/tcp-proxy/tcp-proxy.js';

export function outerListenerKinds(config: SideConfig): (l: ListenerConfig) => ConnectionHandler {
  return (l) => {
    if (l.cluster !== undefined) return tcpProxy({ listener: l, cluster: config.clusters.get(l.cluster)! });
    throw new Error(`listener ${l.name} has no kind`);
  };
}
