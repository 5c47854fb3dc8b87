/**
 * The egress parts of the config: the `egress` listener kind (inner), the `egress_relay` section
 * (outer) and the `audit` section (both sides). Schema fragments and their normalization live
 * together here so that schema.ts and normalize.ts only wire them in.
 */
import path from 'node:path';
import type { EgressProto } from '../audit/record.js';
import { PolicyRuleError, parseRule, type EgressPolicy, type Rule } from '../egress/policy.js';
import { parseCidr, type IpCidr } from '../egress/ip.js';
import { parseDuration, DURATION_PATTERN } from '../util/duration.js';
import type { PathSegment } from './source.js';

export const EGRESS_PROTOCOLS: readonly EgressProto[] = ['http_connect', 'http', 'socks5'];
export const DEFAULT_EGRESS_ADDRESS = 'tcp://127.0.0.1:10000';

const duration = (description: string, def: string) => ({
  description: `${description} Duration such as 250ms, 5s, 2m, 1h (or milliseconds as a number).`,
  type: ['string', 'integer'], pattern: DURATION_PATTERN, minimum: 0, default: def,
});
const SIZE_PATTERN = '^[0-9]+(B|KiB|MiB|GiB)?$';

export const egressListenerSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Egress proxy (inner): the app\'s HTTP CONNECT / absolute-form HTTP / SOCKS5 proxy. Default deny: a destination must match `allow` and no `deny` entry. Entries: hostnames (`*` = one label, `**` = one or more), IPv4/IPv6 addresses and CIDRs, each with an optional `:PORT` or `:FROM-TO` (IPv6 in brackets: `[2001:db8::/32]:443`). Tunnels go to the outer relay on vsock port 17002.',
  properties: {
    protocols: {
      type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', enum: EGRESS_PROTOCOLS },
      default: EGRESS_PROTOCOLS, description: 'Protocols accepted on this port (SOCKS5 and HTTP are told apart by the first byte).',
    },
    allow: { type: 'array', items: { type: 'string' }, default: [], description: 'Destinations the app may reach.' },
    deny: { type: 'array', items: { type: 'string' }, default: [], description: 'Destinations refused even when allowed; also checked against the address a name resolved to.' },
    require_sni_match: { type: 'boolean', default: false, description: 'Peek the TLS ClientHello of each tunnel and refuse an SNI other than the requested host (domain fronting).' },
    handshake_timeout: duration('Deadline for a client\'s request headers, SOCKS5 handshake or ClientHello.', '15s'),
    connect_timeout: duration('Deadline for the outer to resolve and connect.', '10s'),
    keep_alive_timeout: duration('Absolute-form HTTP: close a client connection idle this long after a response (the next request head must be complete by then).', '5s'),
    max_headers: {
      type: 'integer', minimum: 1, maximum: 1000, default: 100,
      description: 'Header fields a request may carry (Envoy 100, HAProxy 101); beyond it the request is refused with 431.',
    },
  },
};

export const egressRelaySchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Outer: the egress relay on vsock port 17002 that opens the inner\'s tunnels. The inner decides policy; this side resolves names, refuses non-public addresses (defence in depth) and connects.',
  properties: {
    connect_timeout: duration('Deadline to resolve and connect to a destination.', '5s'),
    idle_timeout: duration('Close a tunnel after this long with no byte in either direction; 0 disables.', '1h'),
    hosts_file: { type: 'string', description: 'Extra name → address entries (/etc/hosts format), looked up before DNS; their addresses bypass the private-address guard. Also --hosts FILE.' },
    allow_private: {
      description: 'Let tunnels reach non-public addresses (loopback, RFC 1918, link-local, …): true for all, or a list of CIDRs.',
      oneOf: [{ type: 'boolean' }, { type: 'array', items: { type: 'string' } }], default: false,
    },
    upstream_proxy: {
      type: 'object', additionalProperties: false, required: ['url'],
      description: 'Open tunnels through a corporate proxy instead of connecting directly.',
      properties: {
        url: { type: 'string', description: 'http://HOST:PORT (HTTP CONNECT) or socks5://HOST:PORT.' },
        hosts: { type: 'array', items: { type: 'string' }, description: 'Only destinations matching these entries (egress rule syntax) use the proxy; all when absent.' },
      },
    },
  },
};

export const auditSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Egress audit records: produced by the inner (one per attempt), carried over vsock port 17003, written by the outer.',
  properties: {
    buffer_records: { type: 'integer', minimum: 1, default: 10000, description: 'Inner: records kept until the outer acknowledges them; beyond this they are dropped and reported in an `audit_dropped` record.' },
    stdout: { type: 'boolean', default: true, description: 'Outer: write audit lines to stdout (default true unless `file` is set).' },
    file: { type: 'string', description: 'Outer: append audit lines to this file. Also --audit-log FILE.' },
    max_size: { type: ['string', 'integer'], pattern: SIZE_PATTERN, default: '100MiB', description: 'Outer: rotate the file before it grows past this size (bytes, or with B/KiB/MiB/GiB); 0 disables rotation.' },
    keep: { type: 'integer', minimum: 0, default: 5, description: 'Outer: rotated files kept (file.1 … file.N).' },
    fsync: { type: 'boolean', default: false, description: 'Outer: fdatasync after every write (survives a host crash; slower).' },
  },
};

export interface EgressListenerConfig {
  protocols: EgressProto[];
  policy: EgressPolicy;
  requireSniMatch: boolean;
  handshakeTimeoutMs: number;
  connectTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxHeaders: number;
}

export interface EgressRelayConfig {
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  hostsFile: string | undefined;
  allowPrivate: boolean | IpCidr[];
  upstreamProxy: { url: string; hosts: Rule[] | undefined } | undefined;
}

export interface AuditConfig {
  bufferRecords: number;
  stdout: boolean;
  file: { path: string; maxBytes: number; keep: number; fsync: boolean } | undefined;
}

export type Problem = (path: PathSegment[], message: string) => void;

/* eslint-disable @typescript-eslint/no-explicit-any -- the raw document is schema-validated JSON */
type Raw = any;

function rules(add: Problem, base: PathSegment[], list: 'allow' | 'deny', entries: string[]): Rule[] {
  const out: Rule[] = [];
  entries.forEach((text, i) => {
    try {
      out.push(parseRule(list, i, text));
    } catch (err) {
      if (!(err instanceof PolicyRuleError)) throw err;
      add([...base, list, i], `"${text}": ${String(err.context.reason)}`);
    }
  });
  return out;
}

export function normalizeEgressListener(add: Problem, raw: Raw, base: PathSegment[]): EgressListenerConfig {
  return {
    protocols: raw.protocols ?? [...EGRESS_PROTOCOLS],
    policy: { allow: rules(add, base, 'allow', raw.allow ?? []), deny: rules(add, base, 'deny', raw.deny ?? []) },
    requireSniMatch: raw.require_sni_match === true,
    handshakeTimeoutMs: parseDuration(raw.handshake_timeout ?? '15s'),
    connectTimeoutMs: parseDuration(raw.connect_timeout ?? '10s'),
    keepAliveTimeoutMs: parseDuration(raw.keep_alive_timeout ?? '5s'),
    maxHeaders: raw.max_headers ?? 100,
  };
}

export function normalizeEgressRelay(add: Problem, raw: Raw, base: PathSegment[], configDir: string): EgressRelayConfig {
  let allowPrivate: boolean | IpCidr[] = false;
  if (Array.isArray(raw.allow_private)) {
    allowPrivate = [];
    (raw.allow_private as string[]).forEach((t, i) => {
      const c = parseCidr(t);
      if (c) (allowPrivate as IpCidr[]).push(c);
      else add([...base, 'allow_private', i], `"${t}" is not an IP address or CIDR`);
    });
  } else if (raw.allow_private === true) {
    allowPrivate = true;
  }
  const up = raw.upstream_proxy;
  if (up && !/^(http|socks5h?):\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}\/?$/.test(up.url)) {
    add([...base, 'upstream_proxy', 'url'], `"${up.url}" is not http://HOST:PORT or socks5://HOST:PORT (credentials are not supported)`);
  }
  return {
    connectTimeoutMs: parseDuration(raw.connect_timeout ?? '5s'),
    idleTimeoutMs: parseDuration(raw.idle_timeout ?? '1h'),
    hostsFile: raw.hosts_file ? path.resolve(configDir, raw.hosts_file) : undefined,
    allowPrivate,
    upstreamProxy: up ? { url: up.url, hosts: up.hosts ? rules(add, [...base, 'upstream_proxy'], 'allow', up.hosts) : undefined } : undefined,
  };
}

const SIZE_UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

export function parseSize(value: string | number): number {
  if (typeof value === 'number') return value;
  const m = new RegExp(SIZE_PATTERN).exec(value);
  if (!m) throw new Error(`"${value}" is not a size (use e.g. 100MiB)`);
  return Number(value.slice(0, value.length - (m[1]?.length ?? 0))) * SIZE_UNITS[m[1] ?? 'B']!;
}

const OUTER_AUDIT_KEYS = ['stdout', 'file', 'max_size', 'keep', 'fsync'];

export function normalizeAudit(add: Problem, raw: Raw | undefined, base: PathSegment[], role: 'inner' | 'outer', configDir: string): AuditConfig | undefined {
  if (raw === undefined) return undefined;
  // The inner only buffers records; the outer writes them. A key on the wrong side would be ignored.
  for (const key of role === 'inner' ? OUTER_AUDIT_KEYS : ['buffer_records']) {
    if (raw[key] !== undefined) add([...base, key], `\`audit.${key}\` is a setting of the ${role === 'inner' ? 'outer' : 'inner'} side`);
  }
  const file = raw.file ? { path: path.resolve(configDir, raw.file), maxBytes: parseSize(raw.max_size ?? '100MiB'), keep: raw.keep ?? 5, fsync: raw.fsync === true } : undefined;
  return { bufferRecords: raw.buffer_records ?? 10000, stdout: raw.stdout ?? file === undefined, file };
}

/** An egress relay with every default, for a local pair or an outer given --hosts. */
export function defaultEgressRelay(): EgressRelayConfig {
  return normalizeEgressRelay(() => {}, {}, [], process.cwd());
}

export interface EgressFlags {
  /** --audit-log FILE */
  auditLog?: string;
  /** --hosts FILE */
  hosts?: string;
}

/** Apply the outer's command-line flags over its config (flags win). */
export function applyEgressFlags(outer: { egressRelay: EgressRelayConfig | undefined; audit: AuditConfig | undefined }, flags: EgressFlags): void {
  if (flags.hosts !== undefined) {
    outer.egressRelay = { ...(outer.egressRelay ?? defaultEgressRelay()), hostsFile: path.resolve(flags.hosts) };
  }
  if (flags.auditLog !== undefined) {
    const current = outer.audit;
    outer.audit = {
      bufferRecords: current?.bufferRecords ?? 10000,
      // Without an audit section the flag means "to this file" (stdout keeps the process logs).
      stdout: current ? current.stdout : false,
      file: { path: path.resolve(flags.auditLog), maxBytes: current?.file?.maxBytes ?? parseSize('100MiB'), keep: current?.file?.keep ?? 5, fsync: current?.file?.fsync ?? false },
    };
  }
}
