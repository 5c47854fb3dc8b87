/**
 * A small builder for config specs. Each config section is written once, as a spec, and from it
 * come the three things that used to be kept by hand side by side:
 *   - `schema`: the JSON Schema fragment (validation, `enclaver-proxy schema`, docs/config.md);
 *   - `read()`: the normalized value the code uses (defaults applied, durations in ms, paths
 *     absolute, addresses parsed), whose TypeScript type is `Static<typeof spec>`;
 *   - `fill()`: the document with its defaults written out and paths made absolute, which is what
 *     `--check` prints (a valid config again, so it can be fed back).
 * A default is written in one place: the spec's `default`, which is also what the docs show.
 *
 * Why not TypeBox: it derives the schema and the type of the *document*, but what the code reads
 * is the normalized form (`5s` → 5000, a path → an absolute path, a URI → an Address); the read
 * step would still be written by hand beside it. Here the leaf that declares `duration` also
 * converts it, so the type the code sees follows from the same line (docs/decisions.md).
 *
 * `read()` is also called on documents the schema refused, so that semantic problems are found
 * in the same pass (`--check` reports everything at once): a leaf of the wrong type reads as its
 * default, and a value that cannot be read at all throws `Unreadable` after its problem has been
 * reported; a list drops such an item, an object reads all its fields before passing it on.
 */
import path from 'node:path';
import { AddressError } from '../errors/index.js';
import { parseAddress, type Address } from '../transport/address.js';
import { DURATION_PATTERN, parseDuration } from '../util/duration.js';
import type { ClusterConfig } from './clusters.js';
import type { PathSegment } from './source.js';

export type JsonSchema = { [key: string]: unknown };
export type Role = 'inner' | 'outer';

export interface ReadContext {
  /** Relative paths in the config are relative to the config file's directory. */
  readonly configDir: string;
  readonly role: Role;
  /** This side's clusters, for listeners that name one. */
  readonly clusters: ReadonlyMap<string, ClusterConfig>;
  problem(path: readonly PathSegment[], message: string): void;
  /**
   * Record that `owner` uses `key` (a name, an address) within `scope` on this side; returns the
   * earlier owner when the key was taken, for "already used by" checks.
   */
  claim(scope: string, key: string, owner: string): string | undefined;
  /** Record a file the config refers to, for `--check` to look at (the run itself may be elsewhere). */
  uses(path: readonly PathSegment[], file: string, use: FileUse): void;
}

/** How a referenced file is used: read at start, written (its directory must exist), or a directory. */
export type FileUse = 'read' | 'write' | 'directory';

export interface FileReference {
  path: readonly PathSegment[];
  file: string;
  use: FileUse;
}

export interface FillContext {
  readonly configDir: string;
  readonly role: Role;
}

/** A value that could not be read; its problem has been reported already. */
export class Unreadable extends Error {
  constructor() {
    super('config value could not be read (reported)');
  }
}

export interface Spec<T> {
  readonly schema: JsonSchema;
  /** The document key, when it is not the snake_case of the field's name. */
  readonly key?: string;
  /** Must be present (the schema's `required`). */
  readonly required?: boolean;
  read(raw: unknown, path: readonly PathSegment[], ctx: ReadContext): T;
  fill(raw: unknown, ctx: FillContext): unknown;
}

export type Static<S> = S extends Spec<infer T> ? T : never;

/**
 * `T` read-only all the way down: what the config types are named as outside the spec builder.
 * Arrays and tuples become readonly through the mapped type; maps and sets lose their writers.
 * Binary values (PCRs, address bytes) stay as they are: a typed array cannot be frozen either.
 */
export type DeepReadonly<T> = T extends ((...args: never[]) => unknown) | ArrayBufferView
  ? T
  : T extends ReadonlyMap<infer K, infer V>
    ? ReadonlyMap<K, DeepReadonly<V>>
    : T extends ReadonlySet<infer V>
      ? ReadonlySet<DeepReadonly<V>>
      : T extends object
        ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
        : T;

/** `T`, or `T | undefined` when the options give no default. */
type WithDefault<O, T> = O extends { default: unknown } ? T : T | undefined;

interface LeafOptions<D> {
  description: string;
  default?: D;
}

function leaf<T>(
  schema: JsonSchema,
  accepts: (raw: unknown) => boolean,
  convert: (raw: never, path: readonly PathSegment[], ctx: ReadContext) => T,
  fillValue: (raw: never, ctx: FillContext) => unknown = (raw) => raw,
): Spec<T> {
  const def = schema.default;
  return {
    schema,
    read(raw, p, ctx) {
      // A value of the wrong type has been reported by the schema; it reads as absent.
      const value = raw !== undefined && accepts(raw) ? raw : def;
      return (value === undefined ? undefined : convert(value as never, p, ctx)) as T;
    },
    fill(raw, ctx) {
      const value = raw === undefined ? def : raw;
      return value === undefined ? undefined : fillValue(value as never, ctx);
    },
  };
}

/** A leaf's schema: its type and the options given (description, default, limits). */
function schemaWith(base: JsonSchema, options: object): JsonSchema {
  return { ...base, ...options };
}

const isString = (v: unknown): v is string => typeof v === 'string';

export function string<O extends LeafOptions<string> & { pattern?: string; minLength?: number }>(o: O): Spec<WithDefault<O, string>> {
  return leaf(schemaWith({ type: 'string' }, o), isString, (v: string) => v) as Spec<WithDefault<O, string>>;
}

export function oneOfValues<const V extends string, O extends LeafOptions<V>>(values: readonly V[], o: O): Spec<WithDefault<O, V>> {
  return leaf(
    schemaWith({ type: 'string', enum: values }, o),
    (v) => values.includes(v as V),
    (v: V) => v,
  ) as Spec<WithDefault<O, V>>;
}

export function integer<O extends LeafOptions<number> & { minimum?: number; maximum?: number }>(o: O): Spec<WithDefault<O, number>> {
  return leaf(schemaWith({ type: 'integer' }, o), Number.isInteger, (v: number) => v) as Spec<WithDefault<O, number>>;
}

export function boolean<O extends LeafOptions<boolean>>(o: O): Spec<WithDefault<O, boolean>> {
  return leaf(
    schemaWith({ type: 'boolean' }, o),
    (v) => typeof v === 'boolean',
    (v: boolean) => v,
  ) as Spec<WithDefault<O, boolean>>;
}

/** A duration (`250ms`, `5s`, `2m`, `1h`, or milliseconds as a number), read as milliseconds. */
export function duration(description: string, def: string): Spec<number> {
  const schema = {
    description: `${description} Duration such as 250ms, 5s, 2m, 1h (or milliseconds as a number).`,
    type: ['string', 'integer'],
    pattern: DURATION_PATTERN,
    minimum: 0,
    default: def,
  };
  const accepts = (v: unknown) => (typeof v === 'number' && v >= 0) || (typeof v === 'string' && new RegExp(DURATION_PATTERN).test(v));
  return leaf(schema, accepts, (v: string | number) => parseDuration(v));
}

export const SIZE_PATTERN = '^[0-9]+(B|KiB|MiB|GiB)?$';
const SIZE_UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

export function parseSize(value: string | number): number {
  if (typeof value === 'number') return value;
  const m = new RegExp(SIZE_PATTERN).exec(value);
  if (!m) throw new Error(`"${value}" is not a size (use e.g. 100MiB)`);
  const unit = m[1] ?? 'B';
  return Number(value.slice(0, value.length - (m[1]?.length ?? 0))) * (SIZE_UNITS[unit] ?? 1);
}

/** A size in bytes, or with B/KiB/MiB/GiB; read as bytes. */
export function size(description: string, def: string): Spec<number> {
  const accepts = (v: unknown) => (typeof v === 'number' && v >= 0) || (typeof v === 'string' && new RegExp(SIZE_PATTERN).test(v));
  return leaf({ type: ['string', 'integer'], pattern: SIZE_PATTERN, default: def, description }, accepts, (v: string | number) =>
    parseSize(v),
  );
}

/**
 * A file, relative to the config file's directory; read (and printed by --check) as an absolute
 * path. `use` says what `--check` verifies about it; `none` for paths created at run time.
 */
export function file(description: string, use: FileUse | 'none' = 'read'): Spec<string | undefined> {
  return leaf(
    { type: 'string', description },
    isString,
    (v: string, p, ctx) => {
      const resolved = path.resolve(ctx.configDir, v);
      if (use !== 'none') ctx.uses(p, resolved, use);
      return resolved;
    },
    (v: string, ctx) => path.resolve(ctx.configDir, v),
  );
}

export const ADDRESS_FORMS = 'URI: tcp://HOST:PORT, unix:///PATH or vsock://CID:PORT (CID: a number, any, parent).';

/** Parse an address URI, reporting a malformed one at `p`. */
export function readAddress(text: string, p: readonly PathSegment[], ctx: ReadContext): Address {
  try {
    return parseAddress(text);
  } catch (err) {
    ctx.problem(p, err instanceof AddressError ? String(err.context.reason) : (err as Error).message);
    throw new Unreadable();
  }
}

export function address(description: string): Spec<Address | undefined> {
  return leaf({ type: 'string', description: `${description} ${ADDRESS_FORMS}` }, isString, (v: string, p, ctx) => readAddress(v, p, ctx));
}

/** The field must be present; its type loses `undefined`. */
export function required<T>(spec: Spec<T>): Spec<Exclude<T, undefined>> {
  return {
    ...spec,
    required: true,
    read(raw, p, ctx) {
      const v = spec.read(raw, p, ctx);
      if (v === undefined) throw new Unreadable();
      return v as Exclude<T, undefined>;
    },
  };
}

/** The field is found under `key` in the document (its TypeScript name says more, e.g. `connectTimeoutMs`). */
export function at<T>(key: string, spec: Spec<T>): Spec<T> {
  return { ...spec, key };
}

/** A spec whose reading is written by hand (forms the builder does not know, e.g. `oneOf`). */
export function custom<T>(schema: JsonSchema, read: Spec<T>['read'], fill: Spec<T>['fill'] = (raw) => raw): Spec<T> {
  return { schema, read, fill };
}

/** The spec with `fn` applied to what it reads (checks across fields, derived values). */
export function refine<T, U>(spec: Spec<T>, fn: (value: T, path: readonly PathSegment[], ctx: ReadContext) => U): Spec<U> {
  return { ...spec, read: (raw, p, ctx) => fn(spec.read(raw, p, ctx), p, ctx) };
}

/** A different schema text for the docs (a default that depends on the role, a longer description). */
export function describedAs<T>(spec: Spec<T>, schema: JsonSchema): Spec<T> {
  return { ...spec, schema: { ...spec.schema, ...schema } };
}

export function list<T>(
  items: Spec<T>,
  o: { description: string; minItems?: number; uniqueItems?: boolean; default?: unknown[] },
): Spec<T[]> {
  const schema = { type: 'array', items: items.schema, ...o };
  return {
    schema,
    read(raw, p, ctx) {
      const entries = Array.isArray(raw) ? raw : (o.default ?? []);
      const out: T[] = [];
      entries.forEach((entry: unknown, i: number) => {
        try {
          out.push(items.read(entry, [...p, i], ctx));
        } catch (err) {
          if (!(err instanceof Unreadable)) throw err;
        }
      });
      return out;
    },
    fill(raw, ctx) {
      const entries = raw === undefined ? o.default : raw;
      return Array.isArray(entries) ? entries.map((e: unknown) => items.fill(e, ctx)) : entries;
    },
  };
}

/** A mapping of names to values of one kind. */
export function record<T>(
  values: Spec<T>,
  o: { description: string; propertyNames?: JsonSchema },
): Spec<Record<string, Exclude<T, undefined>>> {
  return {
    schema: { type: 'object', additionalProperties: values.schema, ...o },
    read(raw, p, ctx) {
      const out: Record<string, Exclude<T, undefined>> = {};
      if (!isObject(raw)) return out;
      for (const [k, v] of Object.entries(raw)) {
        try {
          const value = values.read(v, [...p, k], ctx);
          if (value !== undefined) out[k] = value as Exclude<T, undefined>;
        } catch (err) {
          if (!(err instanceof Unreadable)) throw err;
        }
      }
      return out;
    },
    fill: (raw) => raw,
  };
}

export function isObject(raw: unknown): raw is Record<string, unknown> {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw);
}

type Fields = Record<string, Spec<unknown>>;
export type ObjectOf<F extends Fields> = { [K in keyof F]: Static<F[K]> };

/** The document key of a field: its `at()` key, or the snake_case of its name. */
export function keyOf(name: string, spec: Spec<unknown>): string {
  return spec.key ?? name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

export function objectSchema(description: string, fields: Fields): JsonSchema {
  const properties: JsonSchema = {};
  const requiredKeys: string[] = [];
  for (const [name, spec] of Object.entries(fields)) {
    const key = keyOf(name, spec);
    properties[key] = spec.schema;
    if (spec.required) requiredKeys.push(key);
  }
  return {
    type: 'object',
    additionalProperties: false,
    description,
    ...(requiredKeys.length ? { required: requiredKeys } : {}),
    properties,
  };
}

/**
 * Read every field of an object (all of them, so that every problem is reported). `complete` is
 * false when some field could not be read; `value` then holds the fields that could.
 */
export function readFieldsPartial<F extends Fields>(
  fields: F,
  raw: unknown,
  p: readonly PathSegment[],
  ctx: ReadContext,
): { value: Partial<ObjectOf<F>>; complete: boolean } {
  const doc = isObject(raw) ? raw : {};
  const out: Record<string, unknown> = {};
  let complete = true;
  for (const [name, spec] of Object.entries(fields)) {
    const key = keyOf(name, spec);
    try {
      out[name] = spec.read(doc[key], [...p, key], ctx);
    } catch (err) {
      if (!(err instanceof Unreadable)) throw err;
      complete = false;
    }
  }
  return { value: out as Partial<ObjectOf<F>>, complete };
}

export function readFields<F extends Fields>(fields: F, raw: unknown, p: readonly PathSegment[], ctx: ReadContext): ObjectOf<F> {
  const { value, complete } = readFieldsPartial(fields, raw, p, ctx);
  if (!complete) throw new Unreadable();
  return value as ObjectOf<F>;
}

export function fillFields(fields: Fields, raw: unknown, ctx: FillContext): Record<string, unknown> {
  const doc = isObject(raw) ? raw : {};
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(fields)) {
    const key = keyOf(name, spec);
    const v = spec.fill(doc[key], ctx);
    if (v !== undefined) out[key] = v;
  }
  return out;
}

/** An object section; absent, it reads as all its defaults. */
export function object<F extends Fields>(description: string, fields: F): Spec<ObjectOf<F>> & { fields: F } {
  return {
    schema: objectSchema(description, fields),
    fields,
    read: (raw, p, ctx) => readFields(fields, raw, p, ctx),
    fill(raw, ctx) {
      const out = fillFields(fields, raw, ctx);
      return raw === undefined && Object.keys(out).length === 0 ? undefined : out;
    },
  };
}

/** A section whose presence means something (it turns a part on): undefined when absent. */
export function optional<T>(spec: Spec<T>): Spec<T | undefined> {
  return {
    ...spec,
    read: (raw, p, ctx) => (raw === undefined ? undefined : spec.read(raw, p, ctx)),
    fill: (raw, ctx) => (raw === undefined ? undefined : (spec.fill(raw, ctx) ?? {})),
  };
}
