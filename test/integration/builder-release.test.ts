/**
 * A real build (the real Node runtime, not a stand-in) from an image that has no libc at all:
 * built twice at different times in different output directories, working directories and time
 * zones, the EIF, its
 * PCR file and the release archive are byte-identical. The release image is read by skopeo and
 * unpacked by umoci; the inner proxy runs from the EIF's own rootfs in a chroot (so nothing of
 * the build host is used), and the release image's runtime runs from its rootfs the same way.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeStandInBlobs } from '../helpers/blobs.js';
import { cli } from '../helpers/cli-async.js';
import { eifSection, run, umociImage, unpackCpio, missingTools } from '../helpers/images.js';

const missing = missingTools(['umoci', 'skopeo', 'cpio']);
const isRoot = process.getuid?.() === 0;

describe(
  'enclaver-proxy build: reproducible EIF and release image',
  { skip: missing.length ? `${missing.join(', ')} not installed` : false },
  () => {
    let work: string;
    const outs: string[] = [];

    before(async () => {
      work = fs.mkdtempSync(path.join(os.tmpdir(), 'release-'));
      const blobs = makeStandInBlobs({ dir: path.join(work, 'blobs') });
      // No libc, no shell: only the app's files (a "static" image). The inner must bring its own.
      const image = umociImage(
        path.join(work, 'layout'),
        'v1',
        [
          (root) => {
            fs.mkdirSync(path.join(root, 'app'));
            fs.writeFileSync(path.join(root, 'app/server'), 'a static binary would be here', { mode: 0o755 });
          },
        ],
        { entrypoint: ['/app/server'], env: ['MODE=prod'] },
      );
      for (const [i, env] of [{ TZ: 'UTC' }, { TZ: 'Pacific/Kiritimati' }].entries()) {
        const dir = path.join(work, `build-${i}`, 'nested'.repeat(i));
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(
          path.join(dir, 'enclaver.yaml'),
          `version: v1\nname: static-app\ntarget: registry.example/static-app:1.2\nsources:\n  app: ${image}\ningress:\n  - listen_port: 8080\n`,
        );
        // The second build: another working directory, output path and time zone.
        const r = await cli(
          i === 0
            ? ['build', '-f', 'enclaver.yaml', '--blobs', blobs]
            : ['build', '-f', path.join(dir, 'enclaver.yaml'), '--out', path.join(dir, 'o'), '--blobs', blobs],
          { cwd: i === 0 ? dir : work, env },
        );
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /Release image: oci:.*release:1\.2 and oci-archive:/);
        outs.push(i === 0 ? dir : path.join(dir, 'o'));
      }
    });
    after(() => fs.rmSync(work, { recursive: true, force: true }));

    it('two builds give byte-identical EIF, PCR file and release archive', () => {
      for (const name of ['application.eif', 'application.pcrs.json', 'release.tar']) {
        const [a, b] = outs.map((o) => fs.readFileSync(path.join(o, name)));
        assert.ok(a!.equals(b!), `${name} differs between the two builds`);
      }
    });

    it('skopeo reads the release layout and archive; umoci unpacks it with the EIF and manifest in /enclave', () => {
      const out = outs[0]!;
      const inspect = (ref: string) =>
        JSON.parse(run('skopeo', ['inspect', ref])) as { Digest: string; Architecture: string; Os: string; Layers: string[] };
      const layout = inspect(`oci:${out}/release:1.2`);
      const archive = inspect(`oci-archive:${out}/release.tar:1.2`);
      assert.equal(layout.Architecture, 'amd64');
      assert.equal(layout.Os, 'linux');
      assert.equal(layout.Layers.length, 2);
      assert.equal(archive.Digest, layout.Digest);
      const config = JSON.parse(run('skopeo', ['inspect', '--config', `oci:${out}/release:1.2`])) as { config: { Entrypoint: string[] } };
      assert.deepEqual(config.config.Entrypoint.slice(-2), ['/opt/enclaver-proxy/app/dist/bin/enclaver-proxy.js', 'run']);
      const bundle = path.join(work, 'bundle');
      run('umoci', ['unpack', '--rootless', '--image', `${out}/release:1.2`, bundle]);
      assert.ok(
        fs.readFileSync(path.join(bundle, 'rootfs/enclave/application.eif')).equals(fs.readFileSync(path.join(out, 'application.eif'))),
      );
      assert.equal(
        fs.readFileSync(path.join(bundle, 'rootfs/enclave/enclaver.yaml'), 'utf8'),
        fs.readFileSync(path.join(out, 'enclaver.yaml'), 'utf8'),
      );
      const runtimeSpec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')) as { process: { args: string[] } };
      assert.equal(runtimeSpec.process.args.at(-1), 'run');
    });

    it(
      "the inner runs from the EIF's rootfs in a chroot (no host file used) and accepts its generated config",
      { skip: isRoot ? false : 'chroot needs root' },
      () => {
        const root = path.join(work, 'enclave-root');
        unpackCpio(eifSection(path.join(outs[0]!, 'application.eif'), 4), root);
        const argv = fs.readFileSync(path.join(root, 'cmd'), 'utf8').trim().split('\n');
        assert.ok(
          !fs.existsSync(path.join(root, 'rootfs/lib')) && !fs.existsSync(path.join(root, 'rootfs/usr')),
          'the image itself has no libc',
        );
        const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
        const version = spawnSync('chroot', [path.join(root, 'rootfs'), ...argv.slice(0, -2), '--version'], { encoding: 'utf8', env });
        assert.equal(version.status, 0, version.stderr);
        assert.match(version.stdout, /^enclaver-proxy \d+\.\d+\.\d+/);
        const check = spawnSync('chroot', [path.join(root, 'rootfs'), ...argv, '--check'], { encoding: 'utf8', env });
        assert.equal(check.status, 0, check.stderr);
        assert.match(check.stderr, /\/etc\/enclaver\/proxy\.yaml: config OK/);
        assert.match(check.stdout, /role: inner/);
        assert.match(check.stdout, /\/app\/server/);
      },
    );

    it("the release image's runtime runs from its own rootfs in a chroot", { skip: isRoot ? false : 'chroot needs root' }, () => {
      const bundle = path.join(work, 'bundle2');
      execFileSync('umoci', ['unpack', '--image', `${outs[0]}/release:1.2`, bundle], { stdio: 'ignore' });
      const spec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')) as { process: { args: string[] } };
      const r = spawnSync('chroot', [path.join(bundle, 'rootfs'), ...spec.process.args.slice(0, -1), '--version'], {
        encoding: 'utf8',
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
      });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^enclaver-proxy /);
    });
  },
);
