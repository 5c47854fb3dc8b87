/**
 * The HTTP ingress listener kind on an ephemeral loopback port (the production Listener and
 * handler), in front of apps given as clusters; and a raw-socket client for requests that real
 * clients refuse to send (smuggling shapes, slow heads).
 */
import net from 'node:net';
import type { ClusterConfig } from '../../shared/config/types.js';
import { Listener } from '../../shared/listener/listener.js';
import { parseAddress } from '../../shared/transport/index.js';
import { httpIngress, type HttpIngressOptions, type HttpLimits } from '../../proxy-inner/http-ingress/http-ingress.js';

export const TEST_LIMITS: HttpLimits = {
  maxHeaderBytes: 8192,
  maxHeaders: 50,
  headTimeoutMs: 2000,
  idleTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5000,
};

let started = 0;

export interface Ingress {
  port: number;
  url: string;
  listener: string;
  close(): Promise<void>;
}

export function cluster(name: string, port: number): ClusterConfig {
  return { name, endpoints: [parseAddress(`tcp://127.0.0.1:${port}`)], connectTimeoutMs: 2000, sendProxyProtocol: false };
}

export async function startIngress(opts: Partial<HttpIngressOptions> & Pick<HttpIngressOptions, 'clusters'>): Promise<Ingress> {
  const name = opts.listener ?? `http-test-${++started}`;
  const handler = httpIngress({
    listener: name,
    routes: [],
    defaultCluster: undefined,
    expectProxyProtocol: false,
    tls: undefined,
    localEndpoints: [],
    limits: TEST_LIMITS,
    accessLog: true,
    http2: false,
    ...opts,
  });
  const listener = new Listener({ name, address: parseAddress('tcp://127.0.0.1:0'), maxConnections: 1000, handler });
  await listener.start();
  const port = (listener.address as { port: number }).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    listener: name,
    async close() {
      await listener.stopAccepting();
      await listener.drain(Date.now());
      await handler.close();
    },
  };
}

/** Send raw bytes, collect everything until the server closes (or `untilClose: false` and a full head arrives). */
export function rawExchange(port: number, request: string | Buffer): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.once('error', (err) => (chunks.length ? resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: true }) : reject(err)));
    s.once('close', () => resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: true }));
    s.write(request);
  });
}

/** The status code of the first response in a raw exchange's text. */
export function firstStatus(text: string): number {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
  return m ? Number(m[1]) : 0;
}
