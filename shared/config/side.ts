/**
 * One side of the pair (role inner or outer, or `outer:`/`inner:` under role local): its sections
 * as specs, and the reading of a side into `InnerConfig` or `OuterConfig`. Sections one side does
 * not have are refused on the other (they would be ignored), and each side's type holds only its
 * own sections, so the inner's code cannot read an outer setting by mistake.
 */
import path from 'node:path';
import { MAX_ADMIN_CONNECTIONS } from '../admin/limits.js';
import type { Address } from '../transport/address.js';
import { clustersSpec, type ClusterConfig } from './clusters.js';
import { egressRelaySpec, innerAuditSpec, outerAuditSpec } from './egress.js';
import { listenersSpec, type ListenerConfig, type ListenerOf } from './listeners.js';
import type { PathSegment } from './source.js';
import {
  address, at, boolean, custom, describedAs, duration, fillFields, file, integer, isObject, keyOf, object, objectSchema, oneOfValues, optional, readFields,
  readAddress, record, refine, required, string, Unreadable, type FillContext, type ObjectOf, type ReadContext, type Role, type Spec,
} from './spec.js';

export const DEFAULT_ADMIN: Record<Role, string> = { inner: 'tcp://127.0.0.1:9901', outer: 'tcp://127.0.0.1:9902' };

const adminAddress = custom<Address | null>({
  ...address('Admin listen address; loopback by default. null disables it.').schema,
  type: ['string', 'null'],
  default: `${DEFAULT_ADMIN.inner} (inner), ${DEFAULT_ADMIN.outer} (outer)`,
}, (raw, p, ctx) => {
  if (raw === null) return null;
  return readAddress(typeof raw === 'string' ? raw : DEFAULT_ADMIN[ctx.role], p, ctx);
}, (raw, ctx) => (raw === undefined ? DEFAULT_ADMIN[ctx.role] : raw));

const commonFields = {
  admin: object('Admin endpoint: GET /live, /ready, /metrics (Prometheus).', {
    address: adminAddress,
    maxConnections: integer({ minimum: 1, maximum: 10000, default: MAX_ADMIN_CONNECTIONS, description: 'Connections held at once (a scraper needs one or ' +
      'two); further ones are closed at accept and logged.' }),
  }),
  vsock: object('How vsock addresses are opened.', {
    emulationDir: file('Emulate vsock with Unix sockets <dir>/<cid>_<port>.sock (development, tests). Also ENCLAVER_VSOCK_EMULATION_DIR.', 'directory'),
    cid: integer({ minimum: 3, maximum: 4294967294, description: 'This side\'s CID under emulation (default 3 on the outer, 16 in the ' +
      'enclave).' }),
  }),
  shutdown: object('Graceful shutdown on SIGTERM/SIGINT.', {
    drainTimeoutMs: at('drain_timeout', duration('After listeners stop accepting, wait this long for open connections to finish before ' +
      'closing them.', '15s')),
  }),
};

const PCR_INDEX = '^([0-9]|[12][0-9]|3[01])$';

const appCommand = custom<string[] | undefined>({
  description: 'Program and arguments (a list), or one string run by /bin/sh -c.',
  oneOf: [{ type: 'string', minLength: 1 }, { type: 'array', minItems: 1, items: { type: 'string' } }],
}, (raw) => {
  if (typeof raw === 'string' && raw.length > 0) return ['/bin/sh', '-c', raw];
  if (Array.isArray(raw) && raw.length > 0 && raw.every((a) => typeof a === 'string')) return raw as string[];
  return undefined;
});

const appSpec = refine(object('Inner only: the application the inner proxy starts and supervises. It receives HTTP_PROXY, HTTPS_PROXY, ' +
  'ALL_PROXY and NO_PROXY (and lower-case twins) pointing at the egress listener.', {
  argv: at('command', required(appCommand)),
  env: record(string({ description: 'Value.' }), { description: 'Extra environment variables for the app.' }),
  cwd: file('Working directory of the app (default: the config file\'s directory).', 'directory'),
  stopTimeoutMs: at('stop_timeout', duration('After forwarding SIGTERM, wait this long before SIGKILL.', '10s')),
}), (app, _p, ctx) => ({ ...app, cwd: app.cwd ?? path.resolve(ctx.configDir) }));

const innerFields = {
  logs: object('Inner only: the enclave\'s log lines (the inner\'s own and the app\'s stdout/stderr) carried to the outer over vsock ' +
    '17001, which writes them to its stdout. Inside Nitro, stdout only reaches a debug-mode console.', {
    forward: describedAs(boolean({ description: 'Forward log lines to the outer.' }), { default: 'on with real vsock, off under ' +
      'emulation (the local pair shares one terminal)' }),
    bufferBytes: integer({ minimum: 4096, default: 1048576, description: 'Lines kept while the outer is unreachable; past it the oldest ' +
      'are dropped and the drop is reported in the stream.' }),
  }),
  app: optional(appSpec),
  audit: innerAuditSpec,
  nsm: object('Inner only: the Nitro Secure Module that signs attestation documents.', {
    mode: oneOfValues(['auto', 'device', 'simulator'], { default: 'auto', description: 'auto: /dev/nsm when present, else the simulator ' +
      '(announced at startup). device: fail without /dev/nsm. simulator: always simulate.' }),
    simulator: object('The simulator used off Nitro: documents signed by a throw-away CA generated at startup.', {
      pcrs: refine(record(string({ pattern: '^([0-9a-fA-F]{96})$', description: 'SHA-384.' }), {
        propertyNames: { pattern: PCR_INDEX },
        description: 'PCR index → 96 hex digits (SHA-384); unset PCRs 0-15 read as zeros.',
      }), (pcrs) => new Map(Object.entries(pcrs).filter(([i, hex]) => new RegExp(PCR_INDEX).test(i) && /^[0-9a-fA-F]{96}$/.test(hex))
        .map(([i, hex]) => [Number(i), Buffer.from(hex, 'hex')]))),
      rootCertificatePath: file('Write the throw-away root certificate (PEM) here at startup, for verifiers to pin.', 'write'),
    }),
  }),
  aws: object('Inner only: how the KMS proxy and IMDS endpoint reach AWS.', {
    region: string({ pattern: '^[a-z0-9-]+$', description: 'AWS region (default: asked of IMDS through the relay). Also given to the app ' +
      'as AWS_REGION.' }),
    credentialRefreshMarginMs: at('credential_refresh_margin', duration('Refresh the relayed role credentials this long before their ' +
      'Expiration.', '5m')),
  }),
};

/** IMDS grants session tokens of 1s to 6h. */
const IMDS_TOKEN_TTL_MS = { min: 1000, max: 6 * 3_600_000 };

const imdsRelaySpec = optional(refine(object('Outer only: relay the instance metadata the enclave\'s SDKs need (role credentials, ' +
  'region, identity document) over vsock port 17004, speaking IMDSv2 to the host. Nothing else is relayed.', {
  upstream: string({ pattern: '^http://', default: 'http://169.254.169.254', description: 'The instance metadata service.' }),
  tokenTtlMs: at('token_ttl', duration('TTL asked for IMDSv2 session tokens (1s-6h); a token is reused until shortly before it expires.', '6h')),
  timeoutMs: at('timeout', duration('Give up on an IMDS request after this long.', '2s')),
}), ({ tokenTtlMs, ...rest }, p, ctx) => {
  if (tokenTtlMs < IMDS_TOKEN_TTL_MS.min || tokenTtlMs > IMDS_TOKEN_TTL_MS.max) ctx.problem([...p, 'token_ttl'], 'IMDS grants session ' +
    'tokens of 1s to 6h');
  return { ...rest, tokenTtlSeconds: Math.round(tokenTtlMs / 1000) };
}));

const outerFields = {
  enclave: object('Outer only: the enclave this outer proxy serves.', {
    cid: integer({ minimum: 3, maximum: 4294967294, default: 16, description: 'The enclave\'s CID.' }),
    exitWithApp: boolean({ default: true, description: 'Exit when the enclave reports that its app exited, with the app\'s exit code.' }),
  }),
  egressRelay: egressRelaySpec,
  audit: outerAuditSpec,
  imdsRelay: imdsRelaySpec,
};

/** Why a section is refused on the side that does not have it. */
const WRONG_SIDE: Record<string, string> = {
  app: '`app` belongs to the inner side (the app runs inside the enclave)',
  logs: '`logs` belongs to the inner side (the outer receives what the inner forwards)',
  nsm: '`nsm` belongs to the inner side',
  aws: '`aws` belongs to the inner side',
  enclave: '`enclave` belongs to the outer side',
  egress_relay: '`egress_relay` belongs to the outer side (the inner has `egress` listeners)',
  imds_relay: '`imds_relay` belongs to the outer side (it talks to the host\'s IMDS)',
};

interface SideCommon extends ObjectOf<typeof commonFields> {
  /** The file the config came from (for messages), or a description such as "enclaver.yaml (as inner)". */
  source: string;
  clusters: ReadonlyMap<string, ClusterConfig>;
}

export type InnerListenerConfig = ListenerConfig;
export type OuterListenerConfig = ListenerOf<'tcp_proxy'>;

export interface InnerConfig extends SideCommon, ObjectOf<typeof innerFields> {
  role: 'inner';
  listeners: readonly InnerListenerConfig[];
}

export interface OuterConfig extends SideCommon, ObjectOf<typeof outerFields> {
  role: 'outer';
  listeners: readonly OuterListenerConfig[];
}

export type SideConfig = InnerConfig | OuterConfig;

/** The JSON Schema of a side: every section of both sides (under role local one schema serves both). */
export const sideSchema = objectSchema('', {
  ...commonFields,
  logs: innerFields.logs,
  app: innerFields.app,
  enclave: outerFields.enclave,
  egressRelay: outerFields.egressRelay,
  audit: outerFields.audit,
  nsm: innerFields.nsm,
  aws: innerFields.aws,
  imdsRelay: outerFields.imdsRelay,
  listeners: listenersSpec,
  clusters: clustersSpec,
}).properties as Record<string, unknown>;

export interface SideSource {
  file: string;
  configDir: string;
  problem(path: readonly PathSegment[], message: string): void;
  uses: ReadContext['uses'];
}

function claims(): ReadContext['claim'] {
  const taken = new Map<string, string>();
  return (scope, key, owner) => {
    const id = `${scope}\0${key}`;
    const prior = taken.get(id);
    if (prior === undefined) taken.set(id, owner);
    return prior;
  };
}

/** Read one side; problems go to `source.problem`, and the result is only meaningful when there were none. */
export function readSide(raw: unknown, base: PathSegment[], role: Role, source: SideSource): SideConfig {
  const doc = isObject(raw) ? raw : {};
  const ctxBase = { configDir: source.configDir, role, problem: source.problem, uses: source.uses, claim: claims() };
  const own = role === 'inner' ? innerFields : outerFields;
  const theirs = role === 'inner' ? outerFields : innerFields;
  for (const key of Object.keys(doc)) {
    const why = WRONG_SIDE[key];
    if (why && !(key in fieldsByKey(own)) && key in fieldsByKey(theirs)) source.problem([...base, key], why);
  }
  const attempt = <T>(read: () => T): T | undefined => {
    try {
      return read();
    } catch (err) {
      if (!(err instanceof Unreadable)) throw err;
      return undefined;
    }
  };
  const clusterList = clustersSpec.read(doc.clusters, [...base, 'clusters'], { ...ctxBase, clusters: new Map() });
  const clusters = new Map(clusterList.map((c) => [c.name, c]));
  const ctx: ReadContext = { ...ctxBase, clusters };
  const listeners = listenersSpec.read(doc.listeners, [...base, 'listeners'], ctx);
  const common = attempt(() => readFields(commonFields, doc, base, ctx));
  const sections = attempt(() => readFields(own, doc, base, ctx));
  if (!common || !sections) return { role, source: source.file, clusters, listeners: [], ...(common ?? {}), ...(sections ?? {}) } as unknown as SideConfig;
  if (role === 'inner') return { role, source: source.file, ...common, ...(sections as ObjectOf<typeof innerFields>), clusters, listeners };
  const outerListeners = listeners.filter((l): l is OuterListenerConfig => l.kind === 'tcp_proxy');
  return { role, source: source.file, ...common, ...(sections as ObjectOf<typeof outerFields>), clusters, listeners: outerListeners };
}

function fieldsByKey(fields: Record<string, Spec<unknown>>): Record<string, Spec<unknown>> {
  return Object.fromEntries(Object.entries(fields).map(([name, spec]) => [keyOf(name, spec), spec]));
}

/** The side's document with defaults written out and paths absolute (what --check prints). */
export function fillSide(raw: unknown, role: Role, ctx: Omit<FillContext, 'role'>): Record<string, unknown> {
  const fctx = { ...ctx, role };
  return {
    ...fillFields(commonFields, raw, fctx),
    ...fillFields(role === 'inner' ? innerFields : outerFields, raw, fctx),
    listeners: listenersSpec.fill(isObject(raw) ? raw.listeners : undefined, fctx),
    clusters: clustersSpec.fill(isObject(raw) ? raw.clusters : undefined, fctx),
  };
}
