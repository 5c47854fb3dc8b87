/**
 * `enclaver-proxy build --config proxy.yaml`: a role inner config with a `build:` section. The
 * inner side written by hand (other key order, comments, some defaults spelled out) gives the
 * same PCRs as the Enclaver manifest that means the same, signed with the same key; the release
 * image carries the outer config (`build.outer_config`) made to launch the EIF, read back by
 * skopeo and umoci; bad `build:` fields are each named with file:line:col and the fix.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { makeStandInBlobs } from '../helpers/blobs.js';
import { cli } from '../helpers/cli-async.js';
import { fakeRuntimeDir, run, umociImage, missingTools } from '../helpers/images.js';

const missing = missingTools(['umoci', 'skopeo', 'openssl']);

const MANIFEST = `version: v1
name: same-app
target: same-app:1.0
sources:
  app: IMAGE
signature:
  certificate: cert.pem
  key: key.pem
ingress:
  - listen_port: 8080
egress:
  allow: [example.org]
`;

// The same inner side as MANIFEST translates to, written the way a person would.
const CONFIG = `# the inner side of the same app
role: inner
listeners:
  - address: vsock://any:8080
    name: ingress-8080
    cluster: app-8080
    proxy_protocol: v2
  - name: egress
    egress:
      deny: []
      allow: [example.org]
    address: tcp://127.0.0.1:10000
clusters:
  - endpoints: [tcp://127.0.0.1:8080]
    name: app-8080
admin:
  address: tcp://127.0.0.1:9901   # the default, spelled out
build:
  image: oci:app-layout:v1
  target: registry.example/same-app:1.0
  signature: { certificate: keys/cert.pem, key: keys/key.pem }
  outer_config: outer.yaml
  defaults: { cpu_count: 2, memory_mib: 2048 }
`;

const OUTER = `role: outer
enclave: { cid: 16 }
listeners:
  - { name: web, address: tcp://0.0.0.0:8080, cluster: enclave }
clusters:
  - { name: enclave, endpoints: [vsock://16:8080], proxy_protocol: v2 }
`;

describe(
  'enclaver-proxy build --config (a build: section)',
  { skip: missing.length ? `${missing.join(', ')} not installed` : false },
  () => {
    let work: string;
    let blobs: string;
    let runtime: string;
    let layout: string;
    /** The build from `project/proxy.yaml` (+ outer.yaml), made once for the tests below. */
    let fromConfig: { code: number | null; stdout: string; stderr: string };

    before(async () => {
      work = fs.mkdtempSync(path.join(os.tmpdir(), 'build-config-'));
      blobs = makeStandInBlobs({ dir: path.join(work, 'blobs') });
      runtime = fakeRuntimeDir(path.join(work, 'runtime'));
      layout = path.join(work, 'project', 'app-layout');
      fs.mkdirSync(path.join(work, 'project', 'keys'), { recursive: true });
      umociImage(layout, 'v1', [(root) => fs.writeFileSync(path.join(root, 'server'), '#!/bin/sh\n', { mode: 0o755 })], {
        entrypoint: ['/server'],
        cmd: ['--port', '8080'],
        env: ['MODE=prod'],
      });
      const keys = path.join(work, 'project', 'keys');
      run('openssl', ['ecparam', '-name', 'secp384r1', '-genkey', '-noout', '-out', path.join(keys, 'key.pem')]);
      run('openssl', [
        'req',
        '-new',
        '-x509',
        '-key',
        path.join(keys, 'key.pem'),
        '-out',
        path.join(keys, 'cert.pem'),
        '-days',
        '7',
        '-subj',
        '/CN=s',
      ]);
      fs.writeFileSync(path.join(work, 'project', 'proxy.yaml'), CONFIG);
      fs.writeFileSync(path.join(work, 'project', 'outer.yaml'), OUTER);
      // Run from elsewhere: the config's paths are relative to the config file, not the caller.
      fromConfig = await cli(withTools(['build', '--config', path.join(work, 'project', 'proxy.yaml'), '--out', path.join(work, 'o1')]), {
        cwd: work,
      });
    });
    after(() => fs.rmSync(work, { recursive: true, force: true }));

    function project(files: Record<string, string>): string {
      const dir = fs.mkdtempSync(path.join(work, 'p-'));
      for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
      return dir;
    }

    const buildArgs = ['--blobs', '', '--runtime-dir', '', '--json'];
    const withTools = (args: string[]) => [...args, ...buildArgs.map((a, i) => (i === 1 ? blobs : i === 3 ? runtime : a))];
    type BuildJson = { Measurements: Record<string, string>; Release: { Layout: string } | null };

    it('gives the same PCR0, PCR1, PCR2 and PCR8 as the Enclaver manifest that means the same', async () => {
      const configDir = path.join(work, 'project');
      assert.equal(fromConfig.code, 0, fromConfig.stderr);
      const manifestDir = project({ 'enclaver.yaml': MANIFEST.replace('IMAGE', `oci:${layout}:v1`) });
      for (const f of ['cert.pem', 'key.pem']) fs.copyFileSync(path.join(configDir, 'keys', f), path.join(manifestDir, f));
      const fromManifest = await cli(withTools(['build', '-f', path.join(manifestDir, 'enclaver.yaml'), '--out', path.join(work, 'o2')]));
      assert.equal(fromManifest.code, 0, fromManifest.stderr);
      const a = (JSON.parse(fromConfig.stdout) as BuildJson).Measurements;
      const b = (JSON.parse(fromManifest.stdout) as BuildJson).Measurements;
      assert.match(a.PCR8 ?? '', /^[0-9a-f]{96}$/, 'signed: PCR8 present');
      assert.deepEqual(a, b);

      // A different inner side is a different measurement (the comparison above can fail).
      fs.writeFileSync(path.join(configDir, 'other.yaml'), CONFIG.replace('[example.org]', '[example.com]'));
      const other = await cli(
        withTools(['build', '--config', path.join(configDir, 'other.yaml'), '--out', path.join(work, 'o3'), '--no-release']),
      );
      assert.equal(other.code, 0, other.stderr);
      const c = (JSON.parse(other.stdout) as BuildJson).Measurements;
      assert.equal(c.PCR1, a.PCR1, 'kernel and bootstrap unchanged');
      assert.notEqual(c.PCR2, a.PCR2, 'another egress allowlist is another PCR2');
    });

    it('measure IMAGE -c proxy.yaml gives the PCRs the build gave', async () => {
      assert.equal(fromConfig.code, 0, fromConfig.stderr);
      const built = (JSON.parse(fromConfig.stdout) as BuildJson).Measurements;
      const config = path.join(work, 'project', 'proxy.yaml');
      const r = await cli(['measure', `oci:${layout}:v1`, '-c', config, '--blobs', blobs, '--runtime-dir', runtime, '--json']);
      assert.equal(r.code, 0, r.stderr);
      const measured = (JSON.parse(r.stdout) as { Measurements: Record<string, string> }).Measurements;
      assert.deepEqual(
        { PCR0: measured.PCR0, PCR1: measured.PCR1, PCR2: measured.PCR2, PCR8: measured.PCR8 },
        { PCR0: built.PCR0, PCR1: built.PCR1, PCR2: built.PCR2, PCR8: built.PCR8 },
      );
    });

    it("the release image runs outer_config's outer side, launching /enclave/application.eif with the build's defaults", async () => {
      assert.equal(fromConfig.code, 0, fromConfig.stderr);
      const out = path.join(work, 'o1');
      const config = JSON.parse(run('skopeo', ['inspect', '--config', `oci:${out}/release:1.0`])) as { config: { Entrypoint: string[] } };
      assert.deepEqual(config.config.Entrypoint.slice(-3), [
        '/opt/enclaver-proxy/app/dist/bin/enclaver-proxy.js',
        '--config',
        '/enclave/proxy.yaml',
      ]);
      const bundle = path.join(work, 'release-bundle');
      run('umoci', ['unpack', '--rootless', '--image', `${out}/release:1.0`, bundle]);
      const rootfs = path.join(bundle, 'rootfs');
      assert.ok(fs.readFileSync(path.join(rootfs, 'enclave/application.eif')).equals(fs.readFileSync(path.join(out, 'application.eif'))));
      const outer = parseYaml(fs.readFileSync(path.join(rootfs, 'enclave/proxy.yaml'), 'utf8')) as {
        role: string;
        enclave: { cid: number; eif: string; cpu_count: number; memory_mib: number };
        listeners: { name: string }[];
      };
      assert.equal(outer.role, 'outer');
      assert.deepEqual(
        { cid: outer.enclave.cid, eif: outer.enclave.eif, cpus: outer.enclave.cpu_count, memory: outer.enclave.memory_mib },
        { cid: 16, eif: '/enclave/application.eif', cpus: 2, memory: 2048 },
      );
      assert.deepEqual(
        outer.listeners.map((l) => l.name),
        ['web'],
      );
      // The proxy accepts it as its config (the EIF it names is in place beside it).
      const eifDir = path.join(work, 'enclave-check');
      fs.mkdirSync(eifDir);
      const text = fs
        .readFileSync(path.join(rootfs, 'enclave/proxy.yaml'), 'utf8')
        .replace('eif: /enclave/application.eif', `eif: ${path.join(rootfs, 'enclave/application.eif')}`);
      fs.writeFileSync(path.join(eifDir, 'proxy.yaml'), text);
      const check = await cli(['--config', path.join(eifDir, 'proxy.yaml'), '--check']);
      assert.equal(check.code, 0, check.stderr);
    });

    it('running the proxy with the same file ignores build: and says so', async () => {
      const r = await cli(['--config', path.join(work, 'project', 'proxy.yaml'), '--check']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /proxy\.yaml:\d+: `build` is used only by `enclaver-proxy build --config`; running the proxy ignores it/);
      assert.match(r.stdout, /build:\n\s+image: oci:\/.*app-layout:v1/, '--check prints the image path resolved against the config');
    });

    it('names each bad build: field with file:line:col, all at once, and writes nothing', async () => {
      const bad = CONFIG.replace('  target: registry.example/same-app:1.0\n', '')
        .replace('outer_config: outer.yaml', 'outer_confg: outer.yaml')
        .replace('memory_mib: 2048', 'memory_mib: 10');
      const dir = project({ 'proxy.yaml': bad });
      const out = path.join(dir, 'out');
      const r = await cli(withTools(['build', '--config', path.join(dir, 'proxy.yaml'), '--out', out]));
      assert.equal(r.code, 2, r.stderr);
      const file = path.join(dir, 'proxy.yaml').replace(/[.]/g, '\\.');
      assert.match(r.stderr, /invalid config/);
      assert.match(r.stderr, new RegExp(`${file}:\\d+:\\d+: build: .*target`));
      assert.match(r.stderr, new RegExp(`${file}:\\d+:\\d+: build\\.outer_confg: .*`));
      assert.match(r.stderr, new RegExp(`${file}:\\d+:\\d+: build\\.defaults\\.memory_mib: .*64`));
      assert.ok(!fs.existsSync(out), 'nothing written');
    });

    it('refuses build: outside a role inner config, and a release without outer_config', async () => {
      const outerWithBuild = project({ 'proxy.yaml': `${OUTER}build:\n  image: oci:x:v1\n  target: x:1\n` });
      const r1 = await cli(
        withTools(['build', '--config', path.join(outerWithBuild, 'proxy.yaml'), '--out', path.join(outerWithBuild, 'out')]),
      );
      assert.equal(r1.code, 2, r1.stderr);
      assert.match(r1.stderr, /proxy\.yaml:\d+:\d+: build: `build` packages an inner side .* put it in a role inner config/);
      const noOuter = project({ 'proxy.yaml': CONFIG.replace('  outer_config: outer.yaml\n', '') });
      const r2 = await cli(withTools(['build', '--config', path.join(noOuter, 'proxy.yaml'), '--out', path.join(noOuter, 'out')]));
      assert.equal(r2.code, 2, r2.stderr);
      assert.match(r2.stderr, /proxy\.yaml:\d+:\d+: build: .*`build\.outer_config`.*or pass --no-release/);
      assert.ok(!fs.existsSync(path.join(noOuter, 'out')), 'refused before anything is written');
      const noBuild = project({ 'proxy.yaml': 'role: inner\n' });
      const r3 = await cli(withTools(['build', '--config', path.join(noBuild, 'proxy.yaml'), '--out', path.join(noBuild, 'out')]));
      assert.equal(r3.code, 1, r3.stderr);
      assert.match(r3.stderr, /no `build:` section in a role inner config: add one/);
    });
  },
);
