/**
 * `enclaver-proxy build -f enclaver.yaml | --config proxy.yaml [--out DIR] …`: app image + an
 * Enclaver manifest or our own config's `build:` section → EIF, PCR JSON and the release image,
 * without a Docker daemon. Prints the PCRs the way Enclaver does. Exit 0 on
 * success, 1 when the build fails (the error names the input), 2 on usage or manifest errors.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, formatProblem } from '../../shared/errors/index.js';
import { buildEif, type BuildResult } from '../../builder/build.js';
import { BuildError } from '../../builder/errors.js';
import type { LayerProgress } from '../../builder/image/layers.js';
import { pushRelease, type PushResult } from '../../builder/oci/push.js';

export const BUILD_USAGE = `Usage: enclaver-proxy build -f enclaver.yaml [options]
       enclaver-proxy build --config proxy.yaml [options]

Builds the enclave image (EIF) from the manifest's sources.app (or the config's build.image),
prints its PCRs and writes them as JSON next to it, then the release image. No Docker daemon, no
nitro-cli. The image may be oci:DIR[:REF], oci-archive:FILE, docker-archive:FILE,
docker://HOST/REPO:TAG or a bare reference (registry).

Options:
  -f, --file FILE        the Enclaver manifest (default: enclaver.yaml)
  -c, --config FILE      a role inner proxy.yaml with a build: section (instead of -f)
      --out DIR          where the outputs go (default: .)
      --image REF        build from REF instead of sources.app / build.image
      --blobs DIR        Nitro blobs (default: $NITRO_CLI_BLOBS or /usr/share/nitro_enclaves/blobs)
      --arch ARCH        x86_64 (default) or aarch64
      --node FILE        the Node.js binary to put in the enclave (default: this one)
      --runtime-dir DIR  a pinned runtime: DIR/bin/node and DIR/lib/ (loader and libraries)
      --no-release       write the EIF and its PCRs only, not the release image
      --push             push the release image to its target (HOST/REPO:TAG) over the registry
                         API; credentials from the Docker config, as for pulls
      --json             print the result as JSON
Environment:
  SOURCE_DATE_EPOCH      the build time recorded in the EIF metadata (default: 0)
`;

function human(n: number): string {
  return n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(2)} GiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;
}

/** A one-line progress bar on a terminal; nothing when stderr is a pipe or file. */
export function progressBar(): LayerProgress | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = 0;
  return ({ layer, layers, bytes, totalBytes }) => {
    const now = Date.now();
    if (now - last < 100 && bytes !== totalBytes) return;
    last = now;
    const width = 30;
    const frac = totalBytes ? Math.min(1, bytes / totalBytes) : 0;
    const bar = totalBytes ? `[${'#'.repeat(Math.round(frac * width)).padEnd(width)}] ${(frac * 100).toFixed(0).padStart(3)}%` : '';
    process.stderr.write(`\r\x1b[2Klayer ${layer}/${layers} ${bar} ${human(bytes)}${totalBytes ? ` / ${human(totalBytes)}` : ''}`);
  };
}

/**
 * Push, or say why not: null when the push failed (the outputs stay; the tag was not written, so
 * the registry holds no half image under it).
 */
async function pushOrExplain(layoutDir: string, target: string): Promise<PushResult | null> {
  try {
    return await pushRelease(layoutDir, target);
  } catch (err) {
    if (!(err instanceof BuildError)) throw err;
    process.stderr.write(
      `enclaver-proxy build: ${err.message}\nenclaver-proxy build: the build's outputs are complete; the release image was NOT pushed ` +
        `(${target} was not written). Push it again with --push, or with skopeo copy oci:${layoutDir}:TAG docker://${target}\n`,
    );
    return null;
  }
}

export function printResult(r: BuildResult, json: boolean, pushed?: PushResult): void {
  if (json) {
    const release = r.release
      ? {
          Layout: `oci:${r.release.layoutDir}:${r.release.ref}`,
          Archive: r.release.archivePath,
          Digest: r.release.manifestDigest,
          Pushed: pushed ? pushed.reference : null,
        }
      : null;
    process.stdout.write(
      `${JSON.stringify({ Eif: r.eifPath, PcrsFile: r.pcrsPath, Image: r.image.text, ImageConfig: r.image.configDigest, Measurements: r.pcrs, Release: release }, null, 2)}\n`,
    );
    return;
  }
  const lines = [
    `Built ${r.eifPath} (${human(Number(r.stats.eifBytes))}) from ${r.image.text}`,
    ...Object.entries(r.pcrs).map(([k, v]) => `${k}: ${v}`),
    `PCRs written to ${r.pcrsPath}`,
    ...(r.release
      ? [
          `Release image: oci:${r.release.layoutDir}:${r.release.ref} and oci-archive:${r.release.archivePath} (${r.release.manifestDigest})`,
        ]
      : []),
    ...(pushed
      ? [`Pushed ${pushed.reference} (${pushed.digest}; ${pushed.uploaded} blobs uploaded, ${pushed.skipped} already there)`]
      : []),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

export async function buildCommand(args: string[], env: { packageRoot: string; version: string }): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: false,
      strict: true,
      options: {
        file: { type: 'string', short: 'f' },
        config: { type: 'string', short: 'c' },
        out: { type: 'string' },
        image: { type: 'string' },
        blobs: { type: 'string' },
        arch: { type: 'string' },
        node: { type: 'string' },
        'runtime-dir': { type: 'string' },
        json: { type: 'boolean' },
        'no-release': { type: 'boolean' },
        push: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    process.stderr.write(`enclaver-proxy build: ${(err as Error).message}\n\n${BUILD_USAGE}`);
    return 2;
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(BUILD_USAGE);
    return 0;
  }
  if (v.file !== undefined && v.config !== undefined) {
    process.stderr.write('enclaver-proxy build: -f (an Enclaver manifest) and --config (a proxy.yaml) name the same thing: give one\n');
    return 2;
  }
  if (v.push && v['no-release']) {
    process.stderr.write('enclaver-proxy build: --push pushes the release image, which --no-release leaves out: give one\n');
    return 2;
  }
  if (v.arch !== undefined && v.arch !== 'x86_64' && v.arch !== 'aarch64') {
    process.stderr.write(`enclaver-proxy build: --arch must be x86_64 or aarch64, not "${v.arch}"\n`);
    return 2;
  }
  const progress = progressBar();
  try {
    const result = await buildEif({
      source: v.config !== undefined ? { kind: 'config', file: v.config } : { kind: 'manifest', file: v.file ?? 'enclaver.yaml' },
      outDir: path.resolve(v.out ?? '.'),
      packageRoot: env.packageRoot,
      toolVersion: env.version,
      ...(v.arch ? { arch: v.arch as 'x86_64' | 'aarch64' } : {}),
      ...(v.image ? { image: v.image } : {}),
      ...(v.blobs ? { blobs: v.blobs } : {}),
      ...(v.node ? { node: v.node } : {}),
      ...(v['runtime-dir'] ? { runtimeDir: v['runtime-dir'] } : {}),
      ...(v['no-release'] ? { noRelease: true } : {}),
      ...(progress ? { progress } : {}),
    });
    if (progress) process.stderr.write('\r\x1b[2K');
    const pushed = v.push && result.release ? await pushOrExplain(result.release.layoutDir, result.plan.target) : undefined;
    if (pushed === null) return 1;
    printResult(result, v.json === true, pushed);
    return 0;
  } catch (err) {
    if (progress) process.stderr.write('\n');
    if (err instanceof ConfigError) {
      process.stderr.write(
        `enclaver-proxy build: invalid ${v.config !== undefined ? 'config' : 'manifest'}\n${err.problems.map((p) => `  ${formatProblem(p)}`).join('\n')}\n`,
      );
      return 2;
    }
    if (err instanceof BuildError) {
      process.stderr.write(`enclaver-proxy build: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
