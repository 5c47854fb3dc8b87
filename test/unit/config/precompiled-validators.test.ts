/**
 * The config validators compiled at build time (shared/config/precompile.ts →
 * dist/shared/config/validators.generated.cjs) are current: the file holds exactly what the specs
 * produce now, one validator per schema under that schema's digest, and they judge documents as
 * the same schema compiled at run time does (errors included, which the messages are made of).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { manifestSchema } from '../../../shared/config/enclaver-manifest.js';
import { PRECOMPILED_SCHEMAS, precompiledValidatorsSource } from '../../../shared/config/precompile.js';
import { configSchema } from '../../../shared/config/schema.js';
import { compileValidator, PRECOMPILED_FILE, precompiledName } from '../../../shared/config/validate.js';
import { ROOT } from '../../helpers/paths.js';

const GENERATED = path.join(ROOT, 'dist', 'shared', 'config', PRECOMPILED_FILE);
type Validate = ((data: unknown) => boolean) & { errors?: unknown[] | null };
const generated = createRequire(import.meta.url)(GENERATED) as Record<string, Validate | undefined>;

test('the generated file is what the current specs produce (npm run build writes it)', () => {
  assert.ok(fs.readFileSync(GENERATED, 'utf8') === precompiledValidatorsSource(), `${GENERATED} is stale: run npm run build`);
});

test('every schema the CLI validates against has a build-time validator under its digest', () => {
  assert.ok(PRECOMPILED_SCHEMAS.includes(configSchema) && PRECOMPILED_SCHEMAS.includes(manifestSchema));
  for (const schema of PRECOMPILED_SCHEMAS) assert.equal(typeof generated[precompiledName(schema)], 'function');
  assert.equal(generated[precompiledName({ ...configSchema, title: 'changed' })], undefined, 'another schema has another name');
});

const CONFIGS = [
  ...['local-demo.yaml', 'aws-kms.yaml', 'egress-local.yaml'].map(
    (f) => parse(fs.readFileSync(path.join(ROOT, 'configs', f), 'utf8')) as unknown,
  ),
  { role: 'inner', listeners: [{ name: 1, adress: 'tcp://x' }], shutdown: { drain_timeout: 'soon' } },
  { role: 'outer', admin: { address: 7, max_connections: -1 }, clusters: [{ name: 'a', endpoints: [] }] },
  { role: 'local', outer: { listeners: 'none' }, inner: { app: { command: [] }, bogus: true } },
  { role: 'middle' },
  [],
];
const MANIFESTS = [
  parse(fs.readFileSync(path.join(ROOT, 'configs', 'enclaver-no-fly-list.yaml'), 'utf8')) as unknown,
  { version: 'v1', name: 3, ingress: [{ listen_port: 'x' }], egress: { allow: 'all' } },
];

test('build-time and run-time validators agree on valid and invalid documents, errors included', () => {
  for (const [schema, docs] of [
    [configSchema, CONFIGS],
    [manifestSchema, MANIFESTS],
  ] as const) {
    const ahead = generated[precompiledName(schema)];
    assert.ok(ahead);
    const now = compileValidator(schema);
    for (const doc of docs) {
      assert.equal(ahead(doc), now(doc), JSON.stringify(doc));
      assert.deepEqual(ahead.errors, now.errors, JSON.stringify(doc));
    }
    assert.ok(
      docs.some((d) => !now(d)),
      'some documents are invalid',
    );
  }
});
