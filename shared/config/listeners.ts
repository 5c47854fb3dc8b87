/**
 * The `listeners` section. A listener has exactly one kind, chosen by which key it sets
 * (`cluster`, `egress`, `kms`, `imds`, `attestation_api`), and is read into the discriminated
 * union `ListenerConfig` (`kind: 'tcp_proxy' | 'egress' | …`), so that the code using it switches on
 * `kind` and never has to guess which optional fields are set.
 *
 * Adding a kind: its key and spec in `KINDS` below, its arm in `ListenerConfig`, and the handler in
 * the side's listeners.ts (whose switch is exhaustive, so the compiler points at it).
 */
import { formatAddress, isLoopbackHost } from '../transport/address.js';
import { NAME_PATTERN, notReserved, proxyProtocolFlag, type ClusterConfig } from './clusters.js';
import { egressListenerSpec, type EgressListenerConfig } from './egress.js';
import type { PathSegment } from './source.js';
import {
  address,
  at,
  boolean,
  custom,
  duration,
  file,
  fillFields,
  integer,
  isObject,
  list,
  object,
  objectSchema,
  optional,
  readFields,
  readFieldsPartial,
  record,
  refine,
  required,
  string,
  Unreadable,
  type ObjectOf,
  type ReadContext,
  type Spec,
  type Static,
} from './spec.js';

const kmsEndpointFields = {
  endpoint: string({
    pattern: '^https?://',
    description: 'KMS endpoint URL for every region (default https://kms.<region>.amazonaws.com).',
  }),
  endpoints: record(string({ description: 'KMS endpoint URL or HOST[:PORT].' }), {
    description: 'KMS endpoint per region: region → URL ' + "or HOST[:PORT] (Enclaver's kms_proxy.endpoints).",
  }),
  egressProxy: string({
    pattern: '^http://',
    description:
      'HTTP proxy the KMS connection is tunnelled through with CONNECT, normally the ' +
      'inner egress listener (http://127.0.0.1:10000), so the egress allowlist governs KMS too. Direct when absent.',
  }),
  caFile: file('Extra PEM CA trusted for the KMS endpoint (a private endpoint or a test emulator).'),
};

/** Longest reuse of one attestation document by the KMS proxy. */
export const MAX_ATTESTATION_REUSE_MS = 5 * 60_000;

function oneEndpointForm<T extends { endpoint: string | undefined; endpoints: Record<string, string> }>(
  k: T,
  p: readonly PathSegment[],
  ctx: ReadContext,
): T {
  if (k.endpoint !== undefined && Object.keys(k.endpoints).length > 0)
    ctx.problem(p, 'set `endpoint` (every region) or `endpoints` (per ' + 'region), not both');
  return k;
}

const kmsEndpointSpec = refine(object('Where and how to reach KMS (as for a `kms` listener).', kmsEndpointFields), (k, p, ctx) =>
  oneEndpointForm(k, p, ctx),
);
export type KmsEndpointConfig = Static<typeof kmsEndpointSpec>;

const kmsListenerSpec = refine(
  object(
    'Inner only: the attested KMS proxy (loopback HTTP; the app gets AWS_ENDPOINT_URL_KMS). Decrypt, ' +
      "GenerateDataKey, GenerateDataKeyPair, GenerateRandom and DeriveSharedSecret get this enclave's attestation as `Recipient` and come " +
      "back with their plaintext; every other action passes through. Requests are re-signed with the instance role's credentials (IMDS " +
      'relay).',
    {
      ...kmsEndpointFields,
      attestationReuseMs: at(
        'attestation_reuse',
        duration(
          'Reuse an attestation document for this long instead of asking the NSM on every ' + 'call (at most 5m); 0 asks every time.',
          '0s',
        ),
      ),
      maxBodyBytes: integer({
        minimum: 1024,
        maximum: 1048576,
        default: 65536,
        description: 'Largest request body accepted; larger ones get ' + 'a 400.',
      }),
    },
  ),
  (k, p, ctx) => {
    if (k.attestationReuseMs > MAX_ATTESTATION_REUSE_MS)
      ctx.problem([...p, 'attestation_reuse'], 'attestation documents may be reused for ' + 'at most 5m');
    return oneEndpointForm(k, p, ctx);
  },
);
export type KmsListenerConfig = Static<typeof kmsListenerSpec>;

/** A PEM file, or a key sealed with KMS and decrypted inside the enclave at startup. */
export type TlsPrivateKey = { file: string } | { kmsCiphertext: string; kms: KmsEndpointConfig };

const sealedKeyFields = {
  kmsCiphertext: required(file('File holding the KMS CiphertextBlob of the PEM (or DER PKCS#8) key, binary or base64.')),
  kms: kmsEndpointSpec,
};

const privateKeySpec = custom<TlsPrivateKey | undefined>(
  {
    description:
      'The private key: a PEM file, or `{kms_ciphertext: FILE}` — a key sealed with KMS (`aws kms encrypt`), decrypted at ' +
      "startup by an attested Decrypt so that the plaintext key exists only in the enclave's memory.",
    oneOf: [{ type: 'string' }, objectSchema('A key sealed with KMS.', sealedKeyFields)],
  },
  (raw, p, ctx) => {
    if (typeof raw === 'string') return { file: required(file('')).read(raw, p, ctx) };
    if (!isObject(raw)) return undefined;
    const { value, complete } = readFieldsPartial(sealedKeyFields, raw, p, ctx);
    if (!complete || value.kmsCiphertext === undefined || value.kms === undefined) throw new Unreadable();
    return { kmsCiphertext: value.kmsCiphertext, kms: value.kms };
  },
  (raw, ctx) => (isObject(raw) ? fillFields(sealedKeyFields, raw, ctx) : file('').fill(raw, ctx)),
);

/** The word that asks for a certificate made inside the enclave instead of a file. */
export const ATTESTED_CERTIFICATE = 'attested';

/**
 * TLS on an inner listener: a certificate file with its key (a PEM file or a KMS-sealed one), or
 * `certificate: attested` — a key pair generated inside the enclave at startup and a self-signed
 * certificate for `names`, bound to the attestation (docs/http-ingress.md).
 */
export type TlsConfig =
  { source: 'files'; certificate: string; privateKey: TlsPrivateKey } | { source: 'attested'; names: string[]; embedAttestation: boolean };

const tlsFields = {
  certificate: required(
    string({
      description:
        'PEM certificate chain file, or `attested`: a key pair generated inside the enclave at startup (never stored, never leaving it) and a self-signed certificate for `names`, whose key attestation documents served at /.well-known/enclave-attestation bind (HTTP listeners only).',
    }),
  ),
  privateKey: privateKeySpec,
  names: list(required(string({ description: 'A DNS name or IP address.' })), {
    description: 'With `certificate: attested`: the names (subjectAltName) of the generated certificate.',
  }),
  embedAttestation: boolean({
    default: false,
    description:
      'With `certificate: attested`: also carry an attestation document binding the key inside the certificate (a non-critical ' +
      'extension), so that clients verify it during the handshake without fetching one; the certificate is re-issued with a ' +
      "fresh document before the document's signing certificate expires.",
  }),
};

const tlsSpec = optional(
  custom<TlsConfig>(
    objectSchema('Terminate TLS on this listener (inside the enclave) before forwarding plaintext.', tlsFields),
    (raw, p, ctx) => {
      const doc = isObject(raw) ? raw : {};
      if (doc.certificate === ATTESTED_CERTIFICATE) {
        if (doc.private_key !== undefined)
          ctx.problem([...p, 'private_key'], "an attested certificate's key is generated inside the enclave: remove `private_key`");
        const names = tlsFields.names.read(doc.names, [...p, 'names'], ctx);
        if (names.length === 0)
          ctx.problem([...p, 'names'], 'an attested certificate needs `names` (the DNS names or IP addresses clients connect to)');
        const embedAttestation = tlsFields.embedAttestation.read(doc.embed_attestation, [...p, 'embed_attestation'], ctx);
        return { source: 'attested', names, embedAttestation };
      }
      if (doc.names !== undefined)
        ctx.problem([...p, 'names'], '`names` is for `certificate: attested`; a certificate file has its own names');
      if (doc.embed_attestation !== undefined)
        ctx.problem(
          [...p, 'embed_attestation'],
          '`embed_attestation` is for `certificate: attested`: only a certificate made inside the enclave can carry its attestation',
        );
      const certificate = required(file('')).read(doc.certificate, [...p, 'certificate'], ctx);
      if (doc.private_key === undefined) {
        ctx.problem(p, 'a certificate file needs `private_key` (a PEM file or {kms_ciphertext: FILE}); or use `certificate: attested`');
        throw new Unreadable();
      }
      const privateKey = privateKeySpec.read(doc.private_key, [...p, 'private_key'], ctx);
      if (privateKey === undefined) throw new Unreadable();
      return { source: 'files', certificate, privateKey };
    },
    (raw, ctx) => {
      if (!isObject(raw) || raw.certificate === ATTESTED_CERTIFICATE) return raw;
      return {
        ...raw,
        certificate: file('').fill(raw.certificate, ctx),
        ...(raw.private_key !== undefined ? { private_key: privateKeySpec.fill(raw.private_key, ctx) } : {}),
      };
    },
  ),
);

const httpRouteSpec = object('One route: requests whose host and path match go to `cluster` (first match wins).', {
  name: required(string({ pattern: NAME_PATTERN, description: 'Route name for the access log and the metrics.' })),
  hosts: list(required(string({ description: 'A host glob, e.g. *.example.com.' })), {
    description: 'Host globs (minimatch, case-insensitive, without the port); empty: any host.',
  }),
  paths: list(required(string({ pattern: '^/', description: 'A path glob, e.g. /v1/**.' })), {
    description:
      'Path globs (minimatch, against the path without the query; `/v1/**` needs a segment after `/v1/`, `/v1{,/**}` takes `/v1` too); empty: any path.',
  }),
  cluster: required(string({ description: 'The cluster these requests go to.' })),
});

const httpFields = {
  routes: list(httpRouteSpec, { description: 'Routes by host and path, tried in order.' }),
  defaultCluster: string({ description: 'Where requests no route matches go; without it they get 404.' }),
  maxHeaderBytes: integer({
    minimum: 1024,
    maximum: 1048576,
    default: 16384,
    description: 'Largest request head (request line and headers) in bytes; larger ones get 431.',
  }),
  maxHeaders: integer({ minimum: 1, maximum: 10000, default: 100, description: 'Most header fields in a request; more get 431.' }),
  headTimeoutMs: at(
    'head_timeout',
    duration('From the first byte of a request to the end of its head; slower clients get 408 and are closed.', '10s'),
  ),
  keepAliveTimeoutMs: at('keep_alive_timeout', duration('Close a kept-alive client connection after this long without a request.', '5s')),
  http2: boolean({
    default: false,
    description: 'On a TLS listener, offer HTTP/2 (ALPN h2); every request still reaches the app as HTTP/1.1.',
  }),
};

/** An `http` listener's settings, with the clusters it names resolved. */
export type HttpListenerConfig = Omit<ObjectOf<typeof httpFields>, 'routes' | 'defaultCluster'> & {
  routes: { name: string; hosts: string[]; paths: string[]; cluster: ClusterConfig }[];
  defaultCluster: ClusterConfig | undefined;
};

const httpListenerSpec = custom<HttpListenerConfig>(
  objectSchema(
    'Inner only: HTTP ingress — parse HTTP/1.1 (and HTTP/2 on TLS), route by host and path to clusters over kept-alive connections, set X-Forwarded-*/Forwarded from the real client, carry WebSocket and other Upgrades, refuse smuggling shapes, and log one line per request (docs/http-ingress.md).',
    httpFields,
  ),
  (raw, p, ctx) => {
    const v = readFields(httpFields, raw, p, ctx);
    const routes = v.routes.map((r, i) => ({ ...r, cluster: clusterRef(r.cluster, [...p, 'routes', i, 'cluster'], ctx) }));
    const defaultCluster = v.defaultCluster === undefined ? undefined : clusterRef(v.defaultCluster, [...p, 'default_cluster'], ctx);
    const names = new Set<string>();
    v.routes.forEach((r, i) => {
      if (names.has(r.name)) ctx.problem([...p, 'routes', i, 'name'], `duplicate route name "${r.name}"`);
      if (r.name === 'default' || r.name === 'attestation')
        ctx.problem([...p, 'routes', i, 'name'], `"${r.name}" is the name of a built-in route; choose another`);
      names.add(r.name);
    });
    if (routes.length === 0 && defaultCluster === undefined && isObject(raw))
      ctx.problem(p, 'an http listener needs `routes` or a `default_cluster` (or both)');
    return { ...v, routes, defaultCluster };
  },
  (raw, ctx) => fillFields(httpFields, raw, ctx),
);

const commonFields = {
  name: required(string({ pattern: NAME_PATTERN, description: 'Unique name; used in logs, metrics labels and audit records.' })),
  address: refine(required(address('Address to listen on.')), notReserved('listener')),
  expectProxyProtocol: proxyProtocolFlag(
    'Expect a PROXY protocol v2 header from each peer (the outer sends one on the vsock leg) and ' +
      'take the client address from it. Connections without one are refused.',
  ),
  maxConnections: integer({
    minimum: 1,
    default: 10000,
    description: 'Connections held at once; further ones are closed at accept and ' + 'counted as rejected.',
  }),
  idleTimeoutMs: at(
    'idle_timeout',
    duration('Close a proxied connection after this long with no byte in either direction; 0 disables.', '1h'),
  ),
  accessLog: boolean({
    default: false,
    description: 'Log one line per connection at info level (address, bytes, duration, how it ended).',
  }),
};
type ListenerCommon = ObjectOf<typeof commonFields>;

/** Each kind: the document key that selects it, and the spec of what that key holds. */
const KINDS = {
  tcp_proxy: { key: 'cluster', spec: string({ description: 'TCP proxy: forward every connection, byte for byte, to this cluster.' }) },
  egress: { key: 'egress', spec: egressListenerSpec },
  kms: { key: 'kms', spec: kmsListenerSpec },
  imds: {
    key: 'imds',
    spec: object(
      'Inner only: an IMDSv2-compatible endpoint for the app (it gets AWS_EC2_METADATA_SERVICE_ENDPOINT): session tokens, the ' +
        'role and its credentials (relayed and refreshed before Expiration), the region and the identity document. Other paths are refused.',
      {},
    ),
  },
  http: { key: 'http', spec: httpListenerSpec },
  attestation_api: {
    key: 'attestation_api',
    spec: object(
      'Inner only: Enclaver-compatible POST /v1/attestation with optional JSON {nonce, user_data (base64), public_key (PEM)}; ' +
        'answers the COSE_Sign1 document as application/cbor, or {"document": base64} with Accept: application/json or ?format=json.',
      {},
    ),
  },
} as const;
export type ListenerKind = keyof typeof KINDS;

export type ListenerConfig = ListenerCommon &
  (
    | { kind: 'tcp_proxy'; cluster: ClusterConfig; tls: TlsConfig | undefined }
    | { kind: 'http'; http: HttpListenerConfig; tls: TlsConfig | undefined }
    | { kind: 'egress'; egress: EgressListenerConfig }
    | { kind: 'kms'; kms: KmsListenerConfig }
    | { kind: 'imds' }
    | { kind: 'attestation_api' }
  );
export type ListenerOf<K extends ListenerKind> = Extract<ListenerConfig, { kind: K }>;

/** Kinds that serve the app inside the enclave: inner side, loopback only. */
const INNER_ONLY: readonly ListenerKind[] = ['egress', 'kms', 'imds', 'attestation_api'];
const KIND_NAMES = Object.keys(KINDS) as ListenerKind[];

const listenerSchema = {
  ...objectSchema(
    "Where connections are accepted and what is done with them. A listener has exactly one kind: `cluster` (TCP proxy), `http` (HTTP ingress), `egress` (the app's egress proxy), `kms` (KMS proxy), `imds` (instance metadata for the app) or `attestation_api`.",
    {
      name: commonFields.name,
      address: commonFields.address,
      cluster: KINDS.tcp_proxy.spec,
      egress: KINDS.egress.spec,
      kms: KINDS.kms.spec,
      imds: KINDS.imds.spec,
      attestationApi: KINDS.attestation_api.spec,
      http: KINDS.http.spec,
      expectProxyProtocol: commonFields.expectProxyProtocol,
      maxConnections: commonFields.maxConnections,
      idleTimeoutMs: commonFields.idleTimeoutMs,
      accessLog: commonFields.accessLog,
      tls: tlsSpec,
    },
  ),
};

function kindChecks(
  doc: Record<string, unknown>,
  common: Partial<ListenerCommon>,
  p: readonly PathSegment[],
  ctx: ReadContext,
): ListenerKind[] {
  const kinds = KIND_NAMES.filter((k) => doc[KINDS[k].key] !== undefined);
  if (kinds.length === 0)
    ctx.problem(p, 'a listener needs a kind: set `cluster` (TCP proxy), `http`, `egress`, `kms`, `imds` or `attestation_api`');
  if (kinds.length > 1) ctx.problem(p, `a listener has exactly one kind, this one has ${kinds.map((k) => KINDS[k].key).join(' and ')}`);
  for (const kind of kinds.filter((k) => INNER_ONLY.includes(k))) {
    const key = KINDS[kind].key;
    if (ctx.role !== 'inner') ctx.problem([...p, key], `\`${key}\` listeners run inside the enclave: only the inner side has them`);
    // These serve the app only: anything beyond loopback would hand credentials and plaintexts out.
    const a = common.address;
    if (a && !(a.kind === 'unix' || (a.kind === 'tcp' && isLoopbackHost(a.host))))
      ctx.problem([...p, 'address'], `a ${key} listener must listen on loopback (tcp://127.0.0.1:PORT) or a unix:// socket`);
  }
  // The HTTP kind parses what the enclave receives: it belongs inside, but listens where the outer reaches it.
  if (kinds.includes('http') && ctx.role !== 'inner')
    ctx.problem([...p, 'http'], '`http` listeners run inside the enclave: only the inner side has them');
  if (doc.tls !== undefined) {
    if (ctx.role !== 'inner') ctx.problem([...p, 'tls'], 'TLS is terminated inside the enclave: `tls` is only allowed on inner listeners');
    else if (kinds.length === 1 && kinds[0] !== 'tcp_proxy' && kinds[0] !== 'http')
      ctx.problem([...p, 'tls'], '`tls` applies to TCP proxy (`cluster`) and `http` listeners');
    else if (kinds[0] === 'tcp_proxy' && isObject(doc.tls) && doc.tls.certificate === ATTESTED_CERTIFICATE) {
      ctx.problem(
        [...p, 'tls', 'certificate'],
        'an attested certificate is served with its attestation endpoint, which needs an `http` listener',
      );
    }
  }
  return kinds;
}

function clusterRef(name: string | undefined, p: readonly PathSegment[], ctx: ReadContext): ClusterConfig {
  const cluster = name === undefined ? undefined : ctx.clusters.get(name);
  if (cluster) return cluster;
  if (name !== undefined) {
    const defined = ctx.clusters.size ? ` (defined: ${[...ctx.clusters.keys()].join(', ')})` : ' (no clusters are defined)';
    ctx.problem(p, `unknown cluster "${name}"${defined}`);
  }
  throw new Unreadable();
}

function readListener(raw: unknown, p: readonly PathSegment[], ctx: ReadContext): ListenerConfig {
  const doc = isObject(raw) ? raw : {};
  const { value: common, complete } = readFieldsPartial(commonFields, raw, p, ctx);
  if (typeof doc.name === 'string' && ctx.claim('listener name', doc.name, doc.name) !== undefined) {
    ctx.problem([...p, 'name'], `duplicate listener name "${doc.name}"`);
  }
  // Port 0 asks the kernel for a free port: two of those never collide.
  if (common.address && !(common.address.kind === 'tcp' && common.address.port === 0)) {
    const key = formatAddress(common.address);
    const other = ctx.claim('listen address', key, String(doc.name));
    if (other !== undefined) ctx.problem([...p, 'address'], `${key} is already used by listener "${other}"`);
  }
  const kinds = kindChecks(doc, common, p, ctx);
  // Every kind present is read, so that its problems are reported too.
  const at = (key: string): [unknown, PathSegment[]] => [doc[key], [...p, key]];
  const payloads = kinds.map((kind): ListenerConfig => {
    const base = common as ListenerCommon;
    switch (kind) {
      case 'tcp_proxy':
        return {
          ...base,
          kind,
          cluster: clusterRef(KINDS.tcp_proxy.spec.read(...at('cluster'), ctx), [...p, 'cluster'], ctx),
          tls: tlsSpec.read(...at('tls'), ctx),
        };
      case 'http':
        return { ...base, kind, http: KINDS.http.spec.read(...at('http'), ctx), tls: tlsSpec.read(...at('tls'), ctx) };
      case 'egress':
        return { ...base, kind, egress: KINDS.egress.spec.read(...at('egress'), ctx) };
      case 'kms':
        return { ...base, kind, kms: KINDS.kms.spec.read(...at('kms'), ctx) };
      case 'imds':
        KINDS.imds.spec.read(...at('imds'), ctx);
        return { ...base, kind };
      case 'attestation_api':
        KINDS.attestation_api.spec.read(...at('attestation_api'), ctx);
        return { ...base, kind };
    }
  });
  const [only] = payloads;
  if (!complete || payloads.length !== 1 || !only) throw new Unreadable();
  return only;
}

const listenerSpec: Spec<ListenerConfig> = {
  schema: listenerSchema,
  read: readListener,
  fill(raw, ctx) {
    const doc = isObject(raw) ? raw : {};
    return {
      ...doc,
      ...fillFields(commonFields, raw, ctx),
      ...(doc.tls !== undefined ? { tls: tlsSpec.fill(doc.tls, ctx) } : {}),
      ...Object.fromEntries(
        KIND_NAMES.filter((k) => doc[KINDS[k].key] !== undefined).map((k) => [KINDS[k].key, KINDS[k].spec.fill(doc[KINDS[k].key], ctx)]),
      ),
    };
  },
};

export const listenersSpec = list(listenerSpec, { default: [], description: 'Listeners of this side.' });
