/**
 * Enclaver's `enclaver.yaml`, accepted as a config so Enclaver users can switch: the manifest is
 * validated as strictly as Enclaver does (unknown fields are errors) and translated into the
 * side configs this proxy runs. `--role` picks the side.
 *
 * Mapping (Enclaver → here):
 *   ingress[].listen_port P  → outer tcp listener on P (or its -p HOST_PORT) → vsock://CID:P with
 *                              PROXY v2 → inner vsock://any:P → app at tcp://127.0.0.1:P
 *   ingress[].tls            → TLS terminated on the inner listener with the manifest's files
 *                              (Enclaver ignored these paths; they are honoured here)
 *   egress.allow / deny      → inner `egress` listener with the same entries (same meaning:
 *                              `*`, `**`, IPs, CIDRs, deny wins) and the outer's egress relay
 *   egress.proxy_port        → its address tcp://127.0.0.1:PORT (default 10000)
 *   kms_proxy.listen_port P  → inner `kms` listener on tcp://127.0.0.1:P (endpoints kept per
 *                              region), plus the outer `imds_relay` its credentials come from
 *   api.listen_port P        → inner `attestation_api` listener on tcp://127.0.0.1:P
 *   kms_proxy, or egress.allow naming 169.254.169.254
 *                            → inner `imds` listener on a free loopback port (the app gets
 *                              AWS_EC2_METADATA_SERVICE_ENDPOINT) and the outer `imds_relay`:
 *                              the SDK's instance-metadata credentials work as under Enclaver,
 *                              without the app reaching the host's IMDS through egress
 */
import { ConfigError } from '../errors/index.js';
import { formatHostPort } from '../transport/address.js';
import { KMS_KEY_ARN_PATTERN } from './build.js';
import { ConfigSource } from './source.js';
import { validateAgainst } from './validate.js';

const port = { type: 'integer', minimum: 1, maximum: 65535 };

export const manifestSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'Enclaver manifest (enclaver.yaml)',
  type: 'object',
  additionalProperties: false,
  required: ['version', 'name', 'target', 'sources'],
  properties: {
    version: { type: 'string', description: 'Manifest version (v1).' },
    name: { type: 'string', description: 'Informational name.' },
    target: { type: 'string', description: 'Image tag of the release image (used by the builder).' },
    sources: {
      type: 'object',
      additionalProperties: false,
      required: ['app'],
      properties: {
        app: { type: 'string' },
        supervisor: { type: 'string' },
        wrapper: { type: 'string' },
        odyn: { type: 'string' },
        sleeve: { type: 'string' },
      },
    },
    signature: {
      type: 'object',
      additionalProperties: false,
      required: ['certificate', 'key'],
      properties: {
        certificate: { type: 'string', description: 'Signing certificate (PEM, ECDSA P-256/P-384/P-521); PCR8 measures it.' },
        // nitro-cli's --private-key: a PEM file, or a KMS key ARN. Something that starts like an
        // ARN but is not one is an error here, not a file name to look for.
        key: {
          type: 'string',
          description: "Its private key: a PEM file, or a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), as nitro-cli's --private-key.",
          if: { pattern: '^arn:' },
          then: { pattern: KMS_KEY_ARN_PATTERN },
        },
      },
    },
    defaults: {
      type: 'object',
      additionalProperties: false,
      properties: { cpu_count: { type: 'integer', minimum: 1 }, memory_mb: { type: 'integer', minimum: 64 } },
    },
    ingress: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['listen_port'],
        properties: {
          listen_port: port,
          tls: {
            type: 'object',
            additionalProperties: false,
            required: ['key_file', 'cert_file'],
            properties: { key_file: { type: 'string' }, cert_file: { type: 'string' } },
          },
        },
      },
    },
    egress: {
      type: 'object',
      additionalProperties: false,
      properties: {
        allow: { type: 'array', items: { type: 'string' } },
        deny: { type: 'array', items: { type: 'string' } },
        proxy_port: port,
      },
    },
    kms_proxy: {
      type: 'object',
      additionalProperties: false,
      required: ['listen_port'],
      properties: { listen_port: port, endpoints: { type: 'object', additionalProperties: { type: 'string' } } },
    },
    api: { type: 'object', additionalProperties: false, required: ['listen_port'], properties: { listen_port: port } },
  },
} as const;

export interface Publish {
  /** Host address the outer binds (default 127.0.0.1 in local mode, 0.0.0.0 as outer). */
  host?: string;
  hostPort: number;
  enclavePort: number;
}

export interface ManifestOptions {
  role: 'inner' | 'outer' | 'local';
  publish: Publish[];
  /** The app command (after `--`), for the inner and local roles. */
  appArgv: string[] | undefined;
  enclaveCid: number | undefined;
}

/** The instance metadata service's link-local address, as Enclaver users allow it in egress. */
const IMDS_ADDRESS = '169.254.169.254';

/** Manifest keys that describe the image, not the running pair: accepted, and said to be unused here. */
const BUILD_ONLY_KEYS = ['target', 'sources', 'signature', 'defaults'] as const;

/** One notice per build-only key the manifest sets (they would otherwise look honoured). */
export function manifestNotices(source: ConfigSource): string[] {
  const m = source.data as Record<string, unknown>;
  return BUILD_ONLY_KEYS.filter((k) => m[k] !== undefined).map((k) => {
    const at = source.locate([], k);
    const where = at.line !== undefined ? `${source.file}:${at.line}` : source.file;
    return `${where}: \`${k}\` is used only by \`enclaver-proxy build\` (the image it describes); running the pair ignores it`;
  });
}

/** A top-level mapping without `role` but with `version` is taken for an Enclaver manifest. */
export function looksLikeManifest(data: unknown): boolean {
  return !!data && typeof data === 'object' && !('role' in data) && 'version' in data;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- schema-validated manifest */
export function translateManifest(source: ConfigSource, opts: ManifestOptions): ConfigSource {
  const problems = validateAgainst(manifestSchema, source);
  if (problems.length) throw new ConfigError(problems);
  const m = source.data as any;
  const ingress: { listen_port: number; tls?: { key_file: string; cert_file: string } }[] = m.ingress ?? [];

  const ports = new Set(ingress.map((i) => i.listen_port));
  ingress.forEach((i, n) => {
    if (i.listen_port >= 17000 && i.listen_port <= 17009)
      problems.push(
        source.problem(['ingress', n, 'listen_port'], `port ${i.listen_port} is reserved for the pair's own vsock channels (17000-17009)`),
      );
  });
  opts.publish.forEach((p) => {
    if (!ports.has(p.enclavePort))
      problems.push({
        file: source.file,
        path: 'ingress',
        message: `-p ${p.hostPort}:${p.enclavePort}: the manifest has no ingress with listen_port ${p.enclavePort}`,
      });
  });
  if (opts.role === 'local') {
    ingress.forEach((i, n) => {
      const pub = opts.publish.find((p) => p.enclavePort === i.listen_port);
      if ((pub?.hostPort ?? i.listen_port) === i.listen_port && (pub?.host ?? '127.0.0.1') === '127.0.0.1') {
        problems.push(
          source.problem(
            ['ingress', n, 'listen_port'],
            `in local mode the app listens on 127.0.0.1:${i.listen_port} itself; publish the ingress on another host port, e.g. -p ${i.listen_port + 10000}:${i.listen_port}`,
          ),
        );
      }
    });
  }
  if (problems.length) throw new ConfigError(problems);

  const cid = opts.enclaveCid ?? 16;
  const allow: unknown[] = m.egress?.allow ?? [];
  // Enclaver apps get credentials from IMDS; here through the inner's IMDS endpoint and the relay.
  const imds = m.kms_proxy !== undefined || allow.some((e) => typeof e === 'string' && e.startsWith(IMDS_ADDRESS));
  const awsListeners = [
    ...(m.kms_proxy
      ? [
          {
            name: 'kms-proxy',
            address: `tcp://127.0.0.1:${m.kms_proxy.listen_port}`,
            kms: {
              ...(m.kms_proxy.endpoints ? { endpoints: m.kms_proxy.endpoints } : {}),
              // As in Enclaver, KMS calls leave the enclave through the egress proxy (and its allowlist).
              ...(m.egress ? { egress_proxy: `http://127.0.0.1:${m.egress.proxy_port ?? 10000}` } : {}),
            },
          },
        ]
      : []),
    ...(m.api ? [{ name: 'api', address: `tcp://127.0.0.1:${m.api.listen_port}`, attestation_api: {} }] : []),
    // Port 0: the app is told the bound port, and no port of the app's is taken.
    ...(imds ? [{ name: 'imds', address: 'tcp://127.0.0.1:0', imds: {} }] : []),
  ];
  const inner = {
    // The app after `--` runs in the caller's working directory, as a typed command does.
    ...(opts.appArgv ? { app: { command: opts.appArgv, cwd: process.cwd() } } : {}),
    listeners: [
      ...ingress.map((i) => ({
        name: `ingress-${i.listen_port}`,
        address: `vsock://any:${i.listen_port}`,
        proxy_protocol: 'v2',
        cluster: `app-${i.listen_port}`,
        ...(i.tls ? { tls: { certificate: i.tls.cert_file, private_key: i.tls.key_file } } : {}),
      })),
      ...(m.egress
        ? [
            {
              name: 'egress',
              address: `tcp://127.0.0.1:${m.egress.proxy_port ?? 10000}`,
              egress: { allow: m.egress.allow ?? [], deny: m.egress.deny ?? [] },
            },
          ]
        : []),
      ...awsListeners,
    ],
    clusters: ingress.map((i) => ({ name: `app-${i.listen_port}`, endpoints: [`tcp://127.0.0.1:${i.listen_port}`] })),
  };
  const defaultHost = opts.role === 'local' ? '127.0.0.1' : '0.0.0.0';
  const outer = {
    enclave: { cid },
    ...(m.egress ? { egress_relay: {} } : {}),
    ...(imds ? { imds_relay: {} } : {}),
    listeners: ingress.map((i) => {
      const pub = opts.publish.find((p) => p.enclavePort === i.listen_port);
      const host = pub?.host ?? defaultHost;
      return {
        name: `ingress-${i.listen_port}`,
        address: `tcp://${formatHostPort(host, pub?.hostPort ?? i.listen_port)}`,
        cluster: `enclave-${i.listen_port}`,
      };
    }),
    clusters: ingress.map((i) => ({
      name: `enclave-${i.listen_port}`,
      endpoints: [`vsock://${cid}:${i.listen_port}`],
      proxy_protocol: 'v2',
    })),
  };
  const doc =
    opts.role === 'local'
      ? { role: 'local', outer, inner }
      : opts.role === 'inner'
        ? { role: 'inner', ...inner }
        : { role: 'outer', ...outer };
  return ConfigSource.synthetic(`${source.file} (as ${opts.role})`, doc);
}

/** `-p [IP:]HOST_PORT:ENCLAVE_PORT`, the docker convention. */
export function parsePublish(text: string): Publish {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[0-9.]+):)?([0-9]{1,5}):([0-9]{1,5})$/.exec(text);
  if (!m) throw new Error(`-p ${text}: expected [IP:]HOST_PORT:ENCLAVE_PORT, e.g. -p 18001:8001`);
  const hostPort = Number(m[2]);
  const enclavePort = Number(m[3]);
  for (const p of [hostPort, enclavePort]) if (p < 1 || p > 65535) throw new Error(`-p ${text}: port ${p} is out of range (1-65535)`);
  return { ...(m[1] ? { host: m[1].replace(/^\[|\]$/g, '') } : {}), hostPort, enclavePort };
}
