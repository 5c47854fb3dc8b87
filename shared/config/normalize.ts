/**
 * From a document to the normalized config: each side read by its specs (./side.ts), plus the
 * rules that span the whole document (the top level of role local, port collisions of a local
 * pair on one machine). Runs on documents the schema refused too, so that every problem is
 * reported in one pass; the caller throws when there were any.
 */
import path from 'node:path';
import type { ConfigProblem } from '../errors/index.js';
import { buildSpec, type BuildConfig } from './build.js';
import type { ConfigSource, PathSegment } from './source.js';
import { LOCAL_KEYS, LOG_LEVELS, type LogLevel } from './schema.js';
import { fillSide, readSide, type InnerConfig, type OuterConfig, type SideSource } from './side.js';
import { isObject, Unreadable, type FileReference } from './spec.js';
import type { Config, LocalConfig } from './types.js';

function sideSource(source: ConfigSource, problems: ConfigProblem[], references: FileReference[]): SideSource {
  return {
    file: source.file,
    configDir: path.dirname(path.resolve(source.file)),
    problem: (p: readonly PathSegment[], message: string) => {
      problems.push(source.problem(p, message));
    },
    uses: (p, file, use) => {
      references.push({ path: p, file, use });
    },
  };
}

function logLevelOf(raw: Record<string, unknown>): LogLevel | undefined {
  const level = isObject(raw.log) ? raw.log.level : undefined;
  return (LOG_LEVELS as readonly unknown[]).includes(level) ? (level as LogLevel) : undefined;
}

/** TCP ports the two sides of a local pair would both bind on one machine. */
function localCollisions(add: (p: PathSegment[], message: string) => void, local: { outer: OuterConfig; inner: InnerConfig }): void {
  const taken = new Map<number, string>();
  const claim = (port: number, what: string, p: PathSegment[]) => {
    if (port === 0) return;
    const prior = taken.get(port);
    if (prior)
      add(
        p,
        `TCP port ${port} is used twice on this machine: ${prior} and ${what}. In local mode both sides share one network; publish the outer port elsewhere`,
      );
    else taken.set(port, what);
  };
  local.outer.listeners.forEach((l, i) => {
    if (l.address.kind === 'tcp') claim(l.address.port, `outer listener "${l.name}"`, ['outer', 'listeners', i, 'address']);
  });
  local.inner.listeners.forEach((l, i) => {
    if (l.address.kind === 'tcp') claim(l.address.port, `inner listener "${l.name}"`, ['inner', 'listeners', i, 'address']);
  });
  for (const [side, cfg] of [
    ['outer', local.outer],
    ['inner', local.inner],
  ] as const) {
    if (cfg.admin.address?.kind === 'tcp') claim(cfg.admin.address.port, `${side} admin`, [side, 'admin', 'address']);
  }
  // The app binds its own ports: an outer listener on the same port would collide with it.
  const appPorts = new Set<number>();
  for (const cl of local.inner.clusters.values()) for (const e of cl.endpoints) if (e.kind === 'tcp') appPorts.add(e.port);
  local.outer.listeners.forEach((l, i) => {
    if (l.address.kind === 'tcp' && appPorts.has(l.address.port)) {
      add(
        ['outer', 'listeners', i, 'address'],
        `TCP port ${l.address.port} is also where the app listens (inner cluster endpoint); publish the outer listener on another port`,
      );
    }
  });
}

export interface Normalized {
  config: Config;
  /** Problems found; the config is only meaningful without any. */
  problems: ConfigProblem[];
  /** The files the config refers to, with their YAML paths (for `--check`). */
  references: FileReference[];
  /** The `build:` section (role inner), read only by `enclaver-proxy build`. */
  build: BuildConfig | undefined;
}

const BUILD_IS_INNER =
  '`build` packages an inner side into an enclave image: put it in a role inner config (its outer side is build.outer_config)';

/** The `build:` section of a role inner config; its problems are reported with the rest. */
function readBuild(raw: Record<string, unknown>, src: SideSource): BuildConfig | undefined {
  const ctx = { configDir: src.configDir, role: 'inner' as const, clusters: new Map(), problem: src.problem, uses: src.uses };
  try {
    return buildSpec.read(raw.build, ['build'], { ...ctx, claim: () => undefined });
  } catch (err) {
    if (!(err instanceof Unreadable)) throw err;
    return undefined;
  }
}

export function normalize(source: ConfigSource): Normalized {
  const problems: ConfigProblem[] = [];
  const references: FileReference[] = [];
  const src = sideSource(source, problems, references);
  const raw = isObject(source.data) ? source.data : {};
  const logLevel = logLevelOf(raw);
  if (raw.role === 'local') {
    for (const key of Object.keys(raw)) {
      if (key === 'build') problems.push(source.problem([], BUILD_IS_INNER, key));
      else if (!LOCAL_KEYS.includes(key))
        problems.push(source.problem([], `\`${key}\` belongs inside \`outer:\` or \`inner:\` when role is local`, key));
    }
    if (!raw.outer) problems.push(source.problem([], 'role local needs an `outer:` section'));
    if (!raw.inner) problems.push(source.problem([], 'role local needs an `inner:` section'));
    const outer = readSide(raw.outer, ['outer'], 'outer', src) as OuterConfig;
    const inner = readSide(raw.inner, ['inner'], 'inner', src) as InnerConfig;
    if (!problems.length) localCollisions((p, m) => problems.push(source.problem(p, m)), { outer, inner });
    const runtimeDir = typeof raw.runtime_dir === 'string' ? path.resolve(src.configDir, raw.runtime_dir) : undefined;
    const local: LocalConfig = { role: 'local', source: source.file, logLevel, runtimeDir, outer, inner };
    return { config: local, problems, references, build: undefined };
  }
  for (const key of ['outer', 'inner', 'runtime_dir'])
    if (key in raw) problems.push(source.problem([], `\`${key}\` is only allowed when role is local`, key));
  const role = raw.role === 'outer' ? 'outer' : 'inner';
  if (role === 'outer' && raw.build !== undefined) problems.push(source.problem([], BUILD_IS_INNER, 'build'));
  const build = role === 'inner' ? readBuild(raw, src) : undefined;
  return { config: { ...readSide(raw, [], role, src), logLevel }, problems, references, build };
}

/** The document with every default written out and paths absolute: a valid config again (`--check`). */
export function effectiveDocument(source: ConfigSource): Record<string, unknown> {
  const raw = isObject(source.data) ? source.data : {};
  const ctx = { configDir: path.dirname(path.resolve(source.file)) };
  const log = { log: { level: logLevelOf(raw) ?? 'info' } };
  if (raw.role === 'local') {
    const runtimeDir = typeof raw.runtime_dir === 'string' ? { runtime_dir: path.resolve(ctx.configDir, raw.runtime_dir) } : {};
    return { role: 'local', ...log, ...runtimeDir, outer: fillSide(raw.outer, 'outer', ctx), inner: fillSide(raw.inner, 'inner', ctx) };
  }
  const role = raw.role === 'outer' ? 'outer' : 'inner';
  const build = role === 'inner' ? buildSpec.fill(raw.build, { ...ctx, role }) : undefined;
  return { role, ...log, ...fillSide(raw, role, ctx), ...(build === undefined ? {} : { build }) };
}
