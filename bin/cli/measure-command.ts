/**
 * `enclaver-proxy measure EIF|IMAGE [--json | --kms-policy]`: the PCRs only, for a KMS key policy
 * or a CI comparison. An EIF's are recomputed from the file; an app image's are those the build
 * would produce (`-f enclaver.yaml` or `-c proxy.yaml`, built into a temporary directory that is then removed). `--kms-policy` prints the `Condition` block a KMS key
 * policy statement needs so that only an enclave with these measurements may use the key.
 * A corrupt EIF (CRC mismatch) is refused: its PCRs would describe nothing that can run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, formatProblem } from '../../shared/errors/index.js';
import { readEif } from '../../builder/eif/reader.js';
import type { Pcrs } from '../../builder/eif/pcr.js';
import { BuildError } from '../../builder/errors.js';

export const MEASURE_USAGE = `Usage: enclaver-proxy measure EIF [--json | --kms-policy]
       enclaver-proxy measure IMAGE [-f enclaver.yaml | -c proxy.yaml] [--blobs DIR] [--json | --kms-policy]

Prints the enclave image's PCRs (SHA-384, recomputed from the file), or for an app image the
PCRs its build would have (built in a temporary directory, nothing kept):
  PCR0 kernel, cmdline and ramdisks    PCR1 kernel, cmdline and bootstrap ramdisk
  PCR2 the app ramdisk                 PCR8 the signing certificate (signed images only)
Options:
  -f, --file F   the manifest, for an IMAGE (default: enclaver.yaml); --blobs, --arch, --node and
                 --runtime-dir as for build
  -c, --config F a role inner proxy.yaml with a build: section, instead of -f
  --json         {"Measurements": {...}} as build writes it next to the EIF
  --kms-policy   the Condition block for a KMS key policy (kms:RecipientAttestation:PCRn)
`;

export function kmsPolicyCondition(pcrs: Pcrs): Record<string, unknown> {
  const conditions: Record<string, string> = {};
  for (const [pcr, value] of Object.entries(pcrs)) conditions[`kms:RecipientAttestation:${pcr}`] = value as string;
  return { Condition: { StringEqualsIgnoreCase: conditions } };
}

function isEif(file: string): boolean {
  try {
    const fd = fs.openSync(file, 'r');
    const magic = Buffer.alloc(4);
    fs.readSync(fd, magic, 0, 4, 0);
    fs.closeSync(fd);
    return magic.toString('latin1') === '.eif';
  } catch {
    return false;
  }
}

interface ImageMeasureOptions {
  file?: string;
  config?: string;
  blobs?: string;
  arch?: string;
  node?: string;
  'runtime-dir'?: string;
}

async function measureImage(image: string, o: ImageMeasureOptions, env: { packageRoot: string; version: string }): Promise<Pcrs> {
  const { buildEif } = await import('../../builder/build.js');
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'enclaver-measure-'));
  try {
    const result = await buildEif({
      source: o.config !== undefined ? { kind: 'config', file: o.config } : { kind: 'manifest', file: o.file ?? 'enclaver.yaml' },
      outDir,
      packageRoot: env.packageRoot,
      toolVersion: env.version,
      image,
      noRelease: true,
      measureOnly: true,
      ...(o.arch === 'aarch64' ? { arch: 'aarch64' as const } : {}),
      ...(o.blobs ? { blobs: o.blobs } : {}),
      ...(o.node ? { node: o.node } : {}),
      ...(o['runtime-dir'] ? { runtimeDir: o['runtime-dir'] } : {}),
    });
    return result.pcrs;
  } finally {
    fs.rmSync(outDir, { recursive: true, force: true });
  }
}

export async function measureCommand(args: string[], env: { packageRoot: string; version: string }): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: 'boolean' },
        'kms-policy': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        file: { type: 'string', short: 'f' },
        config: { type: 'string', short: 'c' },
        blobs: { type: 'string' },
        arch: { type: 'string' },
        node: { type: 'string' },
        'runtime-dir': { type: 'string' },
      },
    });
  } catch (err) {
    process.stderr.write(`enclaver-proxy measure: ${(err as Error).message}\n\n${MEASURE_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(MEASURE_USAGE);
    return 0;
  }
  const [target] = positionals;
  if (positionals.length !== 1 || target === undefined || (values.json && values['kms-policy'])) {
    process.stderr.write(`enclaver-proxy measure: give one EIF or image and at most one of --json, --kms-policy\n\n${MEASURE_USAGE}`);
    return 2;
  }
  let pcrs: Pcrs;
  try {
    if (isEif(target) || target.endsWith('.eif')) {
      const eif = await readEif(target);
      if (!eif.crc.ok) throw new BuildError('eif_crc_mismatch', `${eif.file}: CRC mismatch: the file is corrupt`, { file: eif.file });
      pcrs = eif.pcrs;
    } else {
      pcrs = await measureImage(target, values, env);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(
        `enclaver-proxy measure: invalid ${values.config !== undefined ? 'config' : 'manifest'}\n${err.problems.map((p) => `  ${formatProblem(p)}`).join('\n')}\n`,
      );
      return 2;
    }
    if (!(err instanceof BuildError)) throw err;
    process.stderr.write(`enclaver-proxy measure: ${err.message}\n`);
    return 1;
  }
  if (values['kms-policy']) process.stdout.write(`${JSON.stringify(kmsPolicyCondition(pcrs), null, 2)}\n`);
  else if (values.json)
    process.stdout.write(`${JSON.stringify({ Measurements: { HashAlgorithm: 'Sha384 { ... }', ...pcrs } }, null, 2)}\n`);
  else
    process.stdout.write(
      Object.entries(pcrs)
        .map(([k, v]) => `${k}: ${v}\n`)
        .join(''),
    );
  return 0;
}
