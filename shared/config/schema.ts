/**
 * The JSON Schema of proxy.yaml, assembled from the section specs (./side.ts, ./listeners.ts,
 * ./clusters.ts, ./egress.ts, ./build.ts). The loader validates with it, `enclaver-proxy schema` prints it,
 * schema/enclaver-proxy.schema.json publishes it for editors, and docs/config.md is generated from
 * it (a test fails when stale). Every property carries a description (and its default).
 */
import { buildSpec } from './build.js';
import { sideSchema } from './side.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Each side section is written once, under `definitions`, and referenced from the top level and
 * from `outer:`/`inner:` (role local): one copy for ajv to compile instead of three (start-up).
 */
const definitions = sideSchema;
const sideRefs = Object.fromEntries(Object.keys(sideSchema).map((key) => [key, { $ref: `#/definitions/${key}` }]));
const side = { type: 'object', additionalProperties: false, properties: sideRefs };

/** Keys of the top level of a role-local config (everything else belongs inside `outer:`/`inner:`). */
export const LOCAL_KEYS = ['role', 'log', 'runtime_dir', 'outer', 'inner'];

export const configSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://enclaver-proxy.dev/schema/enclaver-proxy.schema.json',
  title: 'enclaver-proxy configuration',
  description: 'One side of the pair (role inner or outer), or both for development (role local).',
  type: 'object',
  required: ['role'],
  properties: {
    role: {
      type: 'string',
      enum: ['inner', 'outer', 'local'],
      description:
        'inner: runs in the enclave. outer: runs on the parent ' +
        'instance. local: both on one machine over emulated vsock (development).',
    },
    log: {
      type: 'object',
      additionalProperties: false,
      description: 'Logging.',
      properties: { level: { type: 'string', enum: LOG_LEVELS, default: 'info', description: 'Minimum level written.' } },
    },
    runtime_dir: {
      type: 'string',
      description:
        "role local: directory for emulated vsock sockets and the inner's config (default: a " +
        'new temporary directory, removed at exit).',
    },
    build: buildSpec.schema,
    outer: { ...side, description: 'role local: the outer side.' },
    inner: { ...side, description: 'role local: the inner side.' },
    ...sideRefs,
  },
  additionalProperties: false,
  definitions,
} as const;
