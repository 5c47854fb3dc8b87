/**
 * Verify-before-run: recompute an EIF's PCRs from its bytes and compare them with a PCR JSON
 * file (the one `build` writes next to the EIF, nitro-cli's `{"Measurements": {...}}`, or a flat
 * `{"PCR0": …}` map). Every PCR named in the file must match; a PCR the file names that the
 * image does not have (PCR8 of an unsigned image) is a mismatch with actual "absent".
 * A corrupt EIF (bad CRC) throws: it must not run whatever its PCRs say.
 */
import fs from 'node:fs/promises';
import { BuildError } from '../errors.js';
import { readEif } from './reader.js';

export interface PcrMismatch {
  pcr: string;
  expected: string;
  actual: string;
}

export async function readExpectedPcrs(expectedJsonPath: string): Promise<Record<string, string>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await fs.readFile(expectedJsonPath, 'utf8'));
  } catch (err) {
    throw new BuildError(
      'pcr_file_invalid',
      `${expectedJsonPath}: cannot read PCR JSON (${(err as Error).message})`,
      { file: expectedJsonPath },
      { cause: err },
    );
  }
  const root =
    parsed && typeof parsed === 'object' && 'Measurements' in parsed ? (parsed as { Measurements: unknown }).Measurements : parsed;
  if (!root || typeof root !== 'object')
    throw new BuildError('pcr_file_invalid', `${expectedJsonPath}: expected an object of PCR values`, { file: expectedJsonPath });
  const expected: Record<string, string> = {};
  for (const [key, value] of Object.entries(root)) {
    if (!/^PCR[0-9]+$/.test(key)) continue;
    if (typeof value !== 'string' || !/^[0-9a-fA-F]{96}$/.test(value)) {
      throw new BuildError('pcr_file_invalid', `${expectedJsonPath}: ${key} must be 96 hex digits (SHA-384)`, {
        file: expectedJsonPath,
        pcr: key,
      });
    }
    expected[key] = value.toLowerCase();
  }
  if (Object.keys(expected).length === 0)
    throw new BuildError('pcr_file_invalid', `${expectedJsonPath}: names no PCR (expected keys like "PCR0")`, { file: expectedJsonPath });
  return expected;
}

export async function verifyEifPcrs(
  eifPath: string,
  expectedJsonPath: string,
): Promise<{ ok: true } | { ok: false; mismatches: PcrMismatch[] }> {
  const expected = await readExpectedPcrs(expectedJsonPath);
  const eif = await readEif(eifPath);
  if (!eif.crc.ok) {
    throw new BuildError(
      'eif_crc_mismatch',
      `${eifPath}: CRC mismatch (header ${eif.crc.stored.toString(16)}, bytes ${eif.crc.computed.toString(16)}): the file is corrupt`,
      { file: eifPath },
    );
  }
  const actual = eif.pcrs as unknown as Record<string, string | undefined>;
  const mismatches: PcrMismatch[] = [];
  for (const [pcr, value] of Object.entries(expected)) {
    const got = actual[pcr] ?? 'absent';
    if (got !== value) mismatches.push({ pcr, expected: value, actual: got });
  }
  return mismatches.length === 0 ? { ok: true } : { ok: false, mismatches };
}
