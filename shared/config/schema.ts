/**
 * The JSON Schema of proxy.yaml. It is the single source of truth for what a config may say:
 * the loader validates with it, `enclaver-proxy schema` prints it, schema/enclaver-proxy.schema.json
 * publishes it for editors, and docs/config.md is generated from it (a test fails when stale).
 *
 * Every property carries a description (and its default), because the docs are made from them.
 */
import { DURATION_PATTERN } from '../util/duration.js';
import { auditSchema, egressListenerSchema, egressRelaySchema } from './egress.js';

const duration = (description: string, def: string) => ({
  description: `${description} Duration such as 250ms, 5s, 2m, 1h (or milliseconds as a number).`,
  type: ['string', 'integer'],
  pattern: DURATION_PATTERN,
  minimum: 0,
  default: def,
});

const address = (description: string) => ({
  type: 'string',
  description: `${description} URI: tcp://HOST:PORT, unix:///PATH or vsock://CID:PORT (CID: a number, any, parent).`,
});

const kmsListener = {
  type: 'object',
  additionalProperties: false,
  description: 'Inner only: the attested KMS proxy (loopback HTTP; the app gets AWS_ENDPOINT_URL_KMS). Decrypt, GenerateDataKey, GenerateDataKeyPair, GenerateRandom and DeriveSharedSecret get this enclave\'s attestation as `Recipient` and come back with their plaintext; every other action passes through. Requests are re-signed with the instance role\'s credentials (IMDS relay).',
  properties: {
    endpoint: { type: 'string', pattern: '^https?://', description: 'KMS endpoint URL for every region (default https://kms.<region>.amazonaws.com).' },
    endpoints: { type: 'object', additionalProperties: { type: 'string' }, description: 'KMS endpoint per region: region → URL or HOST[:PORT] (Enclaver\'s kms_proxy.endpoints).' },
    egress_proxy: { type: 'string', pattern: '^http://', description: 'HTTP proxy the KMS connection is tunnelled through with CONNECT, normally the inner egress listener (http://127.0.0.1:10000), so the egress allowlist governs KMS too. Direct when absent.' },
    ca_file: { type: 'string', description: 'Extra PEM CA trusted for the KMS endpoint (a private endpoint or a test emulator).' },
    attestation_reuse: { ...duration('Reuse an attestation document for this long instead of asking the NSM on every call (at most 5m); 0 asks every time.', '0s') },
    max_body_bytes: { type: 'integer', minimum: 1024, maximum: 1048576, default: 65536, description: 'Largest request body accepted; larger ones get a 400.' },
  },
};

const listener = {
  type: 'object',
  description: 'Where connections are accepted and what is done with them. A listener has exactly one kind: `cluster` (TCP proxy), `egress` (the app\'s egress proxy), `kms` (KMS proxy), `imds` (instance metadata for the app) or `attestation_api`.',
  additionalProperties: false,
  required: ['name', 'address'],
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$', description: 'Unique name; used in logs, metrics labels and audit records.' },
    address: address('Address to listen on.'),
    cluster: { type: 'string', description: 'TCP proxy: forward every connection, byte for byte, to this cluster.' },
    egress: egressListenerSchema,
    kms: kmsListener,
    imds: {
      type: 'object', additionalProperties: false, properties: {},
      description: 'Inner only: an IMDSv2-compatible endpoint for the app (it gets AWS_EC2_METADATA_SERVICE_ENDPOINT): session tokens, the role and its credentials (relayed and refreshed before Expiration), the region and the identity document. Other paths are refused.',
    },
    attestation_api: {
      type: 'object', additionalProperties: false, properties: {},
      description: 'Inner only: Enclaver-compatible POST /v1/attestation with optional JSON {nonce, user_data (base64), public_key (PEM)}; answers the COSE_Sign1 document as application/cbor, or {"document": base64} with Accept: application/json or ?format=json.',
    },
    proxy_protocol: { type: 'string', enum: ['v2'], description: 'Expect a PROXY protocol v2 header from each peer (the outer sends one on the vsock leg) and take the client address from it. Connections without one are refused.' },
    max_connections: { type: 'integer', minimum: 1, default: 10000, description: 'Connections held at once; further ones are closed at accept and counted as rejected.' },
    idle_timeout: duration('Close a proxied connection after this long with no byte in either direction; 0 disables.', '1h'),
    access_log: { type: 'boolean', default: false, description: 'Log one line per connection at info level (address, bytes, duration, how it ended).' },
    tls: {
      type: 'object',
      additionalProperties: false,
      required: ['certificate', 'private_key'],
      description: 'Terminate TLS on this listener (inside the enclave) before forwarding plaintext to the cluster.',
      properties: {
        certificate: { type: 'string', description: 'PEM certificate chain file.' },
        private_key: {
          description: 'The private key: a PEM file, or `{kms_ciphertext: FILE}` — a key sealed with KMS (`aws kms encrypt`), decrypted at startup by an attested Decrypt so that the plaintext key exists only in the enclave\'s memory.',
          oneOf: [
            { type: 'string' },
            {
              type: 'object',
              additionalProperties: false,
              required: ['kms_ciphertext'],
              properties: {
                kms_ciphertext: { type: 'string', description: 'File holding the KMS CiphertextBlob of the PEM (or DER PKCS#8) key, binary or base64.' },
                kms: {
                  type: 'object',
                  additionalProperties: false,
                  description: 'Where and how to reach KMS (as for a `kms` listener).',
                  properties: {
                    endpoint: kmsListener.properties.endpoint,
                    endpoints: kmsListener.properties.endpoints,
                    egress_proxy: kmsListener.properties.egress_proxy,
                    ca_file: kmsListener.properties.ca_file,
                  },
                },
              },
            },
          ],
        },
      },
    },
  },
};

const cluster = {
  type: 'object',
  description: 'A named group of upstream endpoints that listeners forward to.',
  additionalProperties: false,
  required: ['name', 'endpoints'],
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$', description: 'Unique name referenced by listeners.' },
    endpoints: { type: 'array', minItems: 1, items: address('Upstream address.'), description: 'Upstream addresses, tried in order until one accepts.' },
    connect_timeout: duration('Give up on an endpoint that has not accepted within this time.', '5s'),
    proxy_protocol: { type: 'string', enum: ['v2'], description: 'Send a PROXY protocol v2 header carrying the client address before the first byte.' },
  },
};

const side = {
  type: 'object',
  additionalProperties: false,
  properties: {
    admin: {
      type: 'object',
      additionalProperties: false,
      description: 'Admin endpoint: GET /live, /ready, /metrics (Prometheus).',
      properties: {
        address: { ...address('Admin listen address; loopback by default. null disables it.'), type: ['string', 'null'], default: 'tcp://127.0.0.1:9901 (inner), tcp://127.0.0.1:9902 (outer)' },
      },
    },
    vsock: {
      type: 'object',
      additionalProperties: false,
      description: 'How vsock addresses are opened.',
      properties: {
        emulation_dir: { type: 'string', description: 'Emulate vsock with Unix sockets <dir>/<cid>_<port>.sock (development, tests). Also ENCLAVER_VSOCK_EMULATION_DIR.' },
        cid: { type: 'integer', minimum: 1, maximum: 4294967294, description: 'This side\'s CID under emulation (default 3 on the outer, 16 in the enclave). Not 2 (the hypervisor host).' },
        parent_cid: { type: 'integer', minimum: 1, maximum: 4294967294, default: 3, description: 'Inner: the CID the inner dials for its channels to the outer (status, logs, egress relay, audit, IMDS). 3 on Nitro; 1 on a vsock loopback transport (tests in a VM). Also ENCLAVER_VSOCK_PARENT_CID.' },
      },
    },
    logs: {
      type: 'object',
      additionalProperties: false,
      description: 'Inner only: the enclave\'s log lines (the inner\'s own and the app\'s stdout/stderr) carried to the outer over vsock 17001, which writes them to its stdout. Inside Nitro, stdout only reaches a debug-mode console.',
      properties: {
        forward: { type: 'boolean', default: 'on with real vsock, off under emulation (the local pair shares one terminal)', description: 'Forward log lines to the outer.' },
        buffer_bytes: { type: 'integer', minimum: 4096, default: 1048576, description: 'Lines kept while the outer is unreachable; past it the oldest are dropped and the drop is reported in the stream.' },
      },
    },
    shutdown: {
      type: 'object',
      additionalProperties: false,
      description: 'Graceful shutdown on SIGTERM/SIGINT.',
      properties: {
        drain_timeout: duration('After listeners stop accepting, wait this long for open connections to finish before closing them.', '15s'),
      },
    },
    app: {
      type: 'object',
      additionalProperties: false,
      required: ['command'],
      description: 'Inner only: the application the inner proxy starts and supervises. It receives HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY (and lower-case twins) pointing at the egress listener.',
      properties: {
        command: {
          description: 'Program and arguments (a list), or one string run by /bin/sh -c.',
          oneOf: [{ type: 'string', minLength: 1 }, { type: 'array', minItems: 1, items: { type: 'string' } }],
        },
        env: { type: 'object', additionalProperties: { type: 'string' }, description: 'Extra environment variables for the app.' },
        cwd: { type: 'string', description: 'Working directory of the app (default: the config file\'s directory).' },
        stop_timeout: duration('After forwarding SIGTERM, wait this long before SIGKILL.', '10s'),
      },
    },
    enclave: {
      type: 'object',
      additionalProperties: false,
      description: 'Outer only: the enclave this outer proxy serves.',
      properties: {
        cid: { type: 'integer', minimum: 1, maximum: 4294967294, default: 16, description: 'The enclave\'s CID (1: the vsock loopback transport, for tests in a VM; never 2, the hypervisor host).' },
        exit_with_app: { type: 'boolean', default: true, description: 'Exit when the enclave reports that its app exited, with the app\'s exit code.' },
        eif: { type: 'string', description: 'Launch this enclave image with `nitro-cli run-enclave` (found on PATH) and supervise it: console in debug mode, terminate on stop, exit with the app\'s code. Without it the enclave is started by someone else.' },
        cpu_count: { type: 'integer', minimum: 1, default: 2, description: 'With `eif`: vCPUs for the enclave (from the allocator\'s pool, /etc/nitro_enclaves/allocator.yaml).' },
        memory_mib: { type: 'integer', minimum: 64, default: 1024, description: 'With `eif`: memory for the enclave in MiB (hugepages reserved by the allocator); at least the EIF\'s size plus what the app needs.' },
        debug_mode: { type: 'boolean', default: false, description: 'With `eif`: launch in debug mode and stream the enclave\'s console into the logs. Debug-mode attestation documents carry all-zero PCRs: never for production.' },
        ready_timeout: duration('With `eif`: fail when the inner proxy has not reported on the status channel this long after the launch.', '5m'),
        watch_interval: duration('With `eif`: how often `nitro-cli describe-enclaves` is asked whether the enclave still runs.', '5s'),
      },
    },
    bootstrap: {
      type: 'object',
      additionalProperties: false,
      description: 'Inner only: what the inner does as the enclave\'s entrypoint before any listener opens: bring lo up, seed the kernel RNG from the NSM, reap orphans and forward signals (PID-1 duties), keep the clock in step with the parent\'s. A failed step stops the inner.',
      properties: {
        mode: { type: 'string', enum: ['auto', 'on', 'off'], default: 'auto', description: 'auto: on when the inner is PID 1 or /dev/nsm exists (inside Nitro); ENCLAVER_BOOTSTRAP=on|off decides for auto.' },
        clock_sync_interval: duration('How often the enclave\'s clock is compared with the parent\'s (vsock 17006) and stepped when off by more than 250 ms; 0s disables it.', '1m'),
        clock_max_step: duration('Largest single clock step: the parent is untrusted, so a lying parent can only drag the clock this far per sync (real drift is seconds a week).', '5s'),
      },
    },
    egress_relay: egressRelaySchema,
    audit: auditSchema,
    nsm: {
      type: 'object',
      additionalProperties: false,
      description: 'Inner only: the Nitro Secure Module that signs attestation documents.',
      properties: {
        mode: { type: 'string', enum: ['auto', 'device', 'simulator'], default: 'auto', description: 'auto: /dev/nsm when present, else the simulator (announced at startup). device: fail without /dev/nsm. simulator: always simulate.' },
        simulator: {
          type: 'object',
          additionalProperties: false,
          description: 'The simulator used off Nitro: documents signed by a throw-away CA generated at startup.',
          properties: {
            pcrs: { type: 'object', propertyNames: { pattern: '^([0-9]|[12][0-9]|3[01])$' }, additionalProperties: { type: 'string', pattern: '^([0-9a-fA-F]{96})$' }, description: 'PCR index → 96 hex digits (SHA-384); unset PCRs 0-15 read as zeros.' },
            root_certificate_path: { type: 'string', description: 'Write the throw-away root certificate (PEM) here at startup, for verifiers to pin.' },
          },
        },
      },
    },
    aws: {
      type: 'object',
      additionalProperties: false,
      description: 'Inner only: how the KMS proxy and IMDS endpoint reach AWS.',
      properties: {
        region: { type: 'string', pattern: '^[a-z0-9-]+$', description: 'AWS region (default: asked of IMDS through the relay). Also given to the app as AWS_REGION.' },
        credential_refresh_margin: duration('Refresh the relayed role credentials this long before their Expiration.', '5m'),
      },
    },
    imds_relay: {
      type: 'object',
      additionalProperties: false,
      description: 'Outer only: relay the instance metadata the enclave\'s SDKs need (role credentials, region, identity document) over vsock port 17004, speaking IMDSv2 to the host. Nothing else is relayed.',
      properties: {
        upstream: { type: 'string', pattern: '^http://', default: 'http://169.254.169.254', description: 'The instance metadata service.' },
        token_ttl: duration('TTL asked for IMDSv2 session tokens (1s-6h); a token is reused until shortly before it expires.', '6h'),
        timeout: duration('Give up on an IMDS request after this long.', '2s'),
      },
    },
    listeners: { type: 'array', items: listener, default: [], description: 'Listeners of this side.' },
    clusters: { type: 'array', items: cluster, default: [], description: 'Clusters of this side.' },
  },
};

export const configSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://enclaver-proxy.dev/schema/enclaver-proxy.schema.json',
  title: 'enclaver-proxy configuration',
  description: 'One side of the pair (role inner or outer), or both for development (role local).',
  type: 'object',
  required: ['role'],
  properties: {
    role: { type: 'string', enum: ['inner', 'outer', 'local'], description: 'inner: runs in the enclave. outer: runs on the parent instance. local: both on one machine over emulated vsock (development).' },
    log: {
      type: 'object',
      additionalProperties: false,
      description: 'Logging.',
      properties: { level: { type: 'string', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', description: 'Minimum level written.' } },
    },
    runtime_dir: { type: 'string', description: 'role local: directory for emulated vsock sockets and the inner\'s config (default: a new temporary directory, removed at exit).' },
    outer: { ...side, description: 'role local: the outer side.' },
    inner: { ...side, description: 'role local: the inner side.' },
    ...side.properties,
  },
  additionalProperties: false,
  definitions: {},
} as const;
