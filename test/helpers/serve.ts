/**
 * Serve a request handler on an ephemeral loopback port the way the proxy does: the production
 * Listener with the HTTP listener kind.
 */
import type http from 'node:http';
import { Listener } from '../../shared/listener/listener.js';
import { httpListenerKind } from '../../shared/listener/http-kind.js';
import { parseAddress } from '../../shared/transport/index.js';

export interface Served {
  url: string;
  close(): Promise<void>;
}

let served = 0;

export async function serveOnLoopback(handler: http.RequestListener): Promise<Served> {
  const listener = new Listener({
    name: `test-http-${++served}`,
    address: parseAddress('tcp://127.0.0.1:0'),
    maxConnections: 1000,
    handler: httpListenerKind(handler),
  });
  await listener.start();
  const a = listener.address;
  if (a.kind !== 'tcp') throw new Error('expected a TCP listener');
  return {
    url: `http://127.0.0.1:${a.port}`,
    close: async () => {
      await listener.stopAccepting();
      // Idle keep-alive connections are closed at once rather than waited for.
      await listener.drain(Date.now());
    },
  };
}
