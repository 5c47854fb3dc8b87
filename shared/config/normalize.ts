/**
 * From a schema-valid document to the normalized config: defaults applied, addresses parsed,
 * references resolved, and the rules a schema cannot express checked (unique names, known
 * clusters, reserved vsock ports, port collisions, role-specific sections).
 */
import path from 'node:path';
import { AddressError, ConfigError, type ConfigProblem } from '../errors/index.js';
import { parseAddress, formatAddress, isLoopbackHost, VSOCK_CID_HOST, type Address } from '../transport/address.js';
import { parseDuration } from '../util/duration.js';
import { isReservedPort, RESERVED_PORT_MIN, RESERVED_PORT_MAX } from '../wire/ports.js';
import type { ConfigSource, PathSegment } from './source.js';
import { defaultEgressRelay, normalizeAudit, normalizeEgressListener, normalizeEgressRelay } from './egress.js';
import type { AppConfig, ClusterConfig, Config, ImdsRelayConfig, KmsListenerConfig, ListenerConfig, LocalConfig, NsmConfig, Role, SideConfig, TlsPrivateKey } from './types.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- the raw document is schema-validated JSON */
type Raw = any;

export const DEFAULT_ADMIN: Record<Role, string> = { inner: 'tcp://127.0.0.1:9901', outer: 'tcp://127.0.0.1:9902' };
export const DEFAULT_ENCLAVE_CID = 16;
const DEFAULT_ENCLAVE_CPUS = 2;
const DEFAULT_ENCLAVE_MEMORY_MIB = 1024;
const DEFAULT_READY_TIMEOUT = '5m';
const DEFAULT_CLOCK_SYNC_INTERVAL = '1m';
const DEFAULT_CLOCK_MAX_STEP = '5s';
const DEFAULT_WATCH_INTERVAL = '5s';
const DEFAULT_CONNECT_TIMEOUT = '5s';
const DEFAULT_IDLE_TIMEOUT = '1h';
const DEFAULT_DRAIN_TIMEOUT = '15s';
const DEFAULT_STOP_TIMEOUT = '10s';
const DEFAULT_MAX_CONNECTIONS = 10000;
const DEFAULT_LOG_BUFFER_BYTES = 1024 * 1024;
const DEFAULT_CREDENTIAL_REFRESH_MARGIN = '5m';
const DEFAULT_IMDS_UPSTREAM = 'http://169.254.169.254';
const DEFAULT_IMDS_TOKEN_TTL = '6h';
const DEFAULT_IMDS_TIMEOUT = '2s';
const DEFAULT_KMS_MAX_BODY_BYTES = 65536;
const MAX_ATTESTATION_REUSE_MS = 5 * 60_000;
/** The listener kinds; a listener has exactly one. */
const LISTENER_KINDS = ['cluster', 'egress', 'kms', 'imds', 'attestation_api'] as const;
const INNER_ONLY_KINDS = ['egress', 'kms', 'imds', 'attestation_api'] as const;

class Collector {
  readonly problems: ConfigProblem[] = [];
  constructor(readonly source: ConfigSource) {}
  add(path: PathSegment[], message: string, key?: string): void {
    this.problems.push(this.source.problem(path, message, key));
  }
  address(path: PathSegment[], text: string): Address | undefined {
    try {
      return parseAddress(text);
    } catch (err) {
      this.add(path, err instanceof AddressError ? String(err.context.reason) : (err as Error).message);
      return undefined;
    }
  }
}

function reservedCheck(c: Collector, path: PathSegment[], a: Address | undefined, what: string): void {
  if (a?.kind === 'vsock' && isReservedPort(a.port)) {
    c.add(path, `vsock port ${a.port} is reserved for the pair's own channels (${RESERVED_PORT_MIN}-${RESERVED_PORT_MAX}); choose another port for this ${what}`);
  }
}

function normalizeSide(c: Collector, raw: Raw, base: PathSegment[], role: Role): SideConfig {
  const configDir = path.dirname(path.resolve(c.source.file));
  const adminText: string | null = raw.admin?.address === undefined ? DEFAULT_ADMIN[role] : raw.admin.address;
  const admin = adminText === null ? null : c.address([...base, 'admin', 'address'], adminText) ?? null;

  if (role === 'outer' && raw.app) c.add([...base, 'app'], '`app` belongs to the inner side (the app runs inside the enclave)');
  if (role === 'inner' && raw.enclave) c.add([...base, 'enclave'], '`enclave` belongs to the outer side');
  if (role === 'outer' && raw.bootstrap) c.add([...base, 'bootstrap'], '`bootstrap` belongs to the inner side (it prepares the enclave)');
  if (role === 'outer' && raw.vsock?.parent_cid !== undefined) c.add([...base, 'vsock', 'parent_cid'], '`vsock.parent_cid` belongs to the inner side (the outer is the parent); the outer names the enclave with `enclave.cid`');
  for (const [section, key] of [['vsock', 'cid'], ['vsock', 'parent_cid'], ['enclave', 'cid']] as const) {
    if (raw[section]?.[key] === VSOCK_CID_HOST) c.add([...base, section, key], `CID ${VSOCK_CID_HOST} is the hypervisor host, never a side of the pair; use 3 for the parent on Nitro, 1 for a vsock loopback transport`);
  }
  if (role === 'outer' && raw.logs) c.add([...base, 'logs'], '`logs` belongs to the inner side (the outer receives what the inner forwards)');

  const clusters = new Map<string, ClusterConfig>();
  (raw.clusters ?? []).forEach((rc: Raw, i: number) => {
    const p = [...base, 'clusters', i];
    if (clusters.has(rc.name)) c.add([...p, 'name'], `duplicate cluster name "${rc.name}"`);
    const endpoints: Address[] = [];
    (rc.endpoints as string[]).forEach((e, j) => {
      const a = c.address([...p, 'endpoints', j], e);
      reservedCheck(c, [...p, 'endpoints', j], a, 'cluster endpoint');
      if (a) endpoints.push(a);
    });
    clusters.set(rc.name, {
      name: rc.name,
      endpoints,
      connectTimeoutMs: parseDuration(rc.connect_timeout ?? DEFAULT_CONNECT_TIMEOUT),
      sendProxyProtocol: rc.proxy_protocol === 'v2',
    });
  });

  const listeners: ListenerConfig[] = [];
  const names = new Set<string>();
  const bound = new Map<string, string>();
  (raw.listeners ?? []).forEach((rl: Raw, i: number) => {
    const p = [...base, 'listeners', i];
    if (names.has(rl.name)) c.add([...p, 'name'], `duplicate listener name "${rl.name}"`);
    names.add(rl.name);
    const address = c.address([...p, 'address'], rl.address);
    reservedCheck(c, [...p, 'address'], address, 'listener');
    if (address) {
      const key = formatAddress(address);
      const other = bound.get(key);
      if (other && !(address.kind === 'tcp' && address.port === 0)) c.add([...p, 'address'], `${key} is already used by listener "${other}"`);
      bound.set(key, rl.name);
    }
    const kinds = LISTENER_KINDS.filter((k) => rl[k] !== undefined);
    if (kinds.length === 0) c.add(p, 'a listener needs a kind: set `cluster` (TCP proxy), `egress`, `kms`, `imds` or `attestation_api`');
    if (kinds.length > 1) c.add(p, `a listener has exactly one kind, this one has ${kinds.join(' and ')}`);
    for (const kind of INNER_ONLY_KINDS) {
      if (rl[kind] === undefined) continue;
      if (role !== 'inner') c.add([...p, kind], `\`${kind}\` listeners run inside the enclave: only the inner side has them`);
      // These serve the app only: anything beyond loopback would hand credentials and plaintexts out.
      if (address && !(address.kind === 'unix' || (address.kind === 'tcp' && isLoopbackHost(address.host)))) c.add([...p, 'address'], `a ${kind} listener must listen on loopback (tcp://127.0.0.1:PORT) or a unix:// socket`);
    }
    if (rl.cluster !== undefined && !clusters.has(rl.cluster)) c.add([...p, 'cluster'], `unknown cluster "${rl.cluster}"${clusters.size ? ` (defined: ${[...clusters.keys()].join(', ')})` : ' (no clusters are defined)'}`);
    if (rl.tls && role !== 'inner') c.add([...p, 'tls'], 'TLS is terminated inside the enclave: `tls` is only allowed on inner listeners');
    if (!address) return;
    listeners.push({
      name: rl.name,
      address,
      cluster: rl.cluster,
      ...(rl.egress !== undefined ? { egress: normalizeEgressListener((q, m) => c.add(q, m), rl.egress, [...p, 'egress']) } : {}),
      expectProxyProtocol: rl.proxy_protocol === 'v2',
      maxConnections: rl.max_connections ?? DEFAULT_MAX_CONNECTIONS,
      idleTimeoutMs: parseDuration(rl.idle_timeout ?? DEFAULT_IDLE_TIMEOUT),
      accessLog: rl.access_log === true,
      ...(rl.tls ? { tls: { certificate: path.resolve(configDir, rl.tls.certificate), privateKey: tlsPrivateKey(c, rl.tls.private_key, [...p, 'tls', 'private_key'], configDir) } } : {}),
      ...(rl.kms ? { kms: kmsListener(c, rl.kms, [...p, 'kms'], configDir) } : {}),
      ...(rl.imds ? { imds: {} } : {}),
      ...(rl.attestation_api ? { attestationApi: {} } : {}),
    });
  });
  if (role === 'outer' && (raw.nsm || raw.aws)) c.add([...base, raw.nsm ? 'nsm' : 'aws'], `\`${raw.nsm ? 'nsm' : 'aws'}\` belongs to the inner side`);
  if (role === 'inner' && raw.imds_relay) c.add([...base, 'imds_relay'], '`imds_relay` belongs to the outer side (it talks to the host\'s IMDS)');

  let app: AppConfig | undefined;
  if (raw.app) {
    app = {
      argv: typeof raw.app.command === 'string' ? ['/bin/sh', '-c', raw.app.command] : raw.app.command,
      env: raw.app.env ?? {},
      cwd: path.resolve(configDir, raw.app.cwd ?? '.'),
      stopTimeoutMs: parseDuration(raw.app.stop_timeout ?? DEFAULT_STOP_TIMEOUT),
    };
  }

  if (role === 'inner' && raw.egress_relay) c.add([...base, 'egress_relay'], '`egress_relay` belongs to the outer side (the inner has `egress` listeners)');
  const egressRelay = role === 'outer' && raw.egress_relay ? normalizeEgressRelay((q, m) => c.add(q, m), raw.egress_relay, [...base, 'egress_relay'], configDir) : undefined;

  return {
    role,
    source: c.source.file,
    logLevel: undefined,
    admin,
    vsock: { emulationDir: raw.vsock?.emulation_dir ? path.resolve(configDir, raw.vsock.emulation_dir) : undefined, cid: raw.vsock?.cid, parentCid: raw.vsock?.parent_cid },
    drainTimeoutMs: parseDuration(raw.shutdown?.drain_timeout ?? DEFAULT_DRAIN_TIMEOUT),
    logs: { forward: raw.logs?.forward, bufferBytes: raw.logs?.buffer_bytes ?? DEFAULT_LOG_BUFFER_BYTES },
    listeners,
    clusters,
    app,
    egressRelay,
    audit: normalizeAudit((q, m) => c.add(q, m), raw.audit, [...base, 'audit'], role, configDir),
    enclave: enclaveConfig(c, raw.enclave, [...base, 'enclave'], configDir),
    nsm: nsmConfig(raw.nsm, configDir),
    bootstrap: {
      mode: raw.bootstrap?.mode ?? 'auto',
      clockSyncIntervalMs: parseDuration(raw.bootstrap?.clock_sync_interval ?? DEFAULT_CLOCK_SYNC_INTERVAL),
      clockMaxStepMs: parseDuration(raw.bootstrap?.clock_max_step ?? DEFAULT_CLOCK_MAX_STEP),
    },
    aws: { region: raw.aws?.region, credentialRefreshMarginMs: parseDuration(raw.aws?.credential_refresh_margin ?? DEFAULT_CREDENTIAL_REFRESH_MARGIN) },
    imdsRelay: raw.imds_relay ? imdsRelayConfig(c, raw.imds_relay, [...base, 'imds_relay']) : undefined,
  };
}

const LAUNCH_ONLY_KEYS = ['cpu_count', 'memory_mib', 'debug_mode', 'ready_timeout', 'watch_interval'] as const;

/** The outer's enclave: its CID, and how to launch it when `eif` is set (the supervisor). */
function enclaveConfig(c: Collector, raw: Raw, p: PathSegment[], configDir: string): SideConfig['enclave'] {
  const cid = raw?.cid ?? DEFAULT_ENCLAVE_CID;
  if (raw?.eif === undefined) {
    for (const key of LAUNCH_ONLY_KEYS) {
      if (raw?.[key] !== undefined) c.add([...p, key], `\`${key}\` only applies when the outer launches the enclave: set \`enclave.eif\` too (or drop it)`);
    }
    return { cid, exitWithApp: raw?.exit_with_app ?? true, launch: undefined };
  }
  return {
    cid,
    exitWithApp: raw.exit_with_app ?? true,
    launch: {
      eif: path.resolve(configDir, raw.eif),
      cpuCount: raw.cpu_count ?? DEFAULT_ENCLAVE_CPUS,
      memoryMib: raw.memory_mib ?? DEFAULT_ENCLAVE_MEMORY_MIB,
      debugMode: raw.debug_mode ?? false,
      readyTimeoutMs: parseDuration(raw.ready_timeout ?? DEFAULT_READY_TIMEOUT),
      watchIntervalMs: parseDuration(raw.watch_interval ?? DEFAULT_WATCH_INTERVAL),
    },
  };
}

function tlsPrivateKey(c: Collector, raw: Raw, p: PathSegment[], configDir: string): TlsPrivateKey {
  if (typeof raw === 'string') return { file: path.resolve(configDir, raw) };
  return { kmsCiphertext: path.resolve(configDir, raw.kms_ciphertext), kms: kmsListener(c, raw.kms ?? {}, [...p, 'kms'], configDir) };
}

function kmsListener(c: Collector, raw: Raw, p: PathSegment[], configDir: string): KmsListenerConfig {
  const attestationReuseMs = parseDuration(raw.attestation_reuse ?? 0);
  if (attestationReuseMs > MAX_ATTESTATION_REUSE_MS) c.add([...p, 'attestation_reuse'], 'attestation documents may be reused for at most 5m');
  if (raw.endpoint && raw.endpoints) c.add(p, 'set `endpoint` (every region) or `endpoints` (per region), not both');
  return {
    endpoint: raw.endpoint,
    endpoints: raw.endpoints ?? {},
    egressProxy: raw.egress_proxy,
    caFile: raw.ca_file ? path.resolve(configDir, raw.ca_file) : undefined,
    attestationReuseMs,
    maxBodyBytes: raw.max_body_bytes ?? DEFAULT_KMS_MAX_BODY_BYTES,
  };
}

function nsmConfig(raw: Raw, configDir: string): NsmConfig {
  const pcrs = new Map<number, Buffer>();
  for (const [index, hex] of Object.entries((raw?.simulator?.pcrs ?? {}) as Record<string, string>)) pcrs.set(Number(index), Buffer.from(hex, 'hex'));
  const rootPath = raw?.simulator?.root_certificate_path;
  return { mode: raw?.mode ?? 'auto', simulatorPcrs: pcrs, simulatorRootCertificatePath: rootPath ? path.resolve(configDir, rootPath) : undefined };
}

function imdsRelayConfig(c: Collector, raw: Raw, p: PathSegment[]): ImdsRelayConfig {
  const ttlMs = parseDuration(raw.token_ttl ?? DEFAULT_IMDS_TOKEN_TTL);
  if (ttlMs < 1000 || ttlMs > 21600_000) c.add([...p, 'token_ttl'], 'IMDS grants session tokens of 1s to 6h');
  return { upstream: raw.upstream ?? DEFAULT_IMDS_UPSTREAM, tokenTtlSeconds: Math.round(ttlMs / 1000), timeoutMs: parseDuration(raw.timeout ?? DEFAULT_IMDS_TIMEOUT) };
}

/** TCP ports the two sides of a local pair would both bind on one machine. */
function localCollisions(c: Collector, local: LocalConfig): void {
  const taken = new Map<number, string>();
  const claim = (port: number, what: string, path: PathSegment[]) => {
    if (port === 0) return;
    const prior = taken.get(port);
    if (prior) c.add(path, `TCP port ${port} is used twice on this machine: ${prior} and ${what}. In local mode both sides share one network; publish the outer port elsewhere`);
    else taken.set(port, what);
  };
  local.outer.listeners.forEach((l, i) => { if (l.address.kind === 'tcp') claim(l.address.port, `outer listener "${l.name}"`, ['outer', 'listeners', i, 'address']); });
  local.inner.listeners.forEach((l, i) => { if (l.address.kind === 'tcp') claim(l.address.port, `inner listener "${l.name}"`, ['inner', 'listeners', i, 'address']); });
  for (const [side, cfg] of [['outer', local.outer], ['inner', local.inner]] as const) {
    if (cfg.admin?.kind === 'tcp') claim(cfg.admin.port, `${side} admin`, [side, 'admin', 'address']);
  }
  // The app binds its own ports: an outer listener on the same port would collide with it.
  const appPorts = new Set<number>();
  for (const cl of local.inner.clusters.values()) for (const e of cl.endpoints) if (e.kind === 'tcp') appPorts.add(e.port);
  local.outer.listeners.forEach((l, i) => {
    if (l.address.kind === 'tcp' && appPorts.has(l.address.port)) {
      c.add(['outer', 'listeners', i, 'address'], `TCP port ${l.address.port} is also where the app listens (inner cluster endpoint); publish the outer listener on another port`);
    }
  });
}

export function normalize(source: ConfigSource): Config {
  const c = new Collector(source);
  const raw = source.data as Raw;
  let config: Config;
  if (raw.role === 'local') {
    for (const key of Object.keys(raw)) {
      if (!['role', 'log', 'runtime_dir', 'outer', 'inner'].includes(key)) c.add([], `\`${key}\` belongs inside \`outer:\` or \`inner:\` when role is local`, key);
    }
    if (!raw.outer) c.add([], 'role local needs an `outer:` section');
    if (!raw.inner) c.add([], 'role local needs an `inner:` section');
    if (c.problems.length) throw new ConfigError(c.problems);
    const local: LocalConfig = {
      role: 'local',
      source: source.file,
      logLevel: raw.log?.level,
      runtimeDir: raw.runtime_dir ? path.resolve(path.dirname(path.resolve(source.file)), raw.runtime_dir) : undefined,
      outer: normalizeSide(c, raw.outer, ['outer'], 'outer'),
      inner: normalizeSide(c, raw.inner, ['inner'], 'inner'),
    };
    if (!c.problems.length) localCollisions(c, local);
    // A local pair whose inner has an egress listener gets the relay it needs without asking.
    if (local.inner.listeners.some((l) => l.egress) && !local.outer.egressRelay) local.outer.egressRelay = defaultEgressRelay();
    config = local;
  } else {
    for (const key of ['outer', 'inner', 'runtime_dir']) if (key in raw) c.add([], `\`${key}\` is only allowed when role is local`, key);
    const side = normalizeSide(c, raw, [], raw.role as Role);
    side.logLevel = raw.log?.level;
    config = side;
  }
  if (c.problems.length) throw new ConfigError(c.problems);
  return config;
}
