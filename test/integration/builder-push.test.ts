/**
 * `enclaver-proxy build --push` against the real docker-registry on loopback: the release image
 * lands under the target's tag (skopeo inspects it; a pull back by skopeo gives the same digest
 * and the same EIF bytes); a second push uploads nothing new. Against an htpasswd-protected
 * registry: without credentials the push fails naming the registry and the fix, reports no
 * success and leaves no tag; with the credentials in a Docker config it is pushed. A push whose
 * connection is cut in the middle of a blob upload (a forwarder of the test's own, counting
 * bytes) fails naming the registry and the blob, leaves no tag, and a second push completes it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeStandInBlobs } from '../helpers/blobs.js';
import { cli } from '../helpers/cli-async.js';
import { startCuttingForwarder } from '../helpers/cutting-forwarder.js';
import { fakeRuntimeDir, run, umociImage, missingTools } from '../helpers/images.js';
import { registryAvailable, startRegistry, type Registry } from '../helpers/registry.js';

const missing = missingTools(['umoci', 'skopeo', 'python3']);
const skip = missing.length ? `${missing.join(', ')} not installed` : registryAvailable() ? false : 'docker-registry not installed';

interface BuildJson {
  Release: { Digest: string; Pushed: string | null };
}

describe('enclaver-proxy build --push', { skip }, () => {
  let work: string;
  let blobs: string;
  let runtime: string;
  let image: string;
  const registries: Registry[] = [];

  before(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'push-'));
    blobs = makeStandInBlobs({ dir: path.join(work, 'blobs') });
    runtime = fakeRuntimeDir(path.join(work, 'runtime'));
    image = umociImage(path.join(work, 'layout'), 'v1', [(root) => fs.writeFileSync(path.join(root, 'app'), 'x', { mode: 0o755 })], {
      entrypoint: ['/app'],
    });
  });
  after(async () => {
    await Promise.all(registries.map((r) => r.stop()));
    fs.rmSync(work, { recursive: true, force: true });
  });

  async function registry(auth?: { user: string; password: string }): Promise<Registry> {
    const r = await startRegistry(fs.mkdtempSync(path.join(work, 'registry-')), auth && { kind: 'htpasswd', ...auth });
    registries.push(r);
    return r;
  }

  /** A Docker config directory: empty, or with `auths` for one registry. */
  function dockerConfig(auth?: { host: string; user: string; password: string }): string {
    const dir = fs.mkdtempSync(path.join(work, 'docker-'));
    const auths = auth ? { [auth.host]: { auth: Buffer.from(`${auth.user}:${auth.password}`).toString('base64') } } : {};
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ auths }));
    return dir;
  }

  async function buildAndPush(target: string, dockerConfigDir: string) {
    const dir = fs.mkdtempSync(path.join(work, 'b-'));
    fs.writeFileSync(path.join(dir, 'enclaver.yaml'), `version: v1\nname: pushed\ntarget: ${target}\nsources:\n  app: ${image}\n`);
    const out = path.join(dir, 'out');
    const r = await cli(
      ['build', '-f', path.join(dir, 'enclaver.yaml'), '--out', out, '--blobs', blobs, '--runtime-dir', runtime, '--push', '--json'],
      { env: { DOCKER_CONFIG: dockerConfigDir } },
    );
    return { ...r, out };
  }

  const inspect = (ref: string, extra: string[] = []) =>
    JSON.parse(run('skopeo', ['inspect', '--tls-verify=false', ...extra, ref])) as { Digest: string; Layers: string[] };

  it('pushes the release image under its tag: skopeo sees it, a pull back gives the same digest and EIF', async () => {
    const reg = await registry();
    const target = `${reg.host}/team/release:1.0`;
    const r = await buildAndPush(target, dockerConfig());
    assert.equal(r.code, 0, r.stderr);
    const built = JSON.parse(r.stdout) as BuildJson;
    assert.equal(built.Release.Pushed, `docker://${target}`);
    const remote = inspect(`docker://${target}`);
    assert.equal(remote.Digest, built.Release.Digest);
    assert.equal(remote.Layers.length, 2);
    const pulled = path.join(work, 'pulled');
    run('skopeo', ['copy', '--quiet', '--preserve-digests', '--src-tls-verify=false', `docker://${target}`, `oci:${pulled}:1.0`]);
    assert.equal(inspect(`oci:${pulled}:1.0`).Digest, built.Release.Digest, 'pulled back: the same manifest digest');
    const bundle = path.join(work, 'pulled-bundle');
    run('umoci', ['unpack', '--rootless', '--image', `${pulled}:1.0`, bundle]);
    assert.ok(
      fs.readFileSync(path.join(bundle, 'rootfs/enclave/application.eif')).equals(fs.readFileSync(path.join(r.out, 'application.eif'))),
      'the EIF came back byte for byte',
    );

    // The same image again: every blob is there already, only the manifest is written.
    const again = await cli(
      [
        'build',
        '-f',
        path.join(path.dirname(r.out), 'enclaver.yaml'),
        '--out',
        r.out,
        '--blobs',
        blobs,
        '--runtime-dir',
        runtime,
        '--push',
      ],
      { env: { DOCKER_CONFIG: dockerConfig() } },
    );
    assert.equal(again.code, 0, again.stderr);
    assert.match(
      again.stdout,
      new RegExp(`Pushed docker://${target.replace(/[.]/g, '\\.')} \\(${built.Release.Digest}; 0 blobs uploaded, 3 already there\\)`),
    );
  });

  it('an htpasswd registry: 401 without credentials names the registry and the fix, and nothing is pushed', async () => {
    const auth = { user: 'builder', password: 's3cret-push' };
    const reg = await registry(auth);
    const target = `${reg.host}/team/locked:2.0`;
    const r = await buildAndPush(target, dockerConfig());
    assert.equal(r.code, 1, r.stdout);
    assert.equal(r.stdout, '', 'no result printed: nothing reported as success');
    assert.match(
      r.stderr,
      new RegExp(
        `registry ${reg.host} refused to let us push team/locked: the registry asks for credentials and the Docker config has none for it; log in first`,
      ),
    );
    assert.match(r.stderr, /the release image was NOT pushed/);
    assert.ok(!r.stderr.includes(auth.password));
    assert.throws(() => inspect(`docker://${target}`, ['--creds', `${auth.user}:${auth.password}`]), /manifest unknown|not found/i);

    const ok = await buildAndPush(target, dockerConfig({ host: reg.host, ...auth }));
    assert.equal(ok.code, 0, ok.stderr);
    const built = JSON.parse(ok.stdout) as BuildJson;
    assert.equal(inspect(`docker://${target}`, ['--creds', `${auth.user}:${auth.password}`]).Digest, built.Release.Digest);
  });

  it('wrong credentials are refused with the Docker config named, without printing them', async () => {
    const auth = { user: 'builder', password: 'right-one' };
    const reg = await registry(auth);
    const r = await buildAndPush(`${reg.host}/team/x:1`, dockerConfig({ host: reg.host, user: 'builder', password: 'wrong-one' }));
    assert.equal(r.code, 1, r.stdout);
    assert.match(
      r.stderr,
      new RegExp(
        `registry ${reg.host} refused to let us push team/x: HTTP 401 with the Docker config credentials; check the ${reg.host} entry`,
      ),
    );
    assert.ok(!r.stderr.includes('wrong-one'));
  });

  it('a connection cut in the middle of a blob upload: the push fails naming the registry and the blob; a second push completes it', async () => {
    const reg = await registry();
    // Cut the first upload of at least 64 KiB (a layer, not the config) after 32 KiB of its body.
    const forwarder = await startCuttingForwarder(reg.host, { minBody: 64 * 1024, interrupt: { kind: 'cut', afterBytes: 32 * 1024 } });
    try {
      const target = `${forwarder.host}/team/cut:1.0`;
      const r = await buildAndPush(target, dockerConfig());
      const { cut } = forwarder;
      assert.ok(cut, `the forwarder cut an upload (stderr: ${r.stderr})`);
      assert.ok(cut.digest, cut.path);
      assert.equal(r.code, 1, r.stdout);
      assert.equal(r.stdout, '', 'no result printed: nothing reported as success');
      assert.match(
        r.stderr,
        new RegExp(
          `push to ${target}: blob ${cut.digest} \\(${cut.size} bytes\\) was not uploaded to ${forwarder.host}: the connection was closed`,
        ),
      );
      assert.match(r.stderr, /the release image was NOT pushed/);
      assert.doesNotMatch(r.stderr, /Pushed /);
      const layers = (
        JSON.parse(fs.readFileSync(path.join(r.out, 'release', 'blobs', 'sha256', readIndexDigest(r.out).slice(7)), 'utf8')) as {
          layers: { digest: string }[];
        }
      ).layers.map((l) => l.digest);
      assert.ok(layers.includes(cut.digest), `the cut blob ${cut.digest} is one of the release image's layers`);
      // The registry itself (not through the forwarder, which lives in this process) has no tag.
      const direct = `docker://${reg.host}/team/cut:1.0`;
      assert.throws(() => inspect(direct), /manifest unknown|not found/i);

      // The forwarder cuts once: the same push again goes through and the image is whole.
      const again = await buildAndPush(target, dockerConfig());
      assert.equal(again.code, 0, again.stderr);
      const built = JSON.parse(again.stdout) as BuildJson;
      assert.equal(built.Release.Pushed, `docker://${target}`);
      assert.equal(inspect(direct).Digest, built.Release.Digest);
      const pulled = path.join(work, 'pulled-after-cut');
      run('skopeo', ['copy', '--quiet', '--preserve-digests', '--src-tls-verify=false', direct, `oci:${pulled}:1.0`]);
      const bundle = path.join(work, 'pulled-after-cut-bundle');
      run('umoci', ['unpack', '--rootless', '--image', `${pulled}:1.0`, bundle]);
      assert.ok(
        fs
          .readFileSync(path.join(bundle, 'rootfs/enclave/application.eif'))
          .equals(fs.readFileSync(path.join(again.out, 'application.eif'))),
        'the EIF came back byte for byte',
      );
    } finally {
      await forwarder.close();
    }
  });
});

/** The release layout's one manifest digest. */
function readIndexDigest(out: string): string {
  const index = JSON.parse(fs.readFileSync(path.join(out, 'release', 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const [manifest] = index.manifests;
  assert.ok(manifest, 'the release layout has a manifest');
  return manifest.digest;
}
