/**
 * The registry token flow for real: Debian's docker-registry with `auth: token` (JWTs verified
 * against a root certificate bundle) and the test's token service (../emulators/registry-token),
 * which checks Basic credentials and grants only what each user may do. A pull (`docker://…`)
 * and a `build --push` go through it with Docker config credentials; a wrong password and a
 * token that grants pull only on a push are refused, each naming the token service and the
 * image, with nothing half-written: no outputs after a refused pull, no tag after a refused push.
 * A token the registry refuses in the middle of a push (as when it expires between the POST and
 * the PUT of an upload) earns a new one and the upload is sent again. A registry that sends its
 * clients to a plain-HTTP token service off loopback gets no credentials.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RegistryTokenService } from '../emulators/registry-token/server.js';
import { makeStandInBlobs } from '../helpers/blobs.js';
import { startCuttingForwarder } from '../helpers/cutting-forwarder.js';
import { cli } from '../helpers/cli-async.js';
import { fakeRuntimeDir, runAsync, umociImage, missingTools } from '../helpers/images.js';
import { registryAvailable, startRegistry, type Registry } from '../helpers/registry.js';
import { selfSignedLoopbackCertificate } from '../helpers/tls.js';

const missing = missingTools(['umoci', 'skopeo', 'openssl']);
const skip = missing.length ? `${missing.join(', ')} not installed` : registryAvailable() ? false : 'docker-registry not installed';

const pusher = { user: 'builder', password: 'push-s3cret' };
const reader = { user: 'reader', password: 'read-s3cret' };

describe('registry token authentication (docker-registry auth: token)', { skip }, () => {
  let work: string;
  let blobs: string;
  let runtime: string;
  let image: string;
  let tokens: RegistryTokenService;
  let registry: Registry;

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'regtoken-'));
    blobs = makeStandInBlobs({ dir: path.join(work, 'blobs') });
    runtime = fakeRuntimeDir(path.join(work, 'runtime'));
    image = umociImage(path.join(work, 'layout'), 'v1', [(root) => fs.writeFileSync(path.join(root, 'app'), 'x', { mode: 0o755 })], {
      entrypoint: ['/app'],
    });
    const { key, cert } = selfSignedLoopbackCertificate();
    tokens = new RegistryTokenService({
      key,
      cert,
      users: {
        [pusher.user]: { password: pusher.password, actions: ['pull', 'push'] },
        [reader.user]: { password: reader.password, actions: ['pull'] },
      },
    });
    await tokens.start();
    registry = await startRegistry(path.join(work, 'registry'), {
      kind: 'token',
      realm: tokens.realm,
      service: tokens.service,
      issuer: tokens.issuer,
      rootCert: cert,
    });
    // skopeo, a client nobody here wrote, goes through the same token flow to put the app there.
    await runAsync('skopeo', [
      'copy',
      '--quiet',
      '--dest-tls-verify=false',
      '--dest-creds',
      `${pusher.user}:${pusher.password}`,
      image,
      `docker://${registry.host}/private/app:v1`,
    ]);
  });
  after(async () => {
    await registry.stop();
    await tokens.stop();
    fs.rmSync(work, { recursive: true, force: true });
  });

  /** A Docker config with `user` for the registry (or for `host`, a forwarder in front of it). */
  function dockerConfig(user: { user: string; password: string }, host = registry.host): string {
    const dir = fs.mkdtempSync(path.join(work, 'docker-'));
    const auth = Buffer.from(`${user.user}:${user.password}`).toString('base64');
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ auths: { [host]: { auth } } }));
    return dir;
  }

  async function build(
    app: string,
    user: { user: string; password: string },
    opts: { target?: string; push?: boolean; host?: string } = {},
  ) {
    const dir = fs.mkdtempSync(path.join(work, 'b-'));
    const file = path.join(dir, 'enclaver.yaml');
    fs.writeFileSync(file, `version: v1\nname: tok\ntarget: ${opts.target ?? 'tok:latest'}\nsources:\n  app: ${app}\n`);
    const out = path.join(dir, 'out');
    const args = [
      'build',
      '-f',
      file,
      '--out',
      out,
      '--blobs',
      blobs,
      '--runtime-dir',
      runtime,
      '--json',
      ...(opts.push ? ['--push'] : []),
    ];
    const r = await cli(args, { env: { DOCKER_CONFIG: dockerConfig(user, opts.host) } });
    return { ...r, out };
  }

  const inspect = async (ref: string) =>
    JSON.parse(await runAsync('skopeo', ['inspect', '--tls-verify=false', '--creds', `${pusher.user}:${pusher.password}`, ref])) as {
      Digest: string;
    };

  it('pulls docker://… through the token service with Docker config credentials', async () => {
    const seen = tokens.requests.length;
    const r = await build(`docker://${registry.host}/private/app:v1`, reader);
    assert.equal(r.code, 0, r.stderr);
    const asked = tokens.requests.slice(seen);
    assert.ok(asked.length > 0, 'the token service was asked');
    for (const t of asked) {
      assert.equal(t.status, 200);
      assert.equal(t.user, reader.user);
      assert.deepEqual(t.granted, ['repository:private/app:pull']);
    }
    assert.ok(fs.existsSync(path.join(r.out, 'application.eif')));
  });

  it('a wrong password: the token service and the image are named, nothing is left at the output path', async () => {
    const ref = `docker://${registry.host}/private/app:v1`;
    const r = await build(ref, { user: reader.user, password: 'not-it' });
    assert.equal(r.code, 1, r.stdout);
    assert.match(
      r.stderr,
      new RegExp(
        `${ref}: registry ${registry.host} refused to let us pull private/app: the token service ${new URL(tokens.realm).origin} ` +
          `refused the Docker config credentials \\(HTTP 401\\); check the ${registry.host} entry of the Docker config`,
      ),
    );
    assert.ok(!r.stderr.includes('not-it'), 'the password is not printed');
    const left = fs.existsSync(r.out) ? fs.readdirSync(r.out) : [];
    assert.deepEqual(left, [], `nothing left in the output directory (${left.join(', ')})`);
  });

  it('build --push through the token service: one pull,push token, the tag lands and skopeo sees it', async () => {
    const target = `${registry.host}/team/release:1.0`;
    const seen = tokens.requests.length;
    const r = await build(image, pusher, { target, push: true });
    assert.equal(r.code, 0, r.stderr);
    const built = JSON.parse(r.stdout) as { Release: { Digest: string; Pushed: string } };
    assert.equal(built.Release.Pushed, `docker://${target}`);
    const asked = tokens.requests.slice(seen);
    assert.deepEqual(
      asked.map((t) => [t.user, t.granted]),
      [[pusher.user, ['repository:team/release:pull,push']]],
      'one token, for pull and push',
    );
    assert.equal((await inspect(`docker://${target}`)).Digest, built.Release.Digest);
  });

  it('a token that grants pull only, on a push: refused naming the token service and the target, and no tag', async () => {
    const target = `${registry.host}/team/readonly:1.0`;
    const r = await build(image, reader, { target, push: true });
    assert.equal(r.code, 1, r.stdout);
    assert.equal(r.stdout, '', 'no result printed: nothing reported as success');
    assert.match(
      r.stderr,
      new RegExp(
        `docker://${target}: registry ${registry.host} refused to let us push team/readonly: the token service ` +
          `${new URL(tokens.realm).origin} granted the Docker config credentials less than the repository:team/readonly:pull,push ` +
          `asked for \\(the registry answered insufficient_scope to POST /v2/team/readonly/blobs/uploads/\\)`,
      ),
    );
    assert.match(r.stderr, /the release image was NOT pushed/);
    await assert.rejects(inspect(`docker://${target}`), /manifest unknown|not found/i);
  });

  it('a 401 on a blob upload mid-push (a token gone stale): a new token, the upload sent again, the push completes', async () => {
    // A forwarder answers the first layer upload itself with the challenge a registry gives an
    // expired token, as if the token had run out between the POST and the PUT.
    const forwarder = await startCuttingForwarder(registry.host, {
      minBody: 64 * 1024,
      interrupt: {
        kind: 'answer',
        status: 401,
        headers: {
          'www-authenticate': `Bearer realm="${tokens.realm}",service="${tokens.service}",scope="repository:team/renew:pull,push",error="invalid_token"`,
        },
      },
    });
    try {
      const seen = tokens.requests.length;
      const r = await build(image, pusher, { target: `${forwarder.host}/team/renew:1.0`, push: true, host: forwarder.host });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(forwarder.cut?.digest, 'the forwarder answered a layer upload with 401');
      assert.deepEqual(
        tokens.requests.slice(seen).map((t) => [t.user, t.granted]),
        [
          [pusher.user, ['repository:team/renew:pull,push']],
          [pusher.user, ['repository:team/renew:pull,push']],
        ],
        'a second token after the 401',
      );
      const built = JSON.parse(r.stdout) as { Release: { Digest: string } };
      assert.equal((await inspect(`docker://${registry.host}/team/renew:1.0`)).Digest, built.Release.Digest);
    } finally {
      await forwarder.close();
    }
  });

  it('a token service that is plain HTTP off loopback: refused before any credentials are sent', async () => {
    // The realm is never connected to (the refusal comes first), so a name that cannot resolve is enough.
    const realm = 'http://token.invalid/token';
    const other = await startRegistry(path.join(work, 'registry-http-realm'), {
      kind: 'token',
      realm,
      service: tokens.service,
      issuer: tokens.issuer,
      rootCert: selfSignedLoopbackCertificate().cert,
    });
    try {
      const ref = `docker://${other.host}/private/app:v1`;
      const r = await build(ref, reader);
      assert.equal(r.code, 1, r.stdout);
      assert.match(
        r.stderr,
        new RegExp(
          `${ref}: registry ${other.host} refused to let us pull private/app: the registry names a token service that is not HTTPS ` +
            `\\(http://token\\.invalid\\); credentials are not sent there`,
        ),
      );
      const left = fs.existsSync(r.out) ? fs.readdirSync(r.out) : [];
      assert.deepEqual(left, [], `nothing left in the output directory (${left.join(', ')})`);
    } finally {
      await other.stop();
    }
  });
});
