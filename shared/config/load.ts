/**
 * Loading a config: read → parse YAML → (translate an Enclaver manifest) → command-line overrides
 * → schema → semantics. Overrides change the document, before validation, in this one step; the
 * normalized config is not changed after. Any problem anywhere ends in one ConfigError listing
 * every problem found (schema and semantics in one pass), before any socket is opened.
 */
import path from 'node:path';
import { ConfigError, type ConfigProblem } from '../errors/index.js';
import { annotateAddressKeys } from './address-keys.js';
import type { BuildConfig } from './build.js';
import { freezeConfig } from './freeze.js';
import { configSchema } from './schema.js';
import { ConfigSource } from './source.js';
import { looksLikeManifest, manifestNotices, translateManifest, type Publish } from './enclaver-manifest.js';
import { effectiveDocument, normalize, type Normalized } from './normalize.js';
import type { PathSegment } from './source.js';
import { isObject, type DeepReadonly, type FileReference } from './spec.js';
import { validateAgainst } from './validate.js';
import type { Config } from './types.js';

export interface LoadOptions {
  /** Required for Enclaver manifests, which describe both sides; must match `role` otherwise. */
  role?: 'inner' | 'outer' | 'local';
  publish?: Publish[];
  /** The app command given after `--`: it replaces the configured one and runs in the caller's directory. */
  appArgv?: string[];
  enclaveCid?: number;
  /** `--admin`: this side's admin address (the outer's under role local); null disables it. */
  admin?: string | null;
  /** `--inner-admin`: the inner's admin address under role local; null disables it. */
  innerAdmin?: string | null;
  /** `--hosts FILE`: the outer relay's hosts file (turns the relay on). */
  hosts?: string;
  /** `--audit-log FILE`: the outer's audit file. */
  auditLog?: string;
}

type Doc = Record<string, unknown>;

function problemAt(source: ConfigSource, message: string): ConfigError {
  return new ConfigError([{ file: source.file, path: '', message }]);
}

/** A copy of `doc` with `section` (a mapping) changed by `change`. */
function withSection(doc: Doc, section: string, change: (s: Doc) => Doc): Doc {
  return { ...doc, [section]: change(isObject(doc[section]) ? doc[section] : {}) };
}

/** The sides of a document that a side-specific override acts on, by role. */
function sides(doc: Doc): { outer?: (change: (side: Doc) => Doc) => Doc; inner?: (change: (side: Doc) => Doc) => Doc } {
  if (doc.role === 'local') {
    return { outer: (change) => withSection(doc, 'outer', change), inner: (change) => withSection(doc, 'inner', change) };
  }
  if (doc.role === 'outer') return { outer: (change) => change(doc) };
  if (doc.role === 'inner') return { inner: (change) => change(doc) };
  return {};
}

/**
 * Every command-line override, applied to the document. An override the document has no place
 * for is an error that says so, never silently ignored.
 */
function applyOverrides(source: ConfigSource, opts: LoadOptions, isManifest: boolean): ConfigSource {
  let doc = { ...(source.data as Doc) };
  const apply = (side: 'outer' | 'inner', flag: string, change: (s: Doc) => Doc) => {
    const at = sides(doc)[side];
    if (!at)
      throw problemAt(
        source,
        `${flag} belongs to the ${side} side (role ${side}${side === 'outer' ? ' or local' : ' or local'}), this config is role ${String(doc.role)}`,
      );
    doc = at(change);
  };
  const setAdmin = (address: string | null) => (s: Doc) => withSection(s, 'admin', (a) => ({ ...a, address }));
  if (opts.admin !== undefined) {
    if (doc.role === 'local') doc = withSection(doc, 'outer', setAdmin(opts.admin));
    else doc = setAdmin(opts.admin)(doc);
  }
  if (opts.innerAdmin !== undefined) {
    if (doc.role !== 'local') throw problemAt(source, '--inner-admin applies to role local; use --admin for a single side');
    doc = withSection(doc, 'inner', setAdmin(opts.innerAdmin));
  }
  if (opts.hosts !== undefined) {
    const hostsFile = path.resolve(opts.hosts);
    apply('outer', '--hosts', (s) => withSection(s, 'egress_relay', (r) => ({ ...r, hosts_file: hostsFile })));
  }
  if (opts.auditLog !== undefined) {
    const file = path.resolve(opts.auditLog);
    // Without an audit section the flag means "to this file" (stdout keeps the process logs).
    apply('outer', '--audit-log', (s) => ({ ...s, audit: isObject(s.audit) ? { ...s.audit, file } : { stdout: false, file } }));
  }
  if (opts.appArgv && !isManifest) {
    const argv = opts.appArgv;
    if (doc.role !== 'inner' && doc.role !== 'local') throw problemAt(source, 'an app command after -- needs role inner or local');
    // An app typed on the command line runs where it was typed, like any command: `-- python3 -m
    // http.server` serves the caller's folder, not the config's.
    apply('inner', 'an app command after --', (s) => ({
      ...s,
      app: { ...(isObject(s.app) ? s.app : {}), command: argv, cwd: process.cwd() },
    }));
  }
  // A local pair whose inner has an egress listener gets the relay it needs without asking.
  if (
    doc.role === 'local' &&
    isObject(doc.inner) &&
    Array.isArray(doc.inner.listeners) &&
    doc.inner.listeners.some((l) => isObject(l) && l.egress !== undefined) &&
    isObject(doc.outer) &&
    doc.outer.egress_relay === undefined
  ) {
    doc = withSection(doc, 'outer', (o) => ({ ...o, egress_relay: {} }));
  }
  return source.withData(doc);
}

/** The document as it will run: manifest translated, overrides applied. */
function prepare(source: ConfigSource, opts: LoadOptions): ConfigSource {
  const isManifest = looksLikeManifest(source.data);
  let src = source;
  if (isManifest) {
    if (!opts.role)
      throw problemAt(source, 'this is an Enclaver manifest, which describes both sides: choose one with --role ' + 'inner|outer|local');
    src = translateManifest(source, { role: opts.role, publish: opts.publish ?? [], appArgv: opts.appArgv, enclaveCid: opts.enclaveCid });
  } else {
    if (opts.publish?.length)
      throw problemAt(source, '-p/--publish applies to Enclaver manifests; in proxy.yaml set the outer listener ' + 'addresses instead');
    if (opts.enclaveCid !== undefined)
      throw problemAt(
        source,
        '--enclave-cid applies to Enclaver manifests; in proxy.yaml set ' + 'enclave.cid and the vsock://CID:PORT cluster endpoints',
      );
    const role = (source.data as { role?: unknown }).role;
    if (opts.role && role !== opts.role)
      throw new ConfigError([
        {
          file: source.file,
          ...source.locate(['role']),
          path: 'role',
          message: `--role ${opts.role} contradicts role: ${String(role)} in the file`,
        },
      ]);
  }
  return applyOverrides(src, opts, isManifest);
}

function problemsOf(src: ConfigSource): Normalized {
  const schemaProblems = validateAgainst(configSchema, src);
  const role = (src.data as { role?: unknown }).role;
  // Without a known role the sections cannot be read: the schema's problem says what to fix.
  if (role !== 'inner' && role !== 'outer' && role !== 'local') throw new ConfigError(schemaProblems);
  const { config, problems, references, build } = normalize(src);
  const seen = new Set(schemaProblems.map((p) => `${p.path}|${p.message}`));
  return { config, references, build, problems: [...schemaProblems, ...problems.filter((p) => !seen.has(`${p.path}|${p.message}`))] };
}

export function loadConfigSource(source: ConfigSource, opts: LoadOptions = {}): Config {
  const { config, problems } = problemsOf(prepare(source, opts));
  if (problems.length) throw new ConfigError(problems);
  annotateAddressKeys(config, source.data, looksLikeManifest(source.data));
  return freezeConfig(config);
}

export interface Loaded {
  config: Config;
  /** Things the user should know that are not errors (manifest keys this command does not use). */
  notices: string[];
  /** The document as it runs, every default written out, paths absolute (`--check` prints it). */
  document(): Record<string, unknown>;
  /** The files the config refers to (`--check` looks at each). */
  references: FileReference[];
  /** A problem located in the config file, for checks made after loading. */
  problemAt(path: readonly PathSegment[], message: string): ConfigProblem;
  /** The `build:` section (role inner), for `enclaver-proxy build`; read-only and frozen like the config. */
  build: DeepReadonly<BuildConfig> | undefined;
}

/** Things in the file that this command does not use, said once so they do not look honoured. */
function noticesOf(source: ConfigSource): string[] {
  if (looksLikeManifest(source.data)) return manifestNotices(source);
  if (!isObject(source.data) || source.data.build === undefined) return [];
  const at = source.locate([], 'build');
  const where = at.line !== undefined ? `${source.file}:${at.line}` : source.file;
  return [`${where}: \`build\` is used only by \`enclaver-proxy build --config\`; running the proxy ignores it`];
}

/**
 * What the CLI needs: the config, its notices, and the effective document for `--check`.
 * `moreChecks` adds its problems to the config's own, so that one run reports all of them.
 */
export function loadWithNotices(source: ConfigSource, opts: LoadOptions = {}, moreChecks?: (loaded: Loaded) => ConfigProblem[]): Loaded {
  const src = prepare(source, opts);
  const { config, problems, references, build } = problemsOf(src);
  const loaded: Loaded = {
    config,
    build,
    notices: noticesOf(source),
    document: () => effectiveDocument(src),
    references,
    problemAt: (p, message) => src.problem(p, message),
  };
  const all = [...problems, ...(moreChecks?.(loaded) ?? [])];
  if (all.length) throw new ConfigError(all);
  annotateAddressKeys(config, source.data, looksLikeManifest(source.data));
  freezeConfig(config);
  if (build) freezeConfig(build);
  return loaded;
}

export function loadConfig(file: string, opts: LoadOptions = {}): Config {
  return loadConfigSource(ConfigSource.read(file), opts);
}
