/** The normalized config as plain data, for `--check` output and for tests to compare. */
import { formatAddress } from '../transport/address.js';
import type { Config, SideConfig } from './types.js';

function side(c: SideConfig): Record<string, unknown> {
  return {
    role: c.role,
    admin: c.admin ? formatAddress(c.admin) : null,
    ...(c.vsock.emulationDir || c.vsock.cid ? { vsock: { ...(c.vsock.emulationDir ? { emulation_dir: c.vsock.emulationDir } : {}), ...(c.vsock.cid ? { cid: c.vsock.cid } : {}) } } : {}),
    drain_timeout_ms: c.drainTimeoutMs,
    ...(c.role === 'outer' ? { enclave: { cid: c.enclave.cid, exit_with_app: c.enclave.exitWithApp } } : {}),
    ...(c.app ? { app: { argv: c.app.argv, cwd: c.app.cwd, env: c.app.env, stop_timeout_ms: c.app.stopTimeoutMs } } : {}),
    listeners: c.listeners.map((l) => ({
      name: l.name,
      address: formatAddress(l.address),
      ...(l.cluster ? { cluster: l.cluster } : {}),
      proxy_protocol: l.expectProxyProtocol ? 'v2' : 'none',
      max_connections: l.maxConnections,
      idle_timeout_ms: l.idleTimeoutMs,
      access_log: l.accessLog,
      ...(l.tls ? { tls: { certificate: l.tls.certificate, private_key: l.tls.privateKey } } : {}),
    })),
    clusters: [...c.clusters.values()].map((cl) => ({
      name: cl.name,
      endpoints: cl.endpoints.map(formatAddress),
      connect_timeout_ms: cl.connectTimeoutMs,
      proxy_protocol: cl.sendProxyProtocol ? 'v2' : 'none',
    })),
  };
}

export function describeConfig(config: Config): Record<string, unknown> {
  if (config.role === 'local') {
    return { role: 'local', ...(config.runtimeDir ? { runtime_dir: config.runtimeDir } : {}), outer: side(config.outer), inner: side(config.inner) };
  }
  return side(config);
}
