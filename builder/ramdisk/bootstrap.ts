/**
 * Ramdisk 0, the bootstrap (measured alone into PCR1 with the kernel and cmdline): exactly
 * `dev/`, `init` and `nsm.ko`, as nitro-cli's linuxkit YAML lays it out, all owned by root with
 * the fixed mtime. It depends on the blobs only, so PCR1 identifies the blob set.
 */
import { CpioWriter, type ByteSink } from '../cpio/newc.js';
import type { Blobs } from '../blobs.js';
import { FIXED_MTIME } from './app.js';

export async function writeBootstrapRamdisk(sink: ByteSink, blobs: Pick<Blobs, 'init' | 'nsmKo'>): Promise<void> {
  const cpio = new CpioWriter(sink);
  const root = { uid: 0, gid: 0, mtime: FIXED_MTIME };
  await cpio.add({ kind: 'directory', name: 'dev', mode: 0o755, ...root });
  await cpio.add({ kind: 'file', name: 'init', mode: 0o755, size: blobs.init.length, data: blobs.init, ...root });
  await cpio.add({ kind: 'file', name: 'nsm.ko', mode: 0o755, size: blobs.nsmKo.length, data: blobs.nsmKo, ...root });
  await cpio.finish();
}
