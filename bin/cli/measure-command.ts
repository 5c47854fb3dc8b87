/**
 * `enclaver-proxy measure EIF [--json | --kms-policy]`: the PCRs only, recomputed from the file,
 * for a KMS key policy or a CI comparison. `--kms-policy` prints the `Condition` block a KMS key
 * policy statement needs so that only an enclave with these measurements may use the key.
 * A corrupt EIF (CRC mismatch) is refused: its PCRs would describe nothing that can run.
 */
import { parseArgs } from 'node:util';
import { readEif } from '../../builder/eif/reader.js';
import type { Pcrs } from '../../builder/eif/pcr.js';
import { BuildError } from '../../builder/errors.js';

export const MEASURE_USAGE = `Usage: enclaver-proxy measure EIF [--json | --kms-policy]

Prints the enclave image's PCRs (SHA-384, recomputed from the file):
  PCR0 kernel, cmdline and ramdisks    PCR1 kernel, cmdline and bootstrap ramdisk
  PCR2 the app ramdisk                 PCR8 the signing certificate (signed images only)
Options:
  --json         {"Measurements": {...}} as build writes it next to the EIF
  --kms-policy   the Condition block for a KMS key policy (kms:RecipientAttestation:PCRn)
`;

export function kmsPolicyCondition(pcrs: Pcrs): Record<string, unknown> {
  const conditions: Record<string, string> = {};
  for (const [pcr, value] of Object.entries(pcrs)) conditions[`kms:RecipientAttestation:${pcr}`] = value as string;
  return { Condition: { StringEqualsIgnoreCase: conditions } };
}

export async function measureCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: { json: { type: 'boolean' }, 'kms-policy': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
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
  if (positionals.length !== 1 || (values.json && values['kms-policy'])) {
    process.stderr.write(`enclaver-proxy measure: give one EIF file and at most one of --json, --kms-policy\n\n${MEASURE_USAGE}`);
    return 2;
  }
  let pcrs: Pcrs;
  try {
    const eif = await readEif(positionals[0]!);
    if (!eif.crc.ok) throw new BuildError('eif_crc_mismatch', `${eif.file}: CRC mismatch: the file is corrupt`, { file: eif.file });
    pcrs = eif.pcrs;
  } catch (err) {
    if (!(err instanceof BuildError)) throw err;
    process.stderr.write(`enclaver-proxy measure: ${err.message}\n`);
    return 1;
  }
  if (values['kms-policy']) process.stdout.write(`${JSON.stringify(kmsPolicyCondition(pcrs), null, 2)}\n`);
  else if (values.json) process.stdout.write(`${JSON.stringify({ Measurements: { HashAlgorithm: 'Sha384 { ... }', ...pcrs } }, null, 2)}\n`);
  else process.stdout.write(Object.entries(pcrs).map(([k, v]) => `${k}: ${v}\n`).join(''));
  return 0;
}
