/**
 * One side of the pair (role inner or outer, or `outer:`/`inner:` under role local): its sections
 * as specs, and the reading of a side into `InnerConfig` or `OuterConfig`. Sections one side does
 * not have are refused on the other (they would be ignored), and each side's type holds only its
 * own sections, so the inner's code cannot read an outer setting by mistake.
 */
import path from 'node:path';
import { MAX_ADMIN_CONNECTIONS } from '../admin/limits.js';
import { VSOCK_CID_HOST, type Address } from '../transport/address.js';
import { clustersSpec, type ClusterConfig } from './clusters.js';
import { egressRelaySpec, innerAuditSpec, outerAuditSpec } from './egress.js';
import { listenersSpec, type ListenerConfig, type ListenerOf } from './listeners.js';
import type { PathSegment } from './source.js';
import {
  address,
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
  readFields,
  readAddress,
  record,
  refine,
  required,
  string,
  Unreadable,
  type FillContext,
  type ObjectOf,
  type ReadContext,
  type Role,
  type Spec,
} from './spec.js';

const CID_HOST_REFUSED = `CID ${VSOCK_CID_HOST} is the hypervisor host, never a side of the pair; use 3 for the parent on Nitro, 1 for a vsock loopback transport`;

export const DEFAULT_ADMIN: Record<Role, string> = { inner: 'tcp://127.0.0.1:9901', outer: 'tcp://127.0.0.1:9902' };

const adminAddress = custom<Address | null>(
  {
    ...address('Admin listen address; loopback by default. null disables it.').schema,
    type: ['string', 'null'],
    default: `${DEFAULT_ADMIN.inner} (inner), ${DEFAULT_ADMIN.outer} (outer)`,
  },
  (raw, p, ctx) => {
    if (raw === null) return null;
    return readAddress(typeof raw === 'string' ? raw : DEFAULT_ADMIN[ctx.role], p, ctx);
  },
  (raw, ctx) => (raw === undefined ? DEFAULT_ADMIN[ctx.role] : raw),
);

const commonFields = {
  admin: object('Admin endpoint: GET /live, /ready, /metrics (Prometheus).', {
    address: adminAddress,
    maxConnections: integer({
      minimum: 1,
      maximum: 10000,
      default: MAX_ADMIN_CONNECTIONS,
      description: 'Connections held at once (a scraper needs one or ' + 'two); further ones are closed at accept and logged.',
    }),
  }),
  vsock: refine(
    object('How vsock addresses are opened.', {
      emulationDir: file(
        'Emulate vsock with Unix sockets <dir>/<cid>_<port>.sock (development, tests). Also ENCLAVER_VSOCK_EMULATION_DIR.',
        'directory',
      ),
      cid: integer({
        minimum: 1,
        maximum: 4294967294,
        description: "This side's CID under emulation (default 3 on the outer, 16 in the enclave). Not 2 (the hypervisor host).",
      }),
      parentCid: describedAs(
        integer({
          minimum: 1,
          maximum: 4294967294,
          description:
            'Inner: the CID the inner dials for its channels to the outer (status, logs, egress relay, audit, IMDS, clock). 3 on Nitro; 1 on a vsock loopback transport (tests in a VM). Also ENCLAVER_VSOCK_PARENT_CID.',
        }),
        { default: 3 },
      ),
    }),
    (v, p, ctx) => {
      if (ctx.role === 'outer' && v.parentCid !== undefined)
        ctx.problem(
          [...p, 'parent_cid'],
          '`vsock.parent_cid` belongs to the inner side (the outer is the parent); the outer names the enclave with `enclave.cid`',
        );
      if (v.cid === VSOCK_CID_HOST) ctx.problem([...p, 'cid'], CID_HOST_REFUSED);
      if (v.parentCid === VSOCK_CID_HOST) ctx.problem([...p, 'parent_cid'], CID_HOST_REFUSED);
      return v;
    },
  ),
  shutdown: object('Graceful shutdown on SIGTERM/SIGINT.', {
    drainTimeoutMs: at(
      'drain_timeout',
      duration('After listeners stop accepting, wait this long for open connections to finish before ' + 'closing them.', '15s'),
    ),
  }),
};

const PCR_INDEX = '^([0-9]|[12][0-9]|3[01])$';

const bootstrapSpec = object(
  "Inner only: what the inner does as the enclave's entrypoint before any listener opens: bring lo up, seed the kernel RNG from the NSM, reap orphans and forward signals (PID-1 duties), keep the clock in step with the parent's. A failed step stops the inner.",
  {
    mode: oneOfValues(['auto', 'on', 'off'], {
      default: 'auto',
      description: 'auto: on when the inner is PID 1 or /dev/nsm exists (inside Nitro); ENCLAVER_BOOTSTRAP=on|off decides for auto.',
    }),
    clockSyncIntervalMs: at(
      'clock_sync_interval',
      duration(
        "How often the enclave's clock is compared with the parent's (vsock 17006) and stepped when off by more than 250 ms; 0s disables it.",
        '1m',
      ),
    ),
    clockMaxStepMs: at(
      'clock_max_step',
      duration(
        'Largest single clock step: the parent is untrusted, so a lying parent can only drag the clock this far per sync (real drift is seconds a week).',
        '5s',
      ),
    ),
  },
);

/** A program and its arguments: never empty, so the program is always there to name. */
export type CommandLine = readonly [program: string, ...args: string[]];

const appCommand = custom<CommandLine | undefined>(
  {
    description: 'Program and arguments (a list), or one string run by /bin/sh -c.',
    oneOf: [
      { type: 'string', minLength: 1 },
      { type: 'array', minItems: 1, items: { type: 'string' } },
    ],
  },
  (raw) => {
    if (typeof raw === 'string' && raw.length > 0) return ['/bin/sh', '-c', raw];
    if (!Array.isArray(raw)) return undefined;
    const [program, ...args] = raw as unknown[];
    const strings = args.filter((a): a is string => typeof a === 'string');
    return typeof program === 'string' && strings.length === args.length ? [program, ...strings] : undefined;
  },
);

const appSpec = refine(
  object(
    'Inner only: the application the inner proxy starts and supervises. It receives HTTP_PROXY, HTTPS_PROXY, ' +
      'ALL_PROXY and NO_PROXY (and lower-case twins) pointing at the egress listener.',
    {
      argv: at('command', required(appCommand)),
      env: record(string({ description: 'Value.' }), { description: 'Extra environment variables for the app.' }),
      cwd: file("Working directory of the app (default: the config file's directory).", 'directory'),
      stopTimeoutMs: at('stop_timeout', duration('After forwarding SIGTERM, wait this long before SIGKILL.', '10s')),
    },
  ),
  (app, _p, ctx) => ({ ...app, cwd: app.cwd ?? path.resolve(ctx.configDir) }),
);

const innerFields = {
  logs: object(
    "Inner only: the enclave's log lines (the inner's own and the app's stdout/stderr) carried to the outer over vsock " +
      '17001, which writes them to its stdout. Inside Nitro, stdout only reaches a debug-mode console.',
    {
      forward: describedAs(boolean({ description: 'Forward log lines to the outer.' }), {
        default: 'on with real vsock, off under ' + 'emulation (the local pair shares one terminal)',
      }),
      bufferBytes: integer({
        minimum: 4096,
        default: 1048576,
        description:
          'Lines kept while the outer is unreachable; past it the oldest ' + 'are dropped and the drop is reported in the stream.',
      }),
    },
  ),
  app: optional(appSpec),
  bootstrap: bootstrapSpec,
  audit: innerAuditSpec,
  nsm: object('Inner only: the Nitro Secure Module that signs attestation documents.', {
    mode: oneOfValues(['auto', 'device', 'simulator'], {
      default: 'auto',
      description:
        'auto: /dev/nsm when present, else the simulator ' +
        '(announced at startup). device: fail without /dev/nsm. simulator: always simulate.',
    }),
    simulator: object('The simulator used off Nitro: documents signed by a throw-away CA generated at startup.', {
      pcrs: refine(
        record(string({ pattern: '^([0-9a-fA-F]{96})$', description: 'SHA-384.' }), {
          propertyNames: { pattern: PCR_INDEX },
          description: 'PCR index → 96 hex digits (SHA-384); unset PCRs 0-15 read as zeros.',
        }),
        (pcrs) =>
          new Map(
            Object.entries(pcrs)
              .filter(([i, hex]) => new RegExp(PCR_INDEX).test(i) && /^[0-9a-fA-F]{96}$/.test(hex))
              .map(([i, hex]) => [Number(i), Buffer.from(hex, 'hex')]),
          ),
      ),
      rootCertificatePath: file('Write the throw-away root certificate (PEM) here at startup, for verifiers to pin.', 'write'),
    }),
  }),
  aws: object('Inner only: how the KMS proxy and IMDS endpoint reach AWS.', {
    region: string({
      pattern: '^[a-z0-9-]+$',
      description: 'AWS region (default: asked of IMDS through the relay). Also given to the app ' + 'as AWS_REGION.',
    }),
    credentialRefreshMarginMs: at(
      'credential_refresh_margin',
      duration('Refresh the relayed role credentials this long before their ' + 'Expiration.', '5m'),
    ),
  }),
};

/** IMDS grants session tokens of 1s to 6h. */
const IMDS_TOKEN_TTL_MS = { min: 1000, max: 6 * 3_600_000 };

const imdsRelaySpec = optional(
  refine(
    object(
      "Outer only: relay the instance metadata the enclave's SDKs need (role credentials, " +
        'region, identity document) over vsock port 17004, speaking IMDSv2 to the host. Nothing else is relayed.',
      {
        upstream: string({ pattern: '^http://', default: 'http://169.254.169.254', description: 'The instance metadata service.' }),
        tokenTtlMs: at(
          'token_ttl',
          duration('TTL asked for IMDSv2 session tokens (1s-6h); a token is reused until shortly before it expires.', '6h'),
        ),
        timeoutMs: at('timeout', duration('Give up on an IMDS request after this long.', '2s')),
      },
    ),
    ({ tokenTtlMs, ...rest }, p, ctx) => {
      if (tokenTtlMs < IMDS_TOKEN_TTL_MS.min || tokenTtlMs > IMDS_TOKEN_TTL_MS.max)
        ctx.problem([...p, 'token_ttl'], 'IMDS grants session ' + 'tokens of 1s to 6h');
      return { ...rest, tokenTtlSeconds: Math.round(tokenTtlMs / 1000) };
    },
  ),
);

const LAUNCH_ONLY_KEYS = { cpuCount: 'cpu_count', memoryMib: 'memory_mib', debugMode: 'debug_mode' } as const;

const enclaveSpec = refine(
  object('Outer only: the enclave this outer proxy serves, and (with `eif`) how it launches and supervises it with nitro-cli.', {
    cid: integer({
      minimum: 1,
      maximum: 4294967294,
      default: 16,
      description: "The enclave's CID (1: the vsock loopback transport, for tests in a VM; never 2, the hypervisor host).",
    }),
    exitWithApp: boolean({ default: true, description: "Exit when the enclave reports that its app exited, with the app's exit code." }),
    eif: file(
      "Launch this enclave image with `nitro-cli run-enclave` (found on PATH) and supervise it: console in debug mode, terminate on stop, exit with the app's code. Without it the enclave is started by someone else.",
    ),
    cpuCount: describedAs(
      integer({
        minimum: 1,
        description: "With `eif`: vCPUs for the enclave (from the allocator's pool, /etc/nitro_enclaves/allocator.yaml).",
      }),
      { default: 2 },
    ),
    memoryMib: describedAs(
      integer({
        minimum: 64,
        description:
          "With `eif`: memory for the enclave in MiB (hugepages reserved by the allocator); at least the EIF's size plus what the app needs.",
      }),
      { default: 1024 },
    ),
    debugMode: describedAs(
      boolean({
        description:
          "With `eif`: launch in debug mode and stream the enclave's console into the logs. Debug-mode attestation documents carry all-zero PCRs: never for production.",
      }),
      { default: false },
    ),
    readyTimeoutMs: at(
      'ready_timeout',
      duration('With `eif`: fail when the inner proxy has not reported on the status channel this long after the launch.', '5m'),
    ),
    watchIntervalMs: at(
      'watch_interval',
      duration('With `eif`: how often `nitro-cli describe-enclaves` is asked whether the enclave still runs.', '5s'),
    ),
  }),
  ({ cid, exitWithApp, eif, cpuCount, memoryMib, debugMode, readyTimeoutMs, watchIntervalMs }, p, ctx) => {
    if (cid === VSOCK_CID_HOST) ctx.problem([...p, 'cid'], CID_HOST_REFUSED);
    if (eif === undefined) {
      for (const [name, key] of Object.entries(LAUNCH_ONLY_KEYS)) {
        if ({ cpuCount, memoryMib, debugMode }[name] !== undefined)
          ctx.problem([...p, key], `\`${key}\` only applies when the outer launches the enclave: set \`enclave.eif\` too (or drop it)`);
      }
      return { cid, exitWithApp, launch: undefined };
    }
    return {
      cid,
      exitWithApp,
      launch: {
        eif,
        cpuCount: cpuCount ?? 2,
        memoryMib: memoryMib ?? 1024,
        debugMode: debugMode ?? false,
        readyTimeoutMs,
        watchIntervalMs,
      },
    };
  },
);

const outerFields = {
  enclave: enclaveSpec,
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
  bootstrap: '`bootstrap` belongs to the inner side (it prepares the enclave)',
  egress_relay: '`egress_relay` belongs to the outer side (the inner has `egress` listeners)',
  imds_relay: "`imds_relay` belongs to the outer side (it talks to the host's IMDS)",
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
  bootstrap: innerFields.bootstrap,
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
  if (!common || !sections)
    return { role, source: source.file, clusters, listeners: [], ...(common ?? {}), ...(sections ?? {}) } as unknown as SideConfig;
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
