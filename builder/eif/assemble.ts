/**
 * Blobs + app rootfs + launch → EIF on disk and its PCR JSON next to it. The EIF is written to a
 * temporary name in the output directory and renamed into place only after it is complete, so
 * a failure leaves nothing at the output path (and never a previous build's PCRs next to a new
 * EIF: the JSON is renamed into place after the EIF).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Blobs } from '../blobs.js';
import { writeAppRamdisk, type AppLaunch, type RootfsEntry } from '../ramdisk/app.js';
import { writeBootstrapRamdisk } from '../ramdisk/bootstrap.js';
import { pcrsJson, type Pcrs } from './pcr.js';
import type { EifSigning } from './signature.js';
import { EifWriter, type EifResult } from './writer.js';

export interface AssembleInputs {
  blobs: Blobs;
  rootfs: Iterable<RootfsEntry>;
  launch: AppLaunch;
  metadata: Buffer;
  signing?: EifSigning;
  eifPath: string;
  /** Where the PCR JSON goes; defaults to `<eif without .eif>.pcrs.json`. */
  pcrsPath?: string;
  defaultMemoryBytes?: bigint;
  defaultCpus?: bigint;
}

export function defaultPcrsPath(eifPath: string): string {
  return `${eifPath.replace(/\.eif$/, '')}.pcrs.json`;
}

export async function writeFileAtomically(file: string, data: string | Buffer): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

export async function assembleEif(inputs: AssembleInputs): Promise<EifResult & { eifPath: string; pcrsPath: string; pcrs: Pcrs }> {
  const tmp = path.join(path.dirname(inputs.eifPath), `.${path.basename(inputs.eifPath)}.${process.pid}.tmp`);
  let result: EifResult;
  try {
    const writer = await EifWriter.create(tmp, {
      kernel: inputs.blobs.kernel,
      cmdline: inputs.blobs.cmdline,
      metadata: inputs.metadata,
      arch: inputs.blobs.arch,
      ...(inputs.defaultMemoryBytes !== undefined ? { defaultMemoryBytes: inputs.defaultMemoryBytes } : {}),
      ...(inputs.defaultCpus !== undefined ? { defaultCpus: inputs.defaultCpus } : {}),
    });
    try {
      await writer.ramdisk((sink) => writeBootstrapRamdisk(sink, inputs.blobs));
      await writer.ramdisk((sink) => writeAppRamdisk(sink, inputs.rootfs, inputs.launch));
      result = await writer.finish(inputs.signing);
    } catch (err) {
      await writer.abort();
      throw err;
    }
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  const pcrsPath = inputs.pcrsPath ?? defaultPcrsPath(inputs.eifPath);
  try {
    await fs.rename(tmp, inputs.eifPath);
    await writeFileAtomically(pcrsPath, pcrsJson(result.pcrs));
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  return { ...result, eifPath: inputs.eifPath, pcrsPath };
}
