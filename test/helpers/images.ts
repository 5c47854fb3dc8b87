/**
 * App images for builder tests, made by tools we did not write: umoci builds OCI layouts layer by
 * layer (each layer = unpack, change the rootfs, repack: deletions become whiteouts), skopeo
 * converts them to oci-archive / docker-archive and pushes them to a registry. For hostile
 * layers that no honest tool writes (`../` paths, escaping symlinks), `rawLayout` assembles an
 * OCI layout from hand-made tar bytes (`tarOf`).
 */
import { execFile, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

export function run(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
}

/** The tools of `names` that are not on PATH (a suite skips, naming them, rather than failing). */
export function missingTools(names: readonly string[]): string[] {
  return names.filter((t) => {
    try {
      run('which', [t]);
      return false;
    } catch {
      return true;
    }
  });
}

/**
 * `run` without blocking the event loop: for a tool that talks to a server living in the test
 * process (a token service), which a synchronous run would never let answer.
 */
export async function runAsync(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(cmd, args, { encoding: 'utf8' });
  return stdout;
}

export interface UmociConfig {
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workdir?: string;
  architecture?: string;
}

/** An OCI layout at `dir` tagged `tag`, one layer per function (each edits the rootfs in place). */
export function umociImage(dir: string, tag: string, layers: ((rootfs: string) => void)[], config: UmociConfig): string {
  run('umoci', ['init', '--layout', dir]);
  run('umoci', ['new', '--image', `${dir}:${tag}`]);
  layers.forEach((edit, i) => {
    const bundle = `${dir}.bundle${i}`;
    run('umoci', ['unpack', '--rootless', '--image', `${dir}:${tag}`, bundle]);
    edit(path.join(bundle, 'rootfs'));
    run('umoci', ['repack', '--image', `${dir}:${tag}`, bundle]);
    fs.rmSync(bundle, { recursive: true, force: true });
  });
  const args = ['config', '--image', `${dir}:${tag}`];
  for (const e of config.entrypoint ?? []) args.push('--config.entrypoint', e);
  for (const c of config.cmd ?? []) args.push('--config.cmd', c);
  for (const e of config.env ?? []) args.push('--config.env', e);
  if (config.workdir) args.push('--config.workingdir', config.workdir);
  if (config.architecture) args.push('--architecture', config.architecture);
  run('umoci', args);
  run('umoci', ['gc', '--layout', dir]);
  return `oci:${dir}:${tag}`;
}

export function skopeoCopy(from: string, to: string, extra: string[] = []): void {
  run('skopeo', ['copy', '--quiet', ...extra, from, to]);
}

/** A ustar archive of the given entries, written by hand (so hostile paths stay as written). */
export function tarOf(
  entries: { path: string; type?: 'file' | 'dir' | 'symlink' | 'hardlink'; data?: string; link?: string; mode?: number }[],
): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const h = Buffer.alloc(512);
    const data = Buffer.from(e.data ?? '');
    const type = e.type ?? 'file';
    h.write(e.path, 0, 100, 'utf8');
    h.write(`${(e.mode ?? (type === 'dir' ? 0o755 : 0o644)).toString(8).padStart(7, '0')}\0`, 100, 'latin1');
    h.write('0000000\0', 108, 'latin1');
    h.write('0000000\0', 116, 'latin1');
    h.write(`${(type === 'file' ? data.length : 0).toString(8).padStart(11, '0')}\0`, 124, 'latin1');
    h.write('00000000000\0', 136, 'latin1');
    h.write({ file: '0', dir: '5', symlink: '2', hardlink: '1' }[type], 156, 'latin1');
    if (e.link) h.write(e.link, 157, 100, 'utf8');
    h.write('ustar\0', 257, 'latin1');
    h.write('00', 263, 'latin1');
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    blocks.push(h);
    if (type === 'file') blocks.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

/** An OCI layout from raw (uncompressed) layer tars; returns `oci:DIR:TAG`. */
export function rawLayout(dir: string, tag: string, layers: Buffer[], config: UmociConfig = { entrypoint: ['/app'] }): string {
  fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = (b: Buffer) => {
    const hex = sha256(b);
    fs.writeFileSync(path.join(dir, 'blobs', 'sha256', hex), b);
    return { digest: `sha256:${hex}`, size: b.length };
  };
  const layerDescs = layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...put(l) }));
  const cfg = Buffer.from(
    JSON.stringify({
      architecture: config.architecture ?? 'amd64',
      os: 'linux',
      config: {
        Entrypoint: config.entrypoint ?? null,
        Cmd: config.cmd ?? null,
        Env: config.env ?? [],
        ...(config.workdir ? { WorkingDir: config.workdir } : {}),
      },
      rootfs: { type: 'layers', diff_ids: layerDescs.map((d) => d.digest) },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...put(cfg) },
      layers: layerDescs,
    }),
  );
  const m = put(manifest);
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  fs.writeFileSync(
    path.join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: { 'org.opencontainers.image.ref.name': tag } },
      ],
    }),
  );
  return `oci:${dir}:${tag}`;
}

/** A pinned stand-in runtime (tiny fake node and loader) so structure tests do not copy 100 MB. */
export function fakeRuntimeDir(dir: string): string {
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'lib'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'bin', 'node'), 'not really node');
  fs.writeFileSync(path.join(dir, 'lib', 'ld-linux-x86-64.so.2'), 'not really a loader');
  fs.writeFileSync(path.join(dir, 'lib', 'libc.so.6'), 'not really libc');
  return dir;
}

/** The sections of an EIF by index: [offset of payload, size]. */
export function eifSection(file: string, index: number): Buffer {
  const b = fs.readFileSync(file);
  const offset = Number(b.readBigUInt64BE(28 + 8 * index));
  const size = Number(b.readBigUInt64BE(28 + 256 + 8 * index));
  return b.subarray(offset + 12, offset + 12 + size);
}

/** Unpack a cpio archive with GNU cpio into `dir` (created). */
export function unpackCpio(archive: Buffer, dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('cpio', ['-idm', '--quiet', '--no-absolute-filenames'], { input: archive, cwd: dir, stdio: ['pipe', 'ignore', 'pipe'] });
}

export function cpioList(archive: Buffer): string[] {
  return execFileSync('cpio', ['-it', '--quiet'], { input: archive, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
    .trim()
    .split('\n');
}
