/**
 * `enclaver-proxy build` end to end with images made by umoci and skopeo and pulled from a real
 * registry (Debian's docker-registry on loopback): the flattened rootfs (whiteouts applied), the
 * launch files, the generated inner config, signing, equal PCR2 whatever the transport, and
 * byte-identical rebuilds. The EIF's ramdisks are read back with GNU cpio, never with our code.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { makeStandInBlobs } from '../helpers/blobs.js';
import { readEifIndependently } from '../helpers/eif-independent.js';
import { cpioList, eifSection, fakeRuntimeDir, rawLayout, run, skopeoCopy, umociImage, unpackCpio } from '../helpers/images.js';
import { cli } from '../helpers/cli-async.js';
import { registryAvailable, startRegistry, type Registry } from '../helpers/registry.js';

const tools = ['umoci', 'skopeo', 'cpio'].filter((t) => {
  try {
    run('which', [t]);
    return false;
  } catch {
    return true;
  }
});
const skip = tools.length ? `${tools.join(', ')} not installed` : false;

function manifest(dir: string, app: string, extra = ''): string {
  const file = path.join(dir, 'enclaver.yaml');
  fs.writeFileSync(
    file,
    `version: v1\nname: test-app\ntarget: test-app-enclave:latest\nsources:\n  app: ${app}\ningress:\n  - listen_port: 8080\negress:\n  allow: [example.org]\n${extra}`,
  );
  return file;
}

describe('enclaver-proxy build', { skip }, () => {
  let work: string;
  let blobs: string;
  let runtime: string;
  let image: string;
  let layoutDir: string;

  /** PCR2 of a `--json` build of `file` with `--image ref` into `out` (blobs and runtime fixed). */
  async function pcr2Of(file: string, ref: string, out: string, ...extra: string[]): Promise<string> {
    const r = await cli([
      'build',
      '-f',
      file,
      '--image',
      ref,
      '--out',
      out,
      '--blobs',
      blobs,
      '--runtime-dir',
      runtime,
      ...extra,
      '--json',
    ]);
    assert.equal(r.code, 0, `${ref}: ${r.stderr}`);
    return (JSON.parse(r.stdout) as { Measurements: { PCR2: string } }).Measurements.PCR2;
  }

  before(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'build-'));
    blobs = makeStandInBlobs({ dir: path.join(work, 'blobs') });
    runtime = fakeRuntimeDir(path.join(work, 'runtime'));
    layoutDir = path.join(work, 'layout');
    image = umociImage(
      layoutDir,
      'v1',
      [
        (root) => {
          fs.mkdirSync(path.join(root, 'app/old'), { recursive: true });
          fs.writeFileSync(path.join(root, 'app/server'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
          fs.writeFileSync(path.join(root, 'app/gone.txt'), 'deleted by layer 2');
          fs.writeFileSync(path.join(root, 'app/old/a'), 'a');
          fs.symlinkSync('server', path.join(root, 'app/link'));
        },
        (root) => {
          fs.rmSync(path.join(root, 'app/gone.txt'));
          fs.rmSync(path.join(root, 'app/old'), { recursive: true });
          fs.writeFileSync(path.join(root, 'app/new.txt'), 'added by layer 2');
        },
      ],
      { entrypoint: ['/app/server'], cmd: ['--port', '8080'], env: ['GREETING=hi there'], workdir: '/app' },
    );
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it('flattens a two-layer umoci image (whiteouts applied) and lays out rootfs, cmd, env, manifest and inner config', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'a-'));
    const file = manifest(dir, image);
    const r = await cli(['build', '-f', file, '--out', path.join(dir, 'out'), '--blobs', blobs, '--runtime-dir', runtime]);
    assert.equal(r.code, 0, r.stderr);
    const eif = path.join(dir, 'out', 'application.eif');
    const ind = readEifIndependently(eif);
    assert.equal(ind.storedCrc, ind.computedCrc);
    assert.match(r.stdout, new RegExp(`PCR0: ${ind.pcrs.PCR0}\\nPCR1: ${ind.pcrs.PCR1}\\nPCR2: ${ind.pcrs.PCR2}\\n`));
    const rd1 = eifSection(eif, 4);
    const names = cpioList(rd1);
    for (const want of [
      'cmd',
      'env',
      'rootfs/app/server',
      'rootfs/app/new.txt',
      'rootfs/app/link',
      'rootfs/etc/enclaver/proxy.yaml',
      'rootfs/opt/enclaver-proxy/bin/node',
      'rootfs/opt/enclaver-proxy/lib/ld-linux-x86-64.so.2',
      'rootfs/opt/enclaver-proxy/app/dist/bin/enclaver-proxy.js',
      'rootfs/proc',
      'rootfs/dev',
      'rootfs/tmp',
    ]) {
      assert.ok(names.includes(want), `${want} in the app ramdisk`);
    }
    assert.ok(!names.includes('rootfs/app/gone.txt'), 'whiteout applied');
    assert.ok(!names.some((n) => n.startsWith('rootfs/app/old')), 'deleted directory and its contents gone');
    assert.ok(!names.some((n) => n.includes('.wh.')), 'no whiteout marker emitted');
    assert.ok(
      names.some((n) => n.startsWith('rootfs/opt/enclaver-proxy/app/node_modules/yaml/')),
      'production dependencies bundled',
    );
    assert.ok(!names.some((n) => n.includes('node_modules/typescript/')), 'dev dependencies left out');
    assert.ok(
      !names.some((n) => n.includes('node_modules/@aws-sdk/client-kms/')),
      'the optional, build-host-only AWS SDK (KMS signing) left out',
    );
    const out = path.join(dir, 'unpacked');
    unpackCpio(rd1, out);
    assert.equal(
      fs.readFileSync(path.join(out, 'cmd'), 'utf8'),
      [
        '/opt/enclaver-proxy/lib/ld-linux-x86-64.so.2',
        '--library-path',
        '/opt/enclaver-proxy/lib',
        '/opt/enclaver-proxy/bin/node',
        '/opt/enclaver-proxy/app/dist/bin/enclaver-proxy.js',
        '--config',
        '/etc/enclaver/proxy.yaml',
        '',
      ].join('\n'),
    );
    assert.equal(fs.readFileSync(path.join(out, 'env'), 'utf8'), 'GREETING=hi there\n');
    assert.ok(!fs.existsSync(path.join(out, 'rootfs/etc/enclaver/enclaver.yaml')), 'only the config the inner runs is measured');
    const proxyYaml = fs.readFileSync(path.join(out, 'rootfs/etc/enclaver/proxy.yaml'), 'utf8');
    assert.match(proxyYaml, /role: inner/);
    assert.match(proxyYaml, /command:\n\s+- \/app\/server\n\s+- --port\n\s+- "8080"\n\s+cwd: \/app/);
    assert.match(proxyYaml, /address: vsock:\/\/any:8080/);
    assert.equal(fs.readFileSync(path.join(out, 'rootfs/app/new.txt'), 'utf8'), 'added by layer 2');
    assert.equal(fs.readlinkSync(path.join(out, 'rootfs/app/link')), 'server');
    assert.deepEqual(
      fs.readdirSync(path.join(dir, 'out')).sort(),
      ['application.eif', 'application.pcrs.json', 'release', 'release.tar'],
      'no spool or temp file left',
    );
  });

  it('gives the same PCR2 from oci:, oci-archive:, docker-archive: and a registry (docker://127.0.0.1)', async (t) => {
    const dir = fs.mkdtempSync(path.join(work, 'b-'));
    const ociArchive = path.join(dir, 'app.oci.tar');
    const dockerArchive = path.join(dir, 'app.docker.tar');
    skopeoCopy(image, `oci-archive:${ociArchive}:v1`);
    skopeoCopy(image, `docker-archive:${dockerArchive}:test/app:v1`);
    const refs = [image, `oci-archive:${ociArchive}:v1`, `docker-archive:${dockerArchive}`];
    let registry: Registry | undefined;
    if (registryAvailable()) {
      registry = await startRegistry(path.join(dir, 'registry'));
      skopeoCopy(image, `docker://${registry.host}/test/app:v1`, ['--dest-tls-verify=false']);
      refs.push(`docker://${registry.host}/test/app:v1`, `${registry.host}/test/app:v1`);
    } else {
      t.diagnostic('docker-registry not installed: registry pull not exercised');
    }
    try {
      const pcr2 = new Set<string>();
      // One manifest (it is measured too); --image names the transport.
      const file = manifest(dir, 'placeholder:latest');
      for (const [i, ref] of refs.entries()) {
        pcr2.add(await pcr2Of(file, ref, path.join(dir, `out${i}`)));
      }
      assert.equal(pcr2.size, 1, `one PCR2 for ${refs.join(', ')}`);
    } finally {
      await registry?.stop();
    }
  });

  it('the same layers uncompressed (file bodies read in place from the layout and the archive, not spooled) give the same PCR2', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'u-'));
    // umoci writes gzip layers; the same tars, uncompressed, in a layout of their own.
    const index = JSON.parse(fs.readFileSync(path.join(layoutDir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const blob = (digest: string) => fs.readFileSync(path.join(layoutDir, 'blobs', 'sha256', digest.slice('sha256:'.length)));
    const [top] = index.manifests;
    assert.ok(top, 'the layout has an image');
    const layers = (JSON.parse(blob(top.digest).toString('utf8')) as { layers: { digest: string }[] }).layers;
    const tars = layers.map((l) => zlib.gunzipSync(blob(l.digest)));
    const plain = rawLayout(path.join(dir, 'plain'), 'v1', tars, {
      entrypoint: ['/app/server'],
      cmd: ['--port', '8080'],
      env: ['GREETING=hi there'],
      workdir: '/app',
    });
    const archive = path.join(dir, 'plain.oci.tar');
    skopeoCopy(plain, `oci-archive:${archive}:v1`);
    const file = manifest(dir, 'placeholder:latest');
    const pcr2: string[] = [];
    for (const [i, ref] of [image, plain, `oci-archive:${archive}:v1`].entries()) {
      pcr2.push(await pcr2Of(file, ref, path.join(dir, `out${i}`), '--no-release'));
    }
    assert.deepEqual(new Set(pcr2).size, 1, `one PCR2 for gzip, uncompressed layout and uncompressed archive: ${pcr2.join(', ')}`);
  });

  it('measure IMAGE prints the PCRs the build gives, and keeps nothing', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'm-'));
    const file = manifest(dir, image);
    const built = await cli([
      'build',
      '-f',
      file,
      '--out',
      path.join(dir, 'out'),
      '--blobs',
      blobs,
      '--runtime-dir',
      runtime,
      '--no-release',
      '--json',
    ]);
    assert.equal(built.code, 0, built.stderr);
    const pcrs = (JSON.parse(built.stdout) as { Measurements: Record<string, string> }).Measurements;
    const measured = await cli(['measure', image, '-f', file, '--blobs', blobs, '--runtime-dir', runtime, '--kms-policy']);
    assert.equal(measured.code, 0, measured.stderr);
    const condition = (JSON.parse(measured.stdout) as { Condition: { StringEqualsIgnoreCase: Record<string, string> } }).Condition
      .StringEqualsIgnoreCase;
    assert.equal(condition['kms:RecipientAttestation:PCR2'], pcrs.PCR2);
    assert.equal(condition['kms:RecipientAttestation:PCR0'], pcrs.PCR0);
    assert.deepEqual(
      fs.readdirSync(path.join(dir, 'out')).sort(),
      ['application.eif', 'application.pcrs.json'],
      '--no-release: no release image',
    );
  });

  it('signs when the manifest has signature.certificate/key: PCR8 printed, describe-eif verifies', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'c-'));
    run('openssl', ['ecparam', '-name', 'secp384r1', '-genkey', '-noout', '-out', path.join(dir, 'key.pem')]);
    run('openssl', [
      'req',
      '-new',
      '-x509',
      '-key',
      path.join(dir, 'key.pem'),
      '-out',
      path.join(dir, 'cert.pem'),
      '-days',
      '7',
      '-subj',
      '/CN=release-signer',
    ]);
    const file = manifest(dir, image, 'signature:\n  certificate: cert.pem\n  key: key.pem\n');
    const r = await cli(['build', '-f', file, '--out', path.join(dir, 'out'), '--blobs', blobs, '--runtime-dir', runtime]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /PCR8: [0-9a-f]{96}\n/);
    const d = await cli(['describe-eif', path.join(dir, 'out', 'application.eif')]);
    assert.equal(d.code, 0, d.stdout);
    assert.match(d.stdout, /signature: ES384, valid; signs this PCR0/);
  });
});
