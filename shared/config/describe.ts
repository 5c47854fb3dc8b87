/** The normalized config as plain data, for `--check` output and for tests to compare. */
import { formatAddress } from '../transport/address.js';
import { formatCidr } from '../egress/ip.js';
import type { Config, KmsListenerConfig, SideConfig } from './types.js';

function kmsSettings(k: KmsListenerConfig): Record<string, unknown> {
  return {
    ...(k.endpoint ? { endpoint: k.endpoint } : {}),
    ...(Object.keys(k.endpoints).length ? { endpoints: k.endpoints } : {}),
    ...(k.egressProxy ? { egress_proxy: k.egressProxy } : {}),
    ...(k.caFile ? { ca_file: k.caFile } : {}),
  };
}

function side(c: SideConfig): Record<string, unknown> {
  return {
    role: c.role,
    admin: c.admin ? formatAddress(c.admin) : null,
    ...(c.vsock.emulationDir || c.vsock.cid || c.vsock.parentCid ? { vsock: {
      ...(c.vsock.emulationDir ? { emulation_dir: c.vsock.emulationDir } : {}),
      ...(c.vsock.cid ? { cid: c.vsock.cid } : {}),
      ...(c.vsock.parentCid ? { parent_cid: c.vsock.parentCid } : {}),
    } } : {}),
    drain_timeout_ms: c.drainTimeoutMs,
    ...(c.role === 'inner' ? { logs: { forward: c.logs.forward ?? 'auto', buffer_bytes: c.logs.bufferBytes } } : {}),
    ...(c.role === 'outer' ? { enclave: { cid: c.enclave.cid, exit_with_app: c.enclave.exitWithApp, ...(c.enclave.launch ? {
      eif: c.enclave.launch.eif, cpu_count: c.enclave.launch.cpuCount, memory_mib: c.enclave.launch.memoryMib, debug_mode: c.enclave.launch.debugMode,
      ready_timeout_ms: c.enclave.launch.readyTimeoutMs, watch_interval_ms: c.enclave.launch.watchIntervalMs,
    } : {}) } } : {}),
    ...(c.role === 'inner' && c.listeners.some((l) => l.kms || l.imds || l.attestationApi) ? {
      nsm: {
        mode: c.nsm.mode,
        simulator_pcrs: Object.fromEntries([...c.nsm.simulatorPcrs].map(([i, v]) => [i, v.toString('hex')])),
        ...(c.nsm.simulatorRootCertificatePath ? { simulator_root_certificate_path: c.nsm.simulatorRootCertificatePath } : {}),
      },
      aws: { ...(c.aws.region ? { region: c.aws.region } : {}), credential_refresh_margin_ms: c.aws.credentialRefreshMarginMs },
    } : {}),
    ...(c.imdsRelay ? { imds_relay: { upstream: c.imdsRelay.upstream, token_ttl_s: c.imdsRelay.tokenTtlSeconds, timeout_ms: c.imdsRelay.timeoutMs } } : {}),
    ...(c.app ? { app: { argv: c.app.argv, cwd: c.app.cwd, env: c.app.env, stop_timeout_ms: c.app.stopTimeoutMs } } : {}),
    listeners: c.listeners.map((l) => ({
      name: l.name,
      address: formatAddress(l.address),
      ...(l.cluster ? { cluster: l.cluster } : {}),
      ...(l.egress ? {
        egress: {
          protocols: l.egress.protocols,
          allow: l.egress.policy.allow.map((r) => r.text),
          deny: l.egress.policy.deny.map((r) => r.text),
          require_sni_match: l.egress.requireSniMatch,
          handshake_timeout_ms: l.egress.handshakeTimeoutMs,
          connect_timeout_ms: l.egress.connectTimeoutMs,
        },
      } : {}),
      proxy_protocol: l.expectProxyProtocol ? 'v2' : 'none',
      max_connections: l.maxConnections,
      idle_timeout_ms: l.idleTimeoutMs,
      access_log: l.accessLog,
      ...(l.tls ? { tls: { certificate: l.tls.certificate, private_key: 'file' in l.tls.privateKey ? l.tls.privateKey.file : { kms_ciphertext: l.tls.privateKey.kmsCiphertext, kms: kmsSettings(l.tls.privateKey.kms) } } } : {}),
      ...(l.kms ? { kms: { ...kmsSettings(l.kms), attestation_reuse_ms: l.kms.attestationReuseMs, max_body_bytes: l.kms.maxBodyBytes } } : {}),
      ...(l.imds ? { imds: {} } : {}),
      ...(l.attestationApi ? { attestation_api: {} } : {}),
    })),
    ...(c.egressRelay ? {
      egress_relay: {
        connect_timeout_ms: c.egressRelay.connectTimeoutMs,
        idle_timeout_ms: c.egressRelay.idleTimeoutMs,
        ...(c.egressRelay.hostsFile ? { hosts_file: c.egressRelay.hostsFile } : {}),
        allow_private: Array.isArray(c.egressRelay.allowPrivate) ? c.egressRelay.allowPrivate.map(formatCidr) : c.egressRelay.allowPrivate,
        ...(c.egressRelay.upstreamProxy ? { upstream_proxy: { url: c.egressRelay.upstreamProxy.url, ...(c.egressRelay.upstreamProxy.hosts ? { hosts: c.egressRelay.upstreamProxy.hosts.map((r) => r.text) } : {}) } } : {}),
      },
    } : {}),
    ...(c.audit ? {
      audit: c.role === 'inner' ? { buffer_records: c.audit.bufferRecords } : {
        stdout: c.audit.stdout,
        ...(c.audit.file ? { file: c.audit.file.path, max_size_bytes: c.audit.file.maxBytes, keep: c.audit.file.keep, fsync: c.audit.file.fsync } : {}),
      },
    } : {}),
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
