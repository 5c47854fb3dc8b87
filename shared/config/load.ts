/**
 * Loading a config: read → parse YAML → (translate an Enclaver manifest) → schema → semantics.
 * Any problem anywhere ends in one ConfigError listing every problem found, before any socket
 * is opened.
 */
import { annotateAddressKeys } from './address-keys.js';
import { ConfigError } from '../errors/index.js';
import { configSchema } from './schema.js';
import { ConfigSource } from './source.js';
import { looksLikeManifest, translateManifest, type Publish } from './enclaver-manifest.js';
import { normalize } from './normalize.js';
import { validateAgainst } from './validate.js';
import type { Config } from './types.js';

export interface LoadOptions {
  /** Required for Enclaver manifests, which describe both sides; must match `role` otherwise. */
  role?: 'inner' | 'outer' | 'local';
  publish?: Publish[];
  appArgv?: string[];
  enclaveCid?: number;
  /** `--admin`: this side's admin address (the outer's under role local); null disables it. */
  admin?: string | null;
  /** `--inner-admin`: the inner's admin address under role local; null disables it. */
  innerAdmin?: string | null;
}

/** Admin addresses from the command line replace the file's, before validation sees them. */
function applyAdminOverrides(source: ConfigSource, opts: LoadOptions): void {
  /* eslint-disable @typescript-eslint/no-explicit-any -- raw document, validated right after */
  const doc = source.data as any;
  const set = (side: any, address: string | null | undefined) => {
    if (address !== undefined && side && typeof side === 'object') side.admin = { ...(side.admin ?? {}), address };
  };
  if (doc.role === 'local') {
    set(doc.outer, opts.admin);
    set(doc.inner, opts.innerAdmin);
  } else {
    if (opts.innerAdmin !== undefined) throw new ConfigError([{ file: source.file, path: '', message: '--inner-admin applies to role local; use --admin for a single side' }]);
    set(doc, opts.admin);
  }
}

export function loadConfigSource(source: ConfigSource, opts: LoadOptions = {}): Config {
  let src = source;
  if (looksLikeManifest(source.data)) {
    if (!opts.role) throw new ConfigError([{ file: source.file, path: '', message: 'this is an Enclaver manifest, which describes both sides: choose one with --role inner|outer|local' }]);
    src = translateManifest(source, { role: opts.role, publish: opts.publish ?? [], appArgv: opts.appArgv, enclaveCid: opts.enclaveCid });
  } else {
    if (opts.publish?.length) throw new ConfigError([{ file: source.file, path: '', message: '-p/--publish applies to Enclaver manifests; in proxy.yaml set the outer listener addresses instead' }]);
    const role = (source.data as { role?: unknown }).role;
    if (opts.role && role !== opts.role) throw new ConfigError([{ file: source.file, ...source.locate(['role']), path: 'role', message: `--role ${opts.role} contradicts role: ${String(role)} in the file` }]);
  }
  applyAdminOverrides(src, opts);
  const problems = validateAgainst(configSchema, src);
  if (problems.length) throw new ConfigError(problems);
  const config = normalize(src);
  if (opts.appArgv) {
    const inner = config.role === 'local' ? config.inner : config.role === 'inner' ? config : undefined;
    if (!inner) throw new ConfigError([{ file: source.file, path: '', message: 'an app command after -- needs role inner or local' }]);
    // An app typed on the command line runs where it was typed, like any command: `-- python3 -m
    // http.server` serves the caller's folder, not the config's.
    inner.app = { argv: opts.appArgv, env: inner.app?.env ?? {}, cwd: process.cwd(), stopTimeoutMs: inner.app?.stopTimeoutMs ?? 10_000 };
  }
  annotateAddressKeys(config, source.data, looksLikeManifest(source.data));
  return config;
}

export function loadConfig(file: string, opts: LoadOptions = {}): Config {
  return loadConfigSource(ConfigSource.read(file), opts);
}
