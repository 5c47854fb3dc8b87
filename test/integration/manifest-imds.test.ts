/**
 * Enclaver manifests and instance-metadata credentials: a manifest whose app may reach IMDS (it
 * allows 169.254.169.254, or has a KMS proxy) gets the inner `imds` listener and the outer IMDS
 * relay, so the AWS SDK's `fromInstanceMetadata` in the app finds role credentials as Enclaver
 * users expect. The run uses the manifest's own translation (`--check` output), with only the
 * relay's upstream pointed at the IMDS emulator and ports made free for a parallel test run.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { CredentialStore } from '../emulators/credential-store.js';
import { ImdsEmulator } from '../emulators/imds/server.js';
import { ROOT } from '../helpers/paths.js';
import { runCli, runCliToEnd, tempDir, writeConfig } from '../helpers/process.js';

const MANIFEST = `version: v1
name: app
target: app:enclave
sources: { app: app:latest }
egress:
  allow: [169.254.169.254, s3.amazonaws.com]
`;

/** The app: ask the SDK's IMDS provider for credentials and write what it got. */
const APP = `
const { fromInstanceMetadata } = require('@aws-sdk/credential-providers');
fromInstanceMetadata({ maxRetries: 0, timeout: 5000 })().then(
  (c) => { require('node:fs').writeFileSync(process.env.RESULT_FILE, JSON.stringify({ accessKeyId: c.accessKeyId, endpoint: process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT })); },
  (err) => { console.error(String(err)); process.exit(1); });
`;

type Doc = {
  outer: Record<string, unknown>;
  inner: { listeners: { name: string; address: string; imds?: unknown }[] } & Record<string, unknown>;
};

describe('an Enclaver manifest gives the app instance-metadata credentials', () => {
  const dir = tempDir();
  const store = new CredentialStore();
  const imds = new ImdsEmulator({ store });
  let doc: Doc;

  before(async () => {
    const r = await runCliToEnd(['--config', writeConfig(dir, 'enclaver.yaml', MANIFEST), '--check', '--role', 'local']);
    assert.equal(r.code, 0, r.stderr);
    doc = parse(r.stdout) as Doc;
  });

  after(async () => {
    await imds.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the translation has the inner imds listener on a free loopback port and the outer relay', () => {
    assert.deepEqual(
      doc.inner.listeners.filter((l) => l.imds !== undefined).map((l) => l.address),
      ['tcp://127.0.0.1:0'],
    );
    assert.ok(doc.outer.imds_relay, 'the outer relays IMDS');
  });

  test('a manifest without KMS proxy or IMDS in its allowlist gets neither', async () => {
    const r = await runCliToEnd([
      '--config',
      writeConfig(dir, 'plain.yaml', MANIFEST.replace('169.254.169.254, ', '')),
      '--check',
      '--role',
      'local',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const plain = parse(r.stdout) as Doc;
    assert.equal(plain.outer.imds_relay, undefined);
    assert.ok(plain.inner.listeners.every((l) => l.imds === undefined));
  });

  test("fromInstanceMetadata in the app gets the instance role's credentials through the pair", async () => {
    const upstream = await imds.start();
    const resultFile = path.join(dir, 'result.json');
    const run = {
      ...doc,
      runtime_dir: path.join(dir, 'run'),
      outer: { ...doc.outer, admin: { address: null }, imds_relay: { ...(doc.outer.imds_relay as object), upstream } },
      inner: {
        ...doc.inner,
        admin: { address: null },
        app: { command: [process.execPath, '-e', APP], cwd: ROOT, env: { RESULT_FILE: resultFile } },
        // The egress listener's port is Enclaver's default 10000; a parallel test may hold it.
        listeners: doc.inner.listeners.map((l) => (l.name === 'egress' ? { ...l, address: 'tcp://127.0.0.1:0' } : l)),
      },
    };
    const pair = runCli(['--config', writeConfig(dir, 'run.yaml', stringify(run))], { env: { ENCLAVER_LOG_LEVEL: 'warn' } });
    const { code } = await pair.exited;
    assert.equal(code, 0, `${pair.stdout()}\n${pair.stderr()}`);
    const got = JSON.parse(fs.readFileSync(resultFile, 'utf8')) as { accessKeyId: string; endpoint: string };
    assert.ok(store.lookup(got.accessKeyId), 'credentials the (emulated) instance role issued');
    assert.match(got.endpoint, /^http:\/\/127\.0\.0\.1:[1-9][0-9]*$/, 'the app was given the inner IMDS endpoint with its bound port');
  });
});
