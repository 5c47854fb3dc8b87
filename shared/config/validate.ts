/**
 * JSON Schema validation (ajv) with messages a person can act on: which file and line, which
 * YAML path, what was expected there.
 *
 * The validators are compiled at build time (`npm run build` writes ajv's standalone code for every
 * schema of ./precompile.ts to dist/shared/config/validators.generated.cjs): compiling the config
 * schema at start-up cost ~200 ms of CPU, most of the inner's start. Each generated validator is
 * exported under the digest of the schema it was compiled from, so a stale or missing file can
 * only miss (then the schema is compiled here, as before), never validate against an old schema.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { ErrorObject, Options } from 'ajv';
import type { ConfigProblem } from '../errors/index.js';
import type { ConfigSource, PathSegment } from './source.js';

// inlineRefs: false compiles each referenced definition once (they are shared by three places);
// verbose gives each error the schema that holds the failed keyword, for the message.
export const AJV_OPTIONS: Options = { allErrors: true, strict: false, allowUnionTypes: true, inlineRefs: false, verbose: true };
/** Beside this module in dist/; CommonJS, so that a synchronous require() can load it when needed. */
export const PRECOMPILED_FILE = 'validators.generated.cjs';

type Validate = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

const require = createRequire(import.meta.url);
const compiled = new WeakMap<object, Validate>();
let precompiled: Record<string, Validate | undefined> | null | undefined;
let ajv: import('ajv').Ajv | undefined;

/** The name a schema's build-time validator is exported under: the digest of the schema it was made from. */
export function precompiledName(schema: object): string {
  return `schema_${createHash('sha256').update(JSON.stringify(schema)).digest('hex')}`;
}

function precompiledValidators(): Record<string, Validate | undefined> | null {
  if (precompiled === undefined) {
    try {
      precompiled = require(`./${PRECOMPILED_FILE}`) as Record<string, Validate | undefined>;
    } catch (err) {
      // Absent when dist/ was built by tsc alone (no `npm run build`): compile instead.
      if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
      precompiled = null;
    }
  }
  return precompiled;
}

/** The schema compiled now, in this process (what the build does ahead of time). */
export function compileValidator(schema: object): Validate {
  ajv ??= new (require('ajv') as typeof import('ajv')).Ajv(AJV_OPTIONS);
  return ajv.compile(schema);
}

function validatorFor(schema: object): Validate {
  let v = compiled.get(schema);
  if (!v) {
    v = precompiledValidators()?.[precompiledName(schema)] ?? compileValidator(schema);
    compiled.set(schema, v);
  }
  return v;
}

function pointerToPath(pointer: string): PathSegment[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^[0-9]+$/.test(s) ? Number(s) : s));
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

function valueAt(data: unknown, path: PathSegment[]): unknown {
  let v: unknown = data;
  for (const seg of path) v = v && typeof v === 'object' ? (v as Record<string | number, unknown>)[seg] : undefined;
  return v;
}

/** The schema that holds the failed keyword (ajv's `verbose` gives it; it may sit under a `$ref`). */
function ownerOf(err: ErrorObject): Record<string, unknown> | undefined {
  const owner: unknown = err.parentSchema;
  return owner && typeof owner === 'object' ? (owner as Record<string, unknown>) : undefined;
}

function message(err: ErrorObject, data: unknown, path: PathSegment[]): { text: string; key?: string } {
  const value = valueAt(data, path);
  switch (err.keyword) {
    case 'additionalProperties': {
      const key = String(err.params.additionalProperty);
      const owner = ownerOf(err);
      const known = owner && typeof owner.properties === 'object' ? Object.keys(owner.properties as object) : [];
      return { text: `unknown key "${key}"${known.length ? ` (expected one of: ${known.join(', ')})` : ''}`, key };
    }
    case 'required':
      return { text: `missing required key "${String(err.params.missingProperty)}"` };
    case 'type':
      return { text: `expected ${String(err.params.type).replace(',', ' or ')}, got ${describeType(value)}` };
    case 'enum':
      return {
        text: `expected one of: ${(err.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}; got ${describeType(value)}`,
      };
    case 'pattern': {
      const owner = ownerOf(err);
      const isDuration = typeof owner?.description === 'string' && owner.description.includes('Duration');
      return {
        text: isDuration
          ? `"${String(value)}" is not a duration (use e.g. 250ms, 5s, 2m, 1h)`
          : `"${String(value)}" does not match ${String(err.params.pattern)}`,
      };
    }
    case 'minimum':
    case 'maximum':
      return {
        text: `${String(value)} is ${err.keyword === 'minimum' ? 'below the minimum' : 'above the maximum'} of ${String(err.params.limit)}`,
      };
    case 'minItems':
      return { text: `expected at least ${String(err.params.limit)} item(s)` };
    case 'minLength':
      return { text: 'must not be empty' };
    case 'oneOf':
      return {
        text: `expected ${String(ownerOf(err)?.description ?? 'a different form')
          .replace(/\.$/, '')
          .toLowerCase()}, got ${describeType(value)}`,
      };
    default:
      return { text: err.message ?? `failed ${err.keyword}` };
  }
}

export function validateAgainst(schema: object, source: ConfigSource, basePath: PathSegment[] = []): ConfigProblem[] {
  const validate = validatorFor(schema);
  const data = basePath.length ? valueAt(source.data, basePath) : source.data;
  if (validate(data)) return [];
  const errors = validate.errors ?? [];
  // Errors under a oneOf branch are noise once the oneOf itself is reported.
  const oneOfPaths = new Set(errors.filter((e) => e.keyword === 'oneOf').map((e) => e.instancePath));
  const problems: ConfigProblem[] = [];
  const seen = new Set<string>();
  for (const err of errors) {
    if (err.keyword !== 'oneOf' && oneOfPaths.has(err.instancePath)) continue;
    if (err.keyword === 'if') continue;
    const path = [...basePath, ...pointerToPath(err.instancePath)];
    const { text, key } = message(err, data, pointerToPath(err.instancePath));
    const p = source.problem(path, text, key);
    const id = `${p.path}|${p.message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    problems.push(p);
  }
  return problems;
}
