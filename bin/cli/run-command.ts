/**
 * `enclaver-proxy run [RELEASE_DIR|EIF] [-p HOST:ENCLAVE …] [--debug] [--verify-before-run PCRS.json]`:
 * Enclaver's `enclaver run`. The outer side of an Enclaver manifest, launching and supervising the
 * enclave with nitro-cli. With no argument it runs the release image's layout
 * (/enclave/application.eif and /enclave/enclaver.yaml): this is the release image's entrypoint.
 * Exits with the app's exit code; 1 when the enclave cannot start or its PCRs are not the expected
 * ones; 2 for usage and config errors.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { parsePublish, type Publish } from '../../shared/config/enclaver-manifest.js';
import { loadConfig } from '../../shared/config/load.js';
import type { OuterConfig } from '../../shared/config/types.js';
import { ConfigError, formatProblem, messageOf } from '../../shared/errors/index.js';
import { logger, setLogSide } from '../../shared/log/logger.js';
import { runOuter } from '../../proxy-outer/main.js';

export const RELEASE_DIR = '/enclave';
const EIF_NAME = 'application.eif';
const MANIFEST_NAME = 'enclaver.yaml';
const DEFAULT_CPUS = 2;
const DEFAULT_MEMORY_MIB = 4096;
const READY_TIMEOUT_MS = 5 * 60_000;
const WATCH_INTERVAL_MS = 5000;

export const RUN_USAGE = `Usage: enclaver-proxy run [RELEASE_DIR|EIF] [options]

Launches the enclave with nitro-cli and runs the outer proxy of its Enclaver manifest: ingress
published on this host, the egress relay, the IMDS relay, the enclave's logs and status. Exits
with the app's exit code. Without RELEASE_DIR it uses ${RELEASE_DIR}/${EIF_NAME} and
${RELEASE_DIR}/${MANIFEST_NAME} (the release image's layout).

Options:
  -p, --publish [IP:]HOST_PORT:ENCLAVE_PORT   publish an ingress port (repeatable)
      --debug                   debug mode: the enclave's console in the logs (PCRs read as zeros)
      --verify-before-run FILE  refuse to launch unless the EIF's PCRs match FILE (build's
                                PCR JSON, or nitro-cli's {"Measurements": …})
      --manifest FILE           the Enclaver manifest (default: enclaver.yaml beside the EIF)
      --cpu-count N             vCPUs (default: the manifest's defaults.cpu_count, else ${DEFAULT_CPUS})
      --memory MIB              memory (default: the manifest's defaults.memory_mb, else ${DEFAULT_MEMORY_MIB})
      --enclave-cid CID         the enclave's CID (default 16)
      --admin ADDR              the outer's admin endpoint ('none' disables it; default
                                tcp://127.0.0.1:9902)
`;

function usage(message: string): number {
  process.stderr.write(`enclaver-proxy run: ${message}\n\n${RUN_USAGE}`);
  return 2;
}

/** The EIF and manifest a positional argument (or none) names. */
export function resolveRelease(target: string | undefined, manifest: string | undefined): { eif: string; manifest: string } {
  const where = target ?? RELEASE_DIR;
  const isDir = fs.existsSync(where) && fs.statSync(where).isDirectory();
  const eif = isDir ? path.join(where, EIF_NAME) : where;
  return { eif, manifest: manifest ?? path.join(isDir ? where : path.dirname(where), MANIFEST_NAME) };
}

function positiveInt(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[1-9][0-9]*$/.test(text)) throw new Error(`${name} must be a positive integer, not "${text}"`);
  return Number(text);
}

/** The manifest's `defaults` (cpu_count, memory_mb); the loader validated the rest. */
function manifestDefaults(file: string): { cpu_count?: number; memory_mb?: number } {
  const doc = parseYaml(fs.readFileSync(file, 'utf8')) as { defaults?: { cpu_count?: number; memory_mb?: number } } | null;
  return doc?.defaults ?? {};
}

export async function runCommand(argv: string[]): Promise<number> {
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        publish: { type: 'string', short: 'p', multiple: true },
        debug: { type: 'boolean' },
        'verify-before-run': { type: 'string' },
        manifest: { type: 'string' },
        'cpu-count': { type: 'string' },
        memory: { type: 'string' },
        'enclave-cid': { type: 'string' },
        admin: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    return usage((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(RUN_USAGE);
    return 0;
  }
  if (positionals.length > 1) return usage(`one RELEASE_DIR or EIF, not ${positionals.length}`);
  let publish: Publish[];
  let cpuCount: number | undefined;
  let memoryMib: number | undefined;
  let enclaveCid: number | undefined;
  try {
    publish = (values.publish ?? []).map(parsePublish);
    cpuCount = positiveInt(values['cpu-count'], '--cpu-count');
    memoryMib = positiveInt(values.memory, '--memory');
    enclaveCid = positiveInt(values['enclave-cid'], '--enclave-cid');
    if (enclaveCid === 2) throw new Error('--enclave-cid 2 is the hypervisor host, never an enclave');
  } catch (err) {
    return usage((err as Error).message);
  }
  const release = resolveRelease(positionals[0], values.manifest);
  if (!fs.existsSync(release.eif))
    return usage(`no enclave image at ${release.eif}${positionals[0] ? '' : " (the release image's layout; pass RELEASE_DIR or EIF)"}`);
  if (!fs.existsSync(release.manifest)) return usage(`no Enclaver manifest at ${release.manifest}: pass --manifest FILE`);

  setLogSide('outer');
  const log = logger('run');
  const verify = values['verify-before-run'];
  if (verify !== undefined) {
    try {
      const { verifyEifPcrs } = await import('../../builder/eif/verify.js');
      const verdict = await verifyEifPcrs(release.eif, verify);
      if (!verdict.ok) {
        for (const m of verdict.mismatches) log.error({ pcr: m.pcr, expected: m.expected, actual: m.actual }, 'PCR mismatch');
        log.fatal(
          { eif: release.eif, expected: verify, mismatched: verdict.mismatches.map((m) => m.pcr) },
          'the enclave image is not the one expected; not launching it',
        );
        return 1;
      }
      log.info({ eif: release.eif, expected: verify }, "the enclave image's PCRs match; launching");
    } catch (err) {
      log.fatal({ err: messageOf(err) }, 'cannot verify the enclave image; not launching it');
      return 1;
    }
  }

  let config: OuterConfig;
  try {
    config = loadConfig(release.manifest, {
      role: 'outer',
      publish,
      ...(enclaveCid !== undefined ? { enclaveCid } : {}),
      ...(values.admin !== undefined ? { admin: values.admin === 'none' ? null : values.admin } : {}),
    }) as OuterConfig;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`enclaver-proxy: invalid manifest\n${err.problems.map((p) => `  ${formatProblem(p)}`).join('\n')}\n`);
      return 2;
    }
    throw err;
  }
  const defaults = manifestDefaults(release.manifest);
  const launch = {
    eif: path.resolve(release.eif),
    cpuCount: cpuCount ?? defaults.cpu_count ?? DEFAULT_CPUS,
    memoryMib: memoryMib ?? defaults.memory_mb ?? DEFAULT_MEMORY_MIB,
    debugMode: values.debug === true,
    readyTimeoutMs: READY_TIMEOUT_MS,
    watchIntervalMs: WATCH_INTERVAL_MS,
  };
  // The config is read-only once made: the launch settings go into a copy.
  return runOuter({ ...config, enclave: { ...config.enclave, launch } });
}
