/**
 * From a schema-valid document to the normalized config: defaults applied, addresses parsed,
 * references resolved, and the rules a schema cannot express checked (unique names, known
 * clusters, reserved vsock ports, port collisions, role-specific sections).
 */
import path from 'node:path';
import { AddressError, ConfigError, type ConfigProblem } from '../errors/index.js';
import { parseAddress, formatAddress, type Address } from '../transport/address.js';
import { parseDuration } from '../util/duration.js';
import { isReservedPort, RESERVED_PORT_MIN, RESERVED_PORT_MAX } from '../wire/ports.js';
import type { ConfigSource, PathSegment } from './source.js';
import type { AppConfig, ClusterConfig, Config, ListenerConfig, LocalConfig, Role, SideConfig } from './types.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- the raw document is schema-validated JSON */
type Raw = any;

export const DEFAULT_ADMIN: Record<Role, string> = { inner: 'tcp://127.0.0.1:9901', outer: 'tcp://127.0.0.1:9902' };
export const DEFAULT_ENCLAVE_CID = 16;
const DEFAULT_CONNECT_TIMEOUT = '5s';
const DEFAULT_IDLE_TIMEOUT = '1h';
const DEFAULT_DRAIN_TIMEOUT = '15s';
const DEFAULT_STOP_TIMEOUT = '10s';
const DEFAULT_MAX_CONNECTIONS = 10000;

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
    if (rl.cluster === undefined) c.add(p, 'a listener needs a kind: set `cluster` (TCP proxy)');
    else if (!clusters.has(rl.cluster)) c.add([...p, 'cluster'], `unknown cluster "${rl.cluster}"${clusters.size ? ` (defined: ${[...clusters.keys()].join(', ')})` : ' (no clusters are defined)'}`);
    if (rl.tls && role !== 'inner') c.add([...p, 'tls'], 'TLS is terminated inside the enclave: `tls` is only allowed on inner listeners');
    if (!address) return;
    listeners.push({
      name: rl.name,
      address,
      cluster: rl.cluster,
      expectProxyProtocol: rl.proxy_protocol === 'v2',
      maxConnections: rl.max_connections ?? DEFAULT_MAX_CONNECTIONS,
      idleTimeoutMs: parseDuration(rl.idle_timeout ?? DEFAULT_IDLE_TIMEOUT),
      accessLog: rl.access_log === true,
      ...(rl.tls ? { tls: { certificate: path.resolve(configDir, rl.tls.certificate), privateKey: path.resolve(configDir, rl.tls.private_key) } } : {}),
    });
  });

  let app: AppConfig | undefined;
  if (raw.app) {
    app = {
      argv: typeof raw.app.command === 'string' ? ['/bin/sh', '-c', raw.app.command] : raw.app.command,
      env: raw.app.env ?? {},
      cwd: path.resolve(configDir, raw.app.cwd ?? '.'),
      stopTimeoutMs: parseDuration(raw.app.stop_timeout ?? DEFAULT_STOP_TIMEOUT),
    };
  }

  return {
    role,
    source: c.source.file,
    logLevel: undefined,
    admin,
    vsock: { emulationDir: raw.vsock?.emulation_dir ? path.resolve(configDir, raw.vsock.emulation_dir) : undefined, cid: raw.vsock?.cid },
    drainTimeoutMs: parseDuration(raw.shutdown?.drain_timeout ?? DEFAULT_DRAIN_TIMEOUT),
    listeners,
    clusters,
    app,
    enclave: { cid: raw.enclave?.cid ?? DEFAULT_ENCLAVE_CID, exitWithApp: raw.enclave?.exit_with_app ?? true },
  };
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
