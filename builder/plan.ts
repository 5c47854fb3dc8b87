/**
 * What a build needs, read from either of its two sources into one `BuildPlan`:
 *   - an Enclaver manifest (`build -f enclaver.yaml`): sources.app, target, signature, defaults;
 *     the inner side is the manifest translated (role inner), the release image carries the
 *     manifest itself and runs `enclaver-proxy run` (Enclaver's `enclaver run`);
 *   - our own config (`build --config proxy.yaml`): a role inner config with a `build:` section;
 *     the inner side is the file itself, the release image carries `build.outer_config` (made to
 *     launch /enclave/application.eif) and runs `enclaver-proxy --config /enclave/proxy.yaml`.
 * From here on the build does not know which it was: two sources that mean the same inner side
 * give the same enclave config bytes and so the same PCRs (./enclave-config.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { stringify, type Pair } from 'yaml';
import { KMS_KEY_ARN_PATTERN, type BuildConfig, type SignatureConfig } from '../shared/config/build.js';
import { manifestSchema, translateManifest } from '../shared/config/enclaver-manifest.js';
import { loadWithNotices } from '../shared/config/load.js';
import { ConfigSource } from '../shared/config/source.js';
import { isObject } from '../shared/config/spec.js';
import { validateAgainst } from '../shared/config/validate.js';
import { ConfigError, type ConfigProblem } from '../shared/errors/index.js';
import type { Arch } from './blobs.js';
import { BuildError } from './errors.js';

/** Where the release image keeps the EIF and its outer side's config. */
export const RELEASE_DIR = '/enclave';
export const EIF_NAME = 'application.eif';

/** What the release image carries besides the EIF: the outer side's config and how to run it. */
export interface ReleaseOuter {
  /** The file name under /enclave. */
  configName: string;
  configText: Buffer;
  /** The arguments after `enclaver-proxy` in the entrypoint. */
  args: string[];
}

export interface BuildPlan {
  /** The file the plan was read from, for messages. */
  file: string;
  /** The informational name in the EIF's metadata. */
  name: string;
  /** The app image reference (skopeo's names). */
  image: string;
  /** The release image's REPO:TAG (or HOST/REPO:TAG). */
  target: string;
  /** The architecture the source asks for; --arch overrides it. */
  arch: Arch | undefined;
  /** Absolute paths; `at` is the source's key for messages (`signature` or `build.signature`). */
  signature: (SignatureConfig & { at: string }) | undefined;
  defaults: { cpuCount: number | undefined; memoryMib: number | undefined };
  /** The inner side as a document (role inner); without `app`, the image's ENTRYPOINT+CMD runs. */
  inner: Record<string, unknown>;
  /** The release image's outer side, or the problem to report when there is none (the build then needs --no-release). */
  release: ReleaseOuter | { missing: ConfigProblem };
}

export function planFromManifest(file: string): BuildPlan {
  const source = ConfigSource.read(file);
  const problems = validateAgainst(manifestSchema, source);
  if (problems.length) throw new ConfigError(problems);
  const m = source.data as {
    name: string;
    target: string;
    sources: { app: string };
    signature?: { certificate: string; key: string };
    defaults?: { cpu_count?: number; memory_mb?: number };
  };
  const dir = path.dirname(file);
  const inner = translateManifest(source, { role: 'inner', publish: [], appArgv: undefined, enclaveCid: undefined }).data;
  return {
    file,
    name: m.name,
    image: m.sources.app,
    target: m.target,
    arch: undefined,
    signature: m.signature
      ? {
          certificate: path.resolve(dir, m.signature.certificate),
          // nitro-cli's rule for --private-key: an ARN is a KMS key, anything else a file.
          key: new RegExp(KMS_KEY_ARN_PATTERN).test(m.signature.key)
            ? { kind: 'kms', arn: m.signature.key }
            : { kind: 'file', file: path.resolve(dir, m.signature.key) },
          at: 'signature',
        }
      : undefined,
    defaults: { cpuCount: m.defaults?.cpu_count, memoryMib: m.defaults?.memory_mb },
    inner: isObject(inner) ? inner : {},
    release: { configName: 'enclaver.yaml', configText: fs.readFileSync(file), args: ['run'] },
  };
}

/** `registry/team/app:1.2` → `app`. */
function repositoryName(target: string): string {
  const last = target.slice(target.lastIndexOf('/') + 1);
  const end = last.search(/[:@]/);
  return end < 0 ? last : last.slice(0, end);
}

export const RELEASE_CONFIG = `${RELEASE_DIR}/proxy.yaml`;

/** `role` first, then every mapping's keys in byte order: the order a source was written in changes nothing. */
function keyOrder(a: Pair, b: Pair): number {
  const [x, y] = [String((a.key as { value?: unknown }).value), String((b.key as { value?: unknown }).value)];
  if (x === 'role' || y === 'role') return x === 'role' ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * A config document as the bytes the build writes (and measures): a config that `--check` prints
 * (defaults out, paths absolute) with its keys sorted, so two sources that mean the same give the
 * same bytes whatever order their keys were written in.
 */
export function canonicalYaml(doc: Record<string, unknown>): string {
  return stringify(doc, { sortMapEntries: keyOrder });
}

/**
 * The outer config the release image runs: the user's, made to launch the EIF at its place in the
 * image, with the build's defaults where the outer sets no cpu_count/memory_mib. Written with its
 * defaults out and paths absolute (as `--check` prints it), resolved against /enclave.
 */
function releaseOuter(outerFile: string, build: BuildConfig): ReleaseOuter {
  const loaded = loadWithNotices(ConfigSource.read(outerFile));
  if (loaded.config.role !== 'outer')
    throw new ConfigError([
      loaded.problemAt(['role'], `build.outer_config must be a role outer config (the release image runs the outer side)`),
    ]);
  const doc = loaded.document();
  const enclave = isObject(doc.enclave) ? doc.enclave : {};
  const launch = {
    ...enclave,
    eif: `${RELEASE_DIR}/${EIF_NAME}`,
    ...(enclave.cpu_count === undefined && build.defaults.cpuCount !== undefined ? { cpu_count: build.defaults.cpuCount } : {}),
    ...(enclave.memory_mib === undefined && build.defaults.memoryMib !== undefined ? { memory_mib: build.defaults.memoryMib } : {}),
  };
  const release = loadWithNotices(ConfigSource.synthetic(RELEASE_CONFIG, { ...doc, enclave: launch }));
  const text = `# Generated by enclaver-proxy build from ${path.basename(outerFile)}: the outer side, launching ${launch.eif}.\n`;
  return {
    configName: path.basename(RELEASE_CONFIG),
    configText: Buffer.from(text + canonicalYaml(release.document())),
    args: ['--config', RELEASE_CONFIG],
  };
}

export function planFromConfig(file: string): BuildPlan {
  const source = ConfigSource.read(file);
  const loaded = loadWithNotices(source);
  const build = loaded.build;
  if (loaded.config.role !== 'inner' || build === undefined)
    throw new BuildError(
      'manifest_invalid',
      `${file}: no \`build:\` section in a role inner config: add one (image, target, …; see docs/builder.md), or build from an ` +
        'Enclaver manifest with -f',
      { file },
    );
  const inner = Object.fromEntries(Object.entries(source.data as Record<string, unknown>).filter(([key]) => key !== 'build'));
  return {
    file,
    name: build.name ?? repositoryName(build.target),
    image: build.image,
    target: build.target,
    arch: build.arch,
    signature: build.signature ? { ...build.signature, at: 'build.signature' } : undefined,
    defaults: build.defaults,
    inner,
    release: build.outerConfig
      ? releaseOuter(build.outerConfig, build)
      : {
          missing: loaded.problemAt(
            ['build'],
            'the release image runs the outer side: name its config in `build.outer_config` (role outer), or pass --no-release',
          ),
        },
  };
}
