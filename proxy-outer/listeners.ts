/**
 * Listener kinds of the outer side: config → the module that handles its connections. The outer
 * has only TCP proxy listeners (the others serve the app inside the enclave); the switch is
 * exhaustive over the outer's kinds, so a kind added to the outer does not compile without a handler.
 */
import type { OuterListenerConfig } from '../shared/config/types.js';
import type { ConnectionHandler } from '../shared/listener/types.js';
import { tcpProxy } from '../shared/tcp-proxy/tcp-proxy.js';

export function outerListenerKinds(): (l: OuterListenerConfig) => ConnectionHandler {
  return (l) => {
    switch (l.kind) {
      case 'tcp_proxy':
        return tcpProxy({ listener: l, cluster: l.cluster });
      default: {
        const unhandled: never = l.kind;
        return unhandled;
      }
    }
  };
}
