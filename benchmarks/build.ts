/**
 * Build benchmark: time and peak RSS of `build` (EIF + PCRs, the real Node runtime included)
 * from a generated app image of `--mib` MiB (one uncompressed layer of 16 MiB files, written as
 * an OCI layout), against the floor of reading the layer once and hashing the output, measured
 * in the same run: `tar -xf` of the layer, then `sha384sum` over everything it extracted.
 *
 *   npm run bench:build [-- --mib 1024]
 *
 * Targets (issue 11): build time ≤ 2× the floor, peak RSS < 256 MiB. The build runs in this
 * process so `maxRSS` is its peak; generating the image streams and adds little to it.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildEif } from '../builder/build.js';
import { TarWriter } from '../builder/oci/tar-writer.js';
import { progressBar } from '../bin/cli/build-command.js';
import { makeStandInBlobs } from '../test/helpers/blobs.js';
import { ROOT } from '../test/helpers/paths.js';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '1024' }, keep: { type: 'boolean' } } });
const MIB = Number(values.mib);
const FILE_MIB = 16;

class HashingFile {
  readonly hash = crypto.createHash('sha256');
  private readonly fd: number;
  size = 0;
  constructor(file: string) {
    this.fd = fs.openSync(file, 'w');
  }
  write(chunk: Buffer): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    fs.writeSync(this.fd, chunk);
  }
  close(): { digest: string; size: number } {
    fs.closeSync(this.fd);
    return { digest: `sha256:${this.hash.digest('hex')}`, size: this.size };
  }
}

async function makeImage(dir: string): Promise<{ ref: string; layer: string }> {
  const blobs = path.join(dir, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const layerTmp = path.join(dir, 'layer.tmp');
  const sink = new HashingFile(layerTmp);
  const tar = new TarWriter(sink, 0);
  const block = crypto.randomBytes(1 << 20);
  await tar.add({ kind: 'directory', path: 'app', mode: 0o755 });
  await tar.add({ kind: 'file', path: 'app/server', mode: 0o755, size: 3, data: Buffer.from('hi\n') });
  await tar.add({ kind: 'directory', path: 'app/data', mode: 0o755 });
  for (let i = 0; i < MIB / FILE_MIB; i++) {
    const data = async function* () {
      for (let m = 0; m < FILE_MIB; m++) {
        const b = Buffer.from(block);
        b.writeUInt32BE(i * FILE_MIB + m, 0); // every MiB distinct
        yield b;
      }
    };
    await tar.add({ kind: 'file', path: `app/data/file-${String(i).padStart(4, '0')}`, mode: 0o644, size: FILE_MIB << 20, data });
  }
  await tar.finish();
  const layer = sink.close();
  const layerPath = path.join(blobs, layer.digest.slice(7));
  fs.renameSync(layerTmp, layerPath);
  const put = (b: Buffer) => {
    const hex = crypto.createHash('sha256').update(b).digest('hex');
    fs.writeFileSync(path.join(blobs, hex), b);
    return { digest: `sha256:${hex}`, size: b.length };
  };
  const config = put(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Entrypoint: ['/app/server'] },
        rootfs: { type: 'layers', diff_ids: [layer.digest] },
      }),
    ),
  );
  const manifest = put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
      }),
    ),
  );
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  fs.writeFileSync(
    path.join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'org.opencontainers.image.ref.name': 'bench' },
        },
      ],
    }),
  );
  return { ref: `oci:${dir}:bench`, layer: layerPath };
}

function timed(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-build-'));
  try {
    process.stderr.write(`generating a ${MIB} MiB app image in ${work} …\n`);
    const image = await makeImage(path.join(work, 'image'));
    const blobs = makeStandInBlobs({ dir: path.join(work, 'blobs') });
    fs.writeFileSync(path.join(work, 'enclaver.yaml'), `version: v1\nname: bench\ntarget: bench:latest\nsources:\n  app: ${image.ref}\n`);
    const rssBefore = process.resourceUsage().maxRSS;

    const extract = path.join(work, 'extract');
    fs.mkdirSync(extract);
    const tarSeconds = timed(() => execFileSync('tar', ['-xf', image.layer, '-C', extract]));
    const hashSeconds = timed(() =>
      execFileSync('sh', ['-c', 'find . -type f -print0 | sort -z | xargs -0 cat | sha384sum'], { cwd: extract, stdio: 'ignore' }),
    );
    fs.rmSync(extract, { recursive: true, force: true });
    const floor = tarSeconds + hashSeconds;

    const progress = progressBar();
    const start = process.hrtime.bigint();
    const result = await buildEif({
      source: { kind: 'manifest', file: path.join(work, 'enclaver.yaml') },
      outDir: path.join(work, 'out'),
      packageRoot: ROOT,
      toolVersion: 'bench',
      blobs,
      noRelease: true,
      ...(progress ? { progress } : {}),
    });
    const buildSeconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (progress) process.stderr.write('\r\x1b[2K');
    const peakMiB = process.resourceUsage().maxRSS / 1024;
    const eifMiB = Number(result.stats.eifBytes) / (1 << 20);
    const ratio = buildSeconds / floor;
    const rows = [
      ['app image', `${MIB} MiB in one uncompressed layer (${MIB / FILE_MIB} files)`],
      ['floor: tar -xf', `${tarSeconds.toFixed(2)} s`],
      ['floor: sha384sum of the output', `${hashSeconds.toFixed(2)} s`],
      ['floor total', `${floor.toFixed(2)} s`],
      ['build (EIF + PCRs)', `${buildSeconds.toFixed(2)} s (${eifMiB.toFixed(0)} MiB EIF, ${(eifMiB / buildSeconds).toFixed(0)} MiB/s)`],
      ['build / floor', `${ratio.toFixed(2)}× (target ≤ 2×) ${ratio <= 2 ? 'ok' : 'MISSED'}`],
      [
        'peak RSS',
        `${peakMiB.toFixed(0)} MiB (before the build: ${(rssBefore / 1024).toFixed(0)} MiB; target < 256) ${peakMiB < 256 ? 'ok' : 'MISSED'}`,
      ],
      [
        'machine',
        `${os.cpus().length} CPUs, load ${os
          .loadavg()
          .map((l) => l.toFixed(1))
          .join(' ')}, node ${process.version}`,
      ],
    ];
    for (const [k, v] of rows) process.stdout.write(`${k!.padEnd(32)} ${v}\n`);
  } finally {
    if (!values.keep) fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();
