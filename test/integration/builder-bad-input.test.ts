/**
 * Bad input to `enclaver-proxy build`: each a precise error naming the input, exit 1 (2 for a
 * manifest error), and nothing left at the output path: no EIF, no PCR file, no spool.
 * Hostile layers are hand-made tars (no honest tool writes `../` paths); the registry is the real
 * docker-registry with htpasswd authentication.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeStandInBlobs } from '../helpers/blobs.js';
import { fakeRuntimeDir, rawLayout, run, skopeoCopy, tarOf, umociImage } from '../helpers/images.js';
import { registryAvailable, startRegistry } from '../helpers/registry.js';
import { cli } from '../helpers/cli-async.js';

const tools = ['umoci', 'skopeo'].filter((t) => {
  try {
    run('which', [t]);
    return false;
  } catch {
    return true;
  }
});

describe('enclaver-proxy build refuses bad input', { skip: tools.length ? `${tools.join(', ')} not installed` : false }, () => {
  let work: string;
  let blobs: string;
  let runtime: string;
  let good: string;

  before(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'bad-'));
    blobs = makeStandInBlobs({ dir: path.join(work, 'blobs') });
    runtime = fakeRuntimeDir(path.join(work, 'runtime'));
    good = umociImage(path.join(work, 'good'), 'v1', [(root) => fs.writeFileSync(path.join(root, 'app'), 'x', { mode: 0o755 })], {
      entrypoint: ['/app'],
    });
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  async function build(app: string, opts: { manifestExtra?: string; env?: Record<string, string> } = {}) {
    const dir = fs.mkdtempSync(path.join(work, 'case-'));
    const file = path.join(dir, 'enclaver.yaml');
    fs.writeFileSync(file, `version: v1\nname: bad\ntarget: bad:latest\nsources:\n  app: ${app}\n${opts.manifestExtra ?? ''}`);
    const out = path.join(dir, 'out');
    const r = await cli(['build', '-f', file, '--out', out, '--blobs', blobs, '--runtime-dir', runtime], { env: opts.env ?? {} });
    const left = fs.existsSync(out) ? fs.readdirSync(out) : [];
    assert.deepEqual(left, [], `nothing left in the output directory (${left.join(', ')})`);
    return { ...r, file };
  }

  it('a missing image, naming it', async () => {
    const missing = path.join(work, 'no-such-layout');
    const r = await build(`oci:${missing}:v1`);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`oci:${missing}:v1: ${missing} is not an OCI image layout`));
    const tag = await build(`${good}x`);
    assert.equal(tag.code, 1);
    assert.match(tag.stderr, /no image tagged "v1x"/);
  });

  it('a manifest with an unknown key: file:line:col and the key', async () => {
    const r = await build(good, { manifestExtra: 'signatur:\n  key: k.pem\n' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`${r.file.replace(/[.]/g, '\\.')}:\\d+:\\d+: .*signatur`));
  });

  it('an image for another architecture', async () => {
    const arm = umociImage(path.join(work, 'arm'), 'v1', [(root) => fs.writeFileSync(path.join(root, 'app'), 'x')], {
      entrypoint: ['/app'],
      architecture: 'arm64',
    });
    const r = await build(arm);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the image is for linux\/arm64, the enclave needs linux\/amd64/);
  });

  it('a layer with a ../ path, a symlink escape, a hard link to nothing', async () => {
    const dotdot = rawLayout(path.join(work, 'dotdot'), 'v1', [
      tarOf([
        { path: 'app', data: 'x' },
        { path: 'etc/../../evil', data: 'x' },
      ]),
    ]);
    let r = await build(dotdot);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /layer 1\/1 \(sha256:[0-9a-f]{64}\): entry "etc\/\.\.\/\.\.\/evil" has a "\.\." component/);
    const escape = rawLayout(path.join(work, 'escape'), 'v1', [
      tarOf([
        { path: 'app', data: 'x' },
        { path: 'up', type: 'symlink', link: '../../../../' },
      ]),
      tarOf([{ path: 'up/etc/cron.d/evil', data: 'x' }]),
    ]);
    r = await build(escape);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /layer 2\/2 .*entry "up\/etc\/cron\.d\/evil" goes through a symlink that leads outside the image root/);
    const hardlink = rawLayout(path.join(work, 'hardlink'), 'v1', [
      tarOf([
        { path: 'app', data: 'x' },
        { path: 'shadow', type: 'hardlink', link: 'etc/shadow' },
      ]),
    ]);
    r = await build(hardlink);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /hard link "shadow" → "etc\/shadow" does not point at a regular file earlier in the image/);
  });

  it('a truncated archive and a layer whose bytes do not match its digest', async () => {
    const archive = path.join(work, 'app.docker.tar');
    skopeoCopy(good, `docker-archive:${archive}:bad/app:v1`);
    const truncated = path.join(work, 'truncated.tar');
    const bytes = fs.readFileSync(archive);
    fs.writeFileSync(truncated, bytes.subarray(0, bytes.length - 3000));
    let r = await build(`docker-archive:${truncated}`);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${truncated.replace(/[.]/g, '\\.')} is (truncated|not a complete tar archive)`));
    const layout = path.join(work, 'tampered');
    fs.cpSync(path.join(work, 'good'), layout, { recursive: true });
    const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const manifest = JSON.parse(fs.readFileSync(path.join(layout, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as {
      layers: { digest: string }[];
    };
    const layerFile = path.join(layout, 'blobs', 'sha256', manifest.layers[0]!.digest.slice(7));
    const layer = fs.readFileSync(layerFile);
    layer[layer.length - 20] = layer[layer.length - 20]! ^ 0xff;
    fs.writeFileSync(layerFile, layer);
    r = await build(`oci:${layout}:v1`);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`layer 1/1 \\(${manifest.layers[0]!.digest}\\)`));
    assert.match(r.stderr, /digest|corrupt|truncated/);
  });

  it(
    'a registry that answers 401, then the same pull with Docker config credentials',
    { skip: registryAvailable() ? false : 'docker-registry not installed' },
    async () => {
      const registry = await startRegistry(path.join(work, 'registry'), { kind: 'htpasswd', user: 'builder', password: 's3cret' });
      try {
        const dockerConfig = path.join(work, 'docker');
        fs.mkdirSync(dockerConfig);
        const ref = `docker://${registry.host}/private/app:v1`;
        run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', 'builder:s3cret', good, ref]);
        const r = await build(ref, { env: { DOCKER_CONFIG: dockerConfig } });
        assert.equal(r.code, 1);
        assert.match(r.stderr, new RegExp(`${ref}: registry ${registry.host} refused to let us pull private/app: .*; log in first`));
        fs.writeFileSync(
          path.join(dockerConfig, 'config.json'),
          JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from('builder:wrong').toString('base64') } } }),
        );
        const wrong = await build(ref, { env: { DOCKER_CONFIG: dockerConfig } });
        assert.equal(wrong.code, 1);
        assert.match(
          wrong.stderr,
          new RegExp(`refused to let us pull private/app: HTTP 401 with the Docker config credentials; check the ${registry.host} entry`),
        );
        fs.writeFileSync(
          path.join(dockerConfig, 'config.json'),
          JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from('builder:s3cret').toString('base64') } } }),
        );
        const dir = fs.mkdtempSync(path.join(work, 'ok-'));
        fs.writeFileSync(path.join(dir, 'enclaver.yaml'), `version: v1\nname: ok\ntarget: ok:latest\nsources:\n  app: ${ref}\n`);
        const ok = await cli(
          ['build', '-f', path.join(dir, 'enclaver.yaml'), '--out', path.join(dir, 'out'), '--blobs', blobs, '--runtime-dir', runtime],
          { env: { DOCKER_CONFIG: dockerConfig } },
        );
        assert.equal(ok.code, 0, ok.stderr);
      } finally {
        await registry.stop();
      }
    },
  );

  it('a layer download cut off mid-blob: the blob and the registry are named, nothing is left', async () => {
    // A registry stand-in of the test's own (the real one cannot be told to stop mid-body): it
    // serves the good image's manifest and config, and half of its layer before closing.
    const layout = path.join(work, 'good');
    const blob = (digest: string) => fs.readFileSync(path.join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)));
    const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as {
      manifests: { digest: string; mediaType: string; annotations?: Record<string, string> }[];
    };
    const descriptor = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'v1');
    assert.ok(descriptor, 'the good layout has v1');
    const manifest = JSON.parse(blob(descriptor.digest).toString('utf8')) as { layers: { digest: string }[] };
    const [layer] = manifest.layers;
    assert.ok(layer);
    const server = http.createServer((req, res) => {
      const url = req.url ?? '';
      if (url === '/v2/cut/app/manifests/v1') {
        res.writeHead(200, { 'content-type': descriptor.mediaType });
        res.end(blob(descriptor.digest));
      } else if (url.startsWith('/v2/cut/app/blobs/')) {
        const digest = url.slice('/v2/cut/app/blobs/'.length);
        const bytes = blob(digest);
        res.writeHead(200, { 'content-length': bytes.length });
        if (digest === layer.digest) res.write(bytes.subarray(0, bytes.length >> 1), () => res.destroy());
        else res.end(bytes);
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      const ref = `docker://${host}/cut/app:v1`;
      const r = await build(ref);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, new RegExp(`${ref}: blob ${layer.digest} from ${host} was cut off: `));
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
