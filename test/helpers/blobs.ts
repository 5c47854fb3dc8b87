/**
 * Stand-in Nitro blobs for structure and PCR tests: a fake kernel, a cmdline with the trailing
 * newline the real file has, an init and an nsm.ko, in a fresh directory. They are not bootable;
 * the QEMU test uses a real kernel.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const STAND_IN_CMDLINE = 'reboot=k panic=30 pci=off nomodules console=ttyS0 random.trust_cpu=on';

/** Deterministic bytes, so two calls give identical blobs. */
export function pseudoRandom(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let off = 0, i = 0; off < size; i++) {
    const block = crypto.createHash('sha512').update(`${seed}:${i}`).digest();
    off += block.copy(out, off);
  }
  return out;
}

export function makeStandInBlobs(opts: { arch?: 'x86_64' | 'aarch64'; dir?: string } = {}): string {
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'blobs-'));
  fs.mkdirSync(dir, { recursive: true });
  const kernel = opts.arch === 'aarch64' ? 'Image' : 'bzImage';
  fs.writeFileSync(path.join(dir, kernel), pseudoRandom('kernel', 300_001));
  fs.writeFileSync(
    path.join(dir, `${kernel}.config`),
    '#\n# Automatically generated file; DO NOT EDIT.\n# Linux/x86_64 4.14.256-209.484.amzn2 Kernel Configuration\n',
  );
  fs.writeFileSync(path.join(dir, 'cmdline'), `${STAND_IN_CMDLINE}\n`);
  fs.writeFileSync(path.join(dir, 'init'), pseudoRandom('init', 70_003));
  fs.writeFileSync(path.join(dir, 'nsm.ko'), pseudoRandom('nsm', 20_002));
  return dir;
}
