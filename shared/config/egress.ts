/**
 * The egress parts of the config: the `egress` listener kind (inner), the `egress_relay` section
 * (outer) and the `audit` section (both sides, different keys). Each is one spec (./spec.ts):
 * schema, normalized type and defaults come from the lines below.
 */
import fs from 'node:fs';
import type { EgressProto } from '../audit/record.js';
import { SYSLOG_FACILITIES, type SyslogFacility, type SyslogTransport } from '../audit/syslog.js';
import { messageOf } from '../errors/index.js';
import type { Address } from '../transport/address.js';
import { PolicyRuleError, parseRule, type Rule } from '../egress/policy.js';
import { parseCidr, type IpCidr } from '../egress/ip.js';
import type { PathSegment } from './source.js';
import {
  at,
  boolean,
  custom,
  describedAs,
  duration,
  fillFields,
  file,
  integer,
  isObject,
  keyOf,
  object,
  objectSchema,
  oneOfValues,
  optional,
  readAddress,
  readFields,
  refine,
  required,
  size,
  string,
  Unreadable,
  type ObjectOf,
  type ReadContext,
  type Spec,
  type Static,
} from './spec.js';

export const EGRESS_PROTOCOLS: readonly EgressProto[] = ['http_connect', 'http', 'socks5'];

/** Egress rule entries (allow/deny syntax), compiled; a bad entry is reported at its own index. */
function rules(list: 'allow' | 'deny', description: string, def: [] | undefined = []): Spec<Rule[]> {
  return custom(
    { type: 'array', items: { type: 'string' }, ...(def ? { default: def } : {}), description },
    (raw, p, ctx) => {
      const out: Rule[] = [];
      (Array.isArray(raw) ? raw : []).forEach((text: unknown, i) => {
        if (typeof text !== 'string') return;
        try {
          out.push(parseRule(list, i, text));
        } catch (err) {
          if (!(err instanceof PolicyRuleError)) throw err;
          ctx.problem([...p, i], `"${text}": ${String(err.context.reason)}`);
        }
      });
      return out;
    },
    (raw) => raw ?? def,
  );
}

const protocols = custom<EgressProto[]>(
  {
    type: 'array',
    minItems: 1,
    uniqueItems: true,
    items: { type: 'string', enum: EGRESS_PROTOCOLS },
    default: EGRESS_PROTOCOLS,
    description: 'Protocols accepted on this port (SOCKS5 and HTTP are told apart by the first byte).',
  },
  (raw) =>
    Array.isArray(raw) && raw.length > 0 && raw.every((p) => EGRESS_PROTOCOLS.includes(p as EgressProto))
      ? (raw as EgressProto[])
      : [...EGRESS_PROTOCOLS],
  (raw) => raw ?? [...EGRESS_PROTOCOLS],
);

const egressListenerFields = {
  protocols,
  allow: rules('allow', 'Destinations the app may reach.'),
  deny: rules('deny', 'Destinations refused even when allowed; also checked against the address a name resolved to.'),
  requireSniMatch: boolean({
    default: false,
    description: 'Peek the TLS ClientHello of each tunnel and refuse an SNI other than the requested host (domain fronting).',
  }),
  handshakeTimeoutMs: at('handshake_timeout', duration("Deadline for a client's request headers, SOCKS5 handshake or ClientHello.", '15s')),
  connectTimeoutMs: at('connect_timeout', duration('Deadline for the outer to resolve and connect.', '10s')),
  keepAliveTimeoutMs: at(
    'keep_alive_timeout',
    duration('Absolute-form HTTP: close a client connection when the next request head is not complete this long after a response.', '5s'),
  ),
  maxHeaders: integer({
    minimum: 1,
    maximum: 1000,
    default: 100,
    description: 'Header fields a request may carry (Envoy 100, HAProxy 101); a request with more is refused with 431.',
  }),
};

export const egressListenerSpec = refine(
  object(
    "Egress proxy (inner): the app's HTTP CONNECT / absolute-form HTTP / SOCKS5 proxy. Default deny: a destination must match `allow` and no `deny` entry. Entries: hostnames (`*` = one label, `**` = one or more), IPv4/IPv6 addresses and CIDRs, each with an optional `:PORT` or `:FROM-TO` (IPv6 in brackets: `[2001:db8::/32]:443`). Tunnels go to the outer relay on vsock port 17002.",
    egressListenerFields,
  ),
  ({ allow, deny, ...rest }) => ({ ...rest, policy: { allow, deny } }),
);
export type EgressListenerConfig = Static<typeof egressListenerSpec>;

const allowPrivate = custom<boolean | IpCidr[]>(
  {
    description: 'Let tunnels reach non-public addresses (loopback, RFC 1918, link-local, …): true for all, or a list of CIDRs.',
    oneOf: [{ type: 'boolean' }, { type: 'array', items: { type: 'string' } }],
    default: false,
  },
  (raw, p, ctx) => {
    if (!Array.isArray(raw)) return raw === true;
    const out: IpCidr[] = [];
    raw.forEach((t: unknown, i) => {
      const c = typeof t === 'string' ? parseCidr(t) : undefined;
      if (c) out.push(c);
      else ctx.problem([...p, i], `"${String(t)}" is not an IP address or CIDR`);
    });
    return out;
  },
  (raw) => raw ?? false,
);

/** http://HOST:PORT or socks5://HOST:PORT, no credentials: the one place this form is written. */
const UPSTREAM_PROXY_URL = /^(http|socks5h?):\/\/(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})\/?$/;

export interface UpstreamProxyUrl {
  url: string;
  kind: 'http' | 'socks5';
  host: string;
  port: number;
}

const upstreamProxyUrl = custom<UpstreamProxyUrl>(
  { type: 'string', description: 'http://HOST:PORT (HTTP CONNECT) or socks5://HOST:PORT.' },
  (raw, p, ctx) => {
    const url = String(raw);
    const m = UPSTREAM_PROXY_URL.exec(url);
    const port = m ? Number(m[4]) : 0;
    const host = m?.[2] ?? m?.[3];
    if (!m || !host || port < 1 || port > 65535) {
      ctx.problem(p, `"${url}" is not http://HOST:PORT or socks5://HOST:PORT (credentials are not supported)`);
      throw new Unreadable();
    }
    return { url, kind: m[1] === 'http' ? 'http' : 'socks5', host, port };
  },
);

const upstreamProxy = optional(
  refine(
    object('Open tunnels through a corporate proxy instead of connecting directly.', {
      url: required(upstreamProxyUrl),
      hosts: optional(
        rules('allow', 'Only destinations matching these entries (egress rule syntax) use the proxy; all when absent.', undefined),
      ),
    }),
    ({ url, hosts }) => ({ ...url, hosts }),
  ),
);

export const egressRelaySpec = optional(
  object(
    "Outer: the egress relay on vsock port 17002 that opens the inner's tunnels. The inner decides policy; this side resolves names, refuses non-public addresses (defence in depth) and connects.",
    {
      connectTimeoutMs: at('connect_timeout', duration('Deadline to resolve and connect to a destination.', '5s')),
      idleTimeoutMs: at('idle_timeout', duration('Close a tunnel after this long with no byte in either direction; 0 disables.', '1h')),
      hostsFile: file(
        'Extra name → address entries (/etc/hosts format), looked up before DNS; their addresses bypass the private-address guard. Also --hosts FILE.',
      ),
      allowPrivate,
      upstreamProxy,
    },
  ),
);
export type EgressRelayConfig = NonNullable<Static<typeof egressRelaySpec>>;

// The inner only buffers records; the outer writes them. One `audit` key, two sets of settings.
const innerAuditFields = {
  bufferRecords: integer({
    minimum: 1,
    default: 10000,
    description:
      'Inner: records kept until the outer acknowledges them; beyond this they are dropped and reported in an `audit_dropped` record.',
  }),
  checkpoint: object('Inner: signed checkpoints of the hash-chained log (docs/audit.md); one more closes the log at shutdown.', {
    records: integer({ minimum: 1, default: 1000, description: 'A checkpoint after this many records.' }),
    intervalMs: at('interval', duration('A checkpoint this often when records came since the last one; 0: by count only.', '60s')),
  }),
};
const outerAuditFields = {
  stdout: describedAs(boolean({ description: 'Outer: write audit lines to stdout (default true unless `file` is set).' }), {
    default: true,
  }),
  file: file('Outer: append audit lines to this file. Also --audit-log FILE.', 'write'),
  maxSize: size('Outer: rotate the file before it grows past this size (bytes, or with B/KiB/MiB/GiB); 0 disables rotation.', '100MiB'),
  keep: integer({ minimum: 0, default: 5, description: 'Outer: rotated files kept (file.1 … file.N).' }),
  fsync: boolean({ default: false, description: 'Outer: fdatasync after every write (survives a host crash; slower).' }),
  syslog: optional(
    refine(
      object('Outer: also forward audit lines to syslog (RFC 5424 over TCP, octet-counted); a record is acknowledged once syslog has it.', {
        address: required(
          custom<Extract<Address, { kind: 'tcp' }>>(
            { type: 'string', description: 'tcp://HOST:PORT of the syslog server.' },
            (raw, p, ctx) => {
              const a = readAddress(String(raw), p, ctx);
              if (a.kind === 'tcp') return a;
              ctx.problem(p, 'syslog is reached over TCP: tcp://HOST:PORT');
              throw new Unreadable();
            },
          ),
        ),
        tls: optional(
          object('Use TLS (RFC 5425).', {
            ca: file("PEM file of the CA that signed the server's certificate (system CAs otherwise)."),
            serverName: string({ description: "Name the certificate must carry (the address's host otherwise)." }),
          }),
        ),
        facility: oneOfValues(Object.keys(SYSLOG_FACILITIES) as SyslogFacility[], {
          default: 'local0',
          description: 'Syslog facility of the messages (severity is info).',
        }),
        appName: string({ pattern: '^[!-~]{1,48}$', default: 'enclaver-proxy', description: 'APP-NAME of the messages.' }),
      }),
      ({ address, tls, facility, appName }, p, ctx): SyslogConfig => ({
        address,
        facility,
        appName,
        transport: tls
          ? { kind: 'tls', ca: tls.ca === undefined ? undefined : readCa(tls.ca, [...p, 'tls', 'ca'], ctx), serverName: tls.serverName }
          : { kind: 'tcp' },
      }),
    ),
  ),
};

export interface SyslogConfig {
  address: Extract<Address, { kind: 'tcp' }>;
  transport: SyslogTransport;
  facility: SyslogFacility;
  appName: string;
}

/** The CA's PEM text: the outer may drop privileges later, and a missing file is a config error. */
function readCa(file: string, p: readonly PathSegment[], ctx: ReadContext): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    ctx.problem(p, `cannot read the CA file: ${messageOf(err)}`);
    throw new Unreadable();
  }
}

export type InnerAuditConfig = ObjectOf<typeof innerAuditFields>;
export interface OuterAuditConfig {
  stdout: boolean;
  file: { path: string; maxBytes: number; keep: number; fsync: boolean } | undefined;
  syslog: SyslogConfig | undefined;
}

function wrongSideKeys(raw: unknown, p: readonly PathSegment[], ctx: ReadContext, keys: string[], owner: string): void {
  if (!isObject(raw)) return;
  for (const key of keys) if (raw[key] !== undefined) ctx.problem([...p, key], `\`audit.${key}\` is a setting of the ${owner} side`);
}

const auditSchema = objectSchema(
  'Egress audit records: produced by the inner (one per attempt), carried over vsock port 17003, written by the outer.',
  { ...innerAuditFields, ...outerAuditFields },
);

/** Inner: always read (its defaults apply without a section). */
export const innerAuditSpec: Spec<InnerAuditConfig> = {
  schema: auditSchema,
  read(raw, p, ctx) {
    wrongSideKeys(
      raw,
      p,
      ctx,
      Object.entries(outerAuditFields).map(([name, spec]) => keyOf(name, spec)),
      'outer',
    );
    return readFields(innerAuditFields, raw, p, ctx);
  },
  fill: (raw, ctx) => fillFields(innerAuditFields, raw, ctx),
};

/** Outer: undefined without a section (the collector then exists only when egress is relayed). */
export const outerAuditSpec: Spec<OuterAuditConfig | undefined> = {
  schema: auditSchema,
  read(raw, p, ctx) {
    if (raw === undefined) return undefined;
    wrongSideKeys(
      raw,
      p,
      ctx,
      Object.entries(innerAuditFields).map(([name, spec]) => keyOf(name, spec)),
      'inner',
    );
    const a = readFields(outerAuditFields, raw, p, ctx);
    const written = a.file === undefined ? undefined : { path: a.file, maxBytes: a.maxSize, keep: a.keep, fsync: a.fsync };
    return { stdout: a.stdout ?? written === undefined, file: written, syslog: a.syslog };
  },
  fill: (raw, ctx) => (raw === undefined ? undefined : fillFields(outerAuditFields, raw, ctx)),
};
