/**
 * Ramdisk 1, the app (PCR2), in the layout AWS's init expects: the container filesystem under
 * `rootfs/`, plus `cmd` (one argv element per line) and `env` (one KEY=VALUE per line) at the
 * archive root; init reads and deletes both, chroots into /rootfs and execs the command.
 * init mounts proc, sysfs, /dev, /run and /tmp, so those directories must exist in rootfs.
 *
 * Order is fixed: `cmd`, `env`, `rootfs`, then the tree in byte order of its paths (which puts
 * every directory before its contents). Every mtime is FIXED_MTIME: the measured bytes depend
 * on the image's content, modes and owners, never on when its layers were built.
 */
import { CpioWriter, type ByteSink, type CpioEntry } from '../cpio/newc.js';
import { BuildError } from '../errors.js';

/** 1970-01-01: file times carry no information the enclave needs, and would break reproducibility. */
export const FIXED_MTIME = 0;

/** Directories AWS init mounts on after its chroot. */
export const INIT_MOUNT_POINTS = ['dev', 'proc', 'run', 'sys', 'tmp', 'var'] as const;

/** A rootfs entry: its path is relative to the root, without a leading slash. */
export type RootfsEntry =
  | { kind: 'directory'; path: string; mode: number; uid: number; gid: number }
  | { kind: 'symlink'; path: string; target: string; uid: number; gid: number }
  | { kind: 'file'; path: string; mode: number; uid: number; gid: number; size: number; data: Buffer | (() => AsyncIterable<Buffer>) };

export interface AppLaunch {
  argv: string[];
  env: string[];
}

function checkLines(values: string[], what: string): void {
  for (const v of values) {
    if (v.includes('\n'))
      throw new BuildError('image_invalid', `${what} value ${JSON.stringify(v)} contains a newline; AWS init reads ${what} line by line`, {
        what,
      });
  }
}

export function launchFiles(launch: AppLaunch): { cmd: Buffer; env: Buffer } {
  if (launch.argv.length === 0) throw new BuildError('image_invalid', 'the enclave command is empty (no ENTRYPOINT or CMD)');
  checkLines(launch.argv, 'cmd');
  checkLines(launch.env, 'env');
  const lines = (xs: string[]) => Buffer.from(xs.map((x) => `${x}\n`).join(''), 'utf8');
  return { cmd: lines(launch.argv), env: lines(launch.env) };
}

/** Compare paths byte-wise (UTF-8), the same on every machine and locale. */
export function comparePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Writes the app ramdisk. `entries` must already be sorted with `comparePaths` and contain the
 * init mount points (see `ensureMountPoints`).
 */
export async function writeAppRamdisk(sink: ByteSink, entries: Iterable<RootfsEntry>, launch: AppLaunch): Promise<void> {
  const { cmd, env } = launchFiles(launch);
  const cpio = new CpioWriter(sink);
  const root = { uid: 0, gid: 0, mtime: FIXED_MTIME };
  await cpio.add({ kind: 'file', name: 'cmd', mode: 0o644, size: cmd.length, data: cmd, ...root });
  await cpio.add({ kind: 'file', name: 'env', mode: 0o644, size: env.length, data: env, ...root });
  await cpio.add({ kind: 'directory', name: 'rootfs', mode: 0o755, ...root });
  for (const e of entries) {
    const name = `rootfs/${e.path}`;
    const owner = { uid: e.uid, gid: e.gid, mtime: FIXED_MTIME };
    let entry: CpioEntry;
    if (e.kind === 'directory') entry = { kind: 'directory', name, mode: e.mode, ...owner };
    else if (e.kind === 'symlink') entry = { kind: 'symlink', name, target: e.target, ...owner };
    else entry = { kind: 'file', name, mode: e.mode, size: e.size, data: e.data, ...owner };
    await cpio.add(entry);
  }
  await cpio.finish();
}

/** Adds the init mount points that the image lacks (root-owned, 0755) and returns the sorted list. */
export function ensureMountPoints(entries: RootfsEntry[]): RootfsEntry[] {
  const have = new Set(entries.map((e) => e.path));
  const out = [...entries];
  for (const dir of INIT_MOUNT_POINTS) if (!have.has(dir)) out.push({ kind: 'directory', path: dir, mode: 0o755, uid: 0, gid: 0 });
  return out.sort((a, b) => comparePaths(a.path, b.path));
}
