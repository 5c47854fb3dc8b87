/**
 * The benchmark's TLS-terminating tcp_proxy listener, alone in its process (its CPU is measured):
 * `node tls-terminator.js PORT UPSTREAM_PORT CERT KEY`. ENCLAVER_FASTPATH=0 selects the JS path.
 * Prints "ready" once listening and (fast path) once the pump threads hold the identity.
 */
import type { ClusterConfig, ListenerConfig } from '../../shared/config/types.js';
import { Listener } from '../../shared/listener/listener.js';
import { tcpProxy, tlsContextFromFiles } from '../../shared/tcp-proxy/tcp-proxy.js';

const [port, upstreamPort, certificate, key] = process.argv.slice(2);
const cluster: ClusterConfig = {
  name: 'app',
  endpoints: [{ kind: 'tcp', host: '127.0.0.1', port: Number(upstreamPort) }],
  connectTimeoutMs: 5000,
  sendProxyProtocol: false,
};
const listener: ListenerConfig = {
  kind: 'tcp_proxy',
  name: 'tls',
  address: { kind: 'tcp', host: '127.0.0.1', port: Number(port) },
  cluster,
  tls: undefined,
  expectProxyProtocol: false,
  maxConnections: 100_000,
  idleTimeoutMs: 0,
  accessLog: false,
};
const l = new Listener({
  name: 'tls',
  address: listener.address,
  maxConnections: listener.maxConnections,
  handler: tcpProxy({ listener, cluster, tls: tlsContextFromFiles(certificate!, key!) }),
});
await l.start();
while (l.fastPath && l.fastPathTlsIdentities === 0) await new Promise((r) => setTimeout(r, 10));
process.stdout.write('ready\n');
