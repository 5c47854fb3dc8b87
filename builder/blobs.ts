/**
 * The Nitro blobs: the kernel, its cmdline, AWS's init and the NSM driver, from nitro-cli's blobs
 * directory (`/usr/share/nitro_enclaves/blobs`, or `NITRO_CLI_BLOBS`, or `--blobs DIR`). The kernel
 * file is `bzImage` on x86_64 and `Image` on aarch64; `<kernel>.config` is optional and only
 * feeds the metadata (OS and kernel version), as in nitro-cli. A missing file is named.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BuildError } from './errors.js';

export const DEFAULT_BLOBS_DIR = '/usr/share/nitro_enclaves/blobs';

export type Arch = 'x86_64' | 'aarch64';

export interface Blobs {
  dir: string;
  arch: Arch;
  kernel: Buffer;
  /** Trimmed like nitro-cli (the file ends in a newline; the section holds no newline). */
  cmdline: Buffer;
  init: Buffer;
  nsmKo: Buffer;
  /** "Linux/x86_64 4.14.256-…" → os "Linux", version "4.14.256-…", when the config exists. */
  kernelInfo: { os: string; version: string } | undefined;
}

export function blobsDir(explicit: string | undefined): string {
  return explicit ?? process.env.NITRO_CLI_BLOBS ?? DEFAULT_BLOBS_DIR;
}

export function kernelFileName(arch: Arch): string {
  return arch === 'aarch64' ? 'Image' : 'bzImage';
}

function readBlob(dir: string, name: string, why: string): Buffer {
  const file = path.join(dir, name);
  try {
    return fs.readFileSync(file);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : (err as Error).message;
    throw new BuildError(
      'blob_missing',
      `blobs: ${file} ${reason} (${why}); install aws-nitro-enclaves-cli or pass --blobs DIR`,
      { file, dir },
      { cause: err },
    );
  }
}

/** Line 3 of a kernel config: "# Linux/x86_64 4.14.256-209.484.amzn2 Kernel Configuration". */
export function parseKernelConfig(text: string): { os: string; version: string } | undefined {
  const line = text.split('\n')[2] ?? '';
  const [, os, version] = /^#\s*([^/\s]+)\/\S+\s+(\S+)/.exec(line) ?? [];
  return os !== undefined && version !== undefined ? { os, version } : undefined;
}

export function loadBlobs(dir: string, arch: Arch): Blobs {
  const kernelName = kernelFileName(arch);
  const kernel = readBlob(dir, kernelName, `the ${arch} enclave kernel`);
  const cmdline = Buffer.from(readBlob(dir, 'cmdline', 'the kernel command line').toString('utf8').trim(), 'utf8');
  const init = readBlob(dir, 'init', "AWS's enclave init, ramdisk 0");
  const nsmKo = readBlob(dir, 'nsm.ko', 'the NSM driver, ramdisk 0');
  let kernelInfo: Blobs['kernelInfo'];
  const configFile = path.join(dir, `${kernelName}.config`);
  if (fs.existsSync(configFile)) kernelInfo = parseKernelConfig(fs.readFileSync(configFile, 'utf8'));
  return { dir, arch, kernel, cmdline, init, nsmKo, kernelInfo };
}
