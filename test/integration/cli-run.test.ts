/**
 * `enclaver-proxy run RELEASE_DIR`: Enclaver's `enclaver run` with the nitro-cli test double on
 * PATH. A release directory holds a real (tiny) EIF written by the builder and an Enclaver
 * manifest; the double starts the manifest's inner side under vsock emulation. Proves: the
 * manifest's defaults reach run-enclave, the app's exit code is the command's, and
 * --verify-before-run refuses an image whose PCRs differ before nitro-cli is ever called.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { loadBlobs } from '../../builder/blobs.js';
import { assembleEif } from '../../builder/eif/assemble.js';
import { encodeMetadata } from '../../builder/eif/metadata.js';
import { ensureMountPoints } from '../../builder/ramdisk/app.js';
import { makeStandInBlobs } from '../helpers/blobs.js';
import { CLI, FIXTURES } from '../helpers/paths.js';
import { runCliToEnd, tempDir } from '../helpers/process.js';

const DOUBLE_DIR = path.join(FIXTURES, 'nitro-cli-double');

describe('enclaver-proxy run (release directory, nitro-cli test double)', { timeout: 180_000 }, () => {
  const dir = tempDir('run-');
  const release = path.join(dir, 'release');
  const stateDir = path.join(dir, 'nitro');
  let pcrsPath = '';
  let env: Record<string, string>;

  before(async () => {
    fs.mkdirSync(release);
    fs.mkdirSync(path.join(dir, 'vsock'));
    const blobs = loadBlobs(makeStandInBlobs({ dir: path.join(dir, 'blobs') }), 'x86_64');
    const built = await assembleEif({
      blobs,
      rootfs: ensureMountPoints([{ kind: 'file', path: 'hello.txt', mode: 0o644, size: 6, data: Buffer.from('hello\n'), uid: 0, gid: 0 }]),
      launch: { argv: ['/bin/enclaver-proxy', 'run-inner'], env: ['PATH=/usr/bin:/bin'] },
      metadata: encodeMetadata({
        imageName: 'run-test',
        imageVersion: '1',
        toolVersion: '0.0.0',
        kernelInfo: blobs.kernelInfo,
        dockerInfo: null,
        sourceDateEpoch: 0,
      }),
      eifPath: path.join(release, 'application.eif'),
      pcrsPath: path.join(dir, 'pcrs.json'),
    });
    pcrsPath = built.pcrsPath;
    fs.writeFileSync(
      path.join(release, 'enclaver.yaml'),
      stringify({
        version: 'v1',
        name: 'run-test',
        target: 'run-test:latest',
        sources: { app: 'app:latest' },
        defaults: { cpu_count: 4, memory_mb: 2048 },
      }),
    );
    env = {
      PATH: `${DOUBLE_DIR}:${process.env.PATH ?? ''}`,
      NITRO_CLI_DOUBLE_STATE: stateDir,
      // The enclave: the manifest's inner side with an app that exits with 5.
      NITRO_CLI_DOUBLE_INNER: JSON.stringify([
        process.execPath,
        CLI,
        '--config',
        path.join(release, 'enclaver.yaml'),
        '--role',
        'inner',
        '--admin',
        'none',
        '--',
        process.execPath,
        path.join(FIXTURES, 'apps/hash-app.mjs'),
      ]),
      EXIT_CODE: '5',
      ENCLAVER_VSOCK_EMULATION_DIR: path.join(dir, 'vsock'),
      ENCLAVER_LAUNCH_LOCK: path.join(dir, 'launch.lock'),
    };
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  function runEnclaveCalls(): string[][] {
    const file = path.join(stateDir, 'calls.log');
    if (!fs.existsSync(file)) return [];
    return fs
      .readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as string[])
      .filter((c) => c[0] === 'run-enclave');
  }

  it('refuses an image whose PCRs are not the expected ones, before calling nitro-cli', async () => {
    const built = JSON.parse(fs.readFileSync(pcrsPath, 'utf8')) as Record<string, unknown>;
    // build's file may nest the values under Measurements (nitro-cli's shape); flat is accepted too.
    const pcrs = (built.Measurements ?? built) as Record<string, string>;
    const wrong = path.join(dir, 'wrong-pcrs.json');
    fs.writeFileSync(wrong, JSON.stringify({ ...pcrs, PCR0: 'ab'.repeat(48) }));
    const r = await runCliToEnd(['run', release, '--verify-before-run', wrong, '--admin', 'none'], { env });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /"msg":"PCR mismatch"/);
    assert.match(r.stdout, /"pcr":"PCR0"/);
    assert.deepEqual(runEnclaveCalls(), []);
  });

  it("launches with the manifest's defaults once the PCRs match, and exits with the app's code", async () => {
    const r = await runCliToEnd(['run', release, '--verify-before-run', pcrsPath, '--admin', 'none'], { env });
    assert.equal(r.code, 5, r.stdout + r.stderr);
    assert.match(r.stdout, /PCRs match; launching/);
    assert.deepEqual(runEnclaveCalls(), [
      ['run-enclave', '--eif-path', path.join(release, 'application.eif'), '--cpu-count', '4', '--memory', '2048', '--enclave-cid', '16'],
    ]);
  });

  it('says what is missing when there is no release to run', async () => {
    const r = await runCliToEnd(['run', path.join(dir, 'nowhere')], { env });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no enclave image at .*nowhere/);
  });
});
