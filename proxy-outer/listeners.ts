/**
 * Listener kinds of the outer side: config → the module that handles its connections. The outer
 * has only TCP proxy listeners (the others serve the app inside the enclave); the switch is
 * exhaustive over the outer's kinds, so a kind added to the outer does not compile without a handler.
 */
import type { OuterConfig } from '../shared/config/types.js';
import type { SideListener } from '../shared/runtime/side-runtime.js';
import { tcpProxy } from '../shared/tcp-proxy/tcp-proxy.js';

/** Each listener of the outer with the handler of its kind. */
export function outerListeners(config: OuterConfig): SideListener<OuterConfig>[] {
  return config.listeners.map((listener) => {
    switch (listener.kind) {
      case 'tcp_proxy':
        return { listener, handler: tcpProxy({ listener, cluster: listener.cluster }) };
      default: {
        const unhandled: never = listener.kind;
        return unhandled;
      }
    }
  });
}
