/**
 * End to end: the real local pair (outer in one process, inner as its child on emulated vsock)
 * with the unmodified @aws-sdk/client-kms as the supervised app, against the KMS and IMDS
 * emulators on loopback.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { CredentialStore } from '../emulators/credential-store.js';
import { ImdsEmulator } from '../emulators/imds/server.js';
import { KmsEmulator } from '../emulators/kms/server.js';
import { selfSignedLoopbackCertificate } from '../helpers/tls.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(DIST, 'bin/enclaver-proxy.js');
const APP = path.join(DIST, 'test/fixtures/kms-app.js');
const REGION = 'eu-west-1';
const PCR0 = '5e'.repeat(48);
/** Short-lived role credentials, so that they expire (and must be refreshed) during the run. */
const CREDENTIAL_LIFETIME_MS = 3000;
const RUN_FOR_MS = 4500;

function runPair(configPath: string, home: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, '--config', configPath], {
      env: { PATH: process.env.PATH, HOME: home, ENCLAVER_LOG_FORMAT: 'json', ENCLAVER_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.once('exit', (code) => resolve({ code, output }));
  });
}

describe('AWS SDK app inside the local pair (KMS proxy, IMDS relay, attestation)', () => {
  const store = new CredentialStore();
  const imds = new ImdsEmulator({ store, region: REGION, credentialLifetimeMs: CREDENTIAL_LIFETIME_MS });
  let kms: KmsEmulator;
  let dir: string;
  let result: Record<string, unknown>;
  let run: { code: number | null; output: string };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aws-pair-'));
    const tls = selfSignedLoopbackCertificate();
    fs.writeFileSync(path.join(dir, 'kms-ca.pem'), tls.cert);
    const rootPath = path.join(dir, 'nsm-root.pem');
    kms = new KmsEmulator({ store, region: REGION, tls, attestationRoot: () => fs.readFileSync(rootPath, 'utf8') });
    const [imdsUrl, kmsUrl] = await Promise.all([imds.start(), kms.start()]);
    const keyId = kms.createKey('SYMMETRIC_DEFAULT', { pcrs: { 0: PCR0 }, requireAttestation: true });
    const agreementKeyId = kms.createKey('ECC_NIST_P256', { imageSha384: PCR0 });
    const wrongPcrKeyId = kms.createKey('SYMMETRIC_DEFAULT', { pcrs: { 0: 'ff'.repeat(48) } });
    const resultFile = path.join(dir, 'result.json');
    const config = {
      role: 'local',
      runtime_dir: path.join(dir, 'run'),
      outer: { admin: { address: null }, imds_relay: { upstream: imdsUrl, token_ttl: '1m' } },
      inner: {
        admin: { address: null },
        nsm: { mode: 'simulator', simulator: { pcrs: { 0: PCR0 }, root_certificate_path: rootPath } },
        aws: { credential_refresh_margin: '1s' }, // region: from IMDS, through the relay
        app: {
          command: [process.execPath, APP, '--as-app'],
          env: {
            KEY_ID: keyId,
            AGREEMENT_KEY_ID: agreementKeyId,
            WRONG_PCR_KEY_ID: wrongPcrKeyId,
            AGREEMENT_PUBLIC_KEY: kms.publicKeyOf(agreementKeyId).toString('base64'),
            RESULT_FILE: resultFile,
            RUN_FOR_MS: String(RUN_FOR_MS),
          },
        },
        listeners: [
          { name: 'kms', address: 'tcp://127.0.0.1:0', kms: { endpoint: kmsUrl, ca_file: 'kms-ca.pem' } },
          { name: 'imds', address: 'tcp://127.0.0.1:0', imds: {} },
        ],
      },
    };
    const configPath = path.join(dir, 'pair.yaml');
    fs.writeFileSync(configPath, stringify(config));
    run = await runPair(configPath, dir);
    result = fs.existsSync(resultFile)
      ? (JSON.parse(fs.readFileSync(resultFile, 'utf8')) as Record<string, unknown>)
      : { error: 'no result file' };
  });

  after(async () => {
    await Promise.all([imds.stop(), kms.stop()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the app exits 0 and the pair exits with its code', () => {
    assert.equal(result.error, undefined, `app error: ${String(result.error)}\n${run.output}`);
    assert.equal(run.code, 0, run.output);
  });

  it('the app was given the inner IMDS and KMS endpoints and the region IMDS states', () => {
    const env = result.env as { imds: string; kms: string; region: string };
    assert.match(env.imds, /^http:\/\/127\.0\.0\.1:[1-9][0-9]*$/);
    assert.match(env.kms, /^http:\/\/127\.0\.0\.1:[1-9][0-9]*$/);
    assert.equal(env.region, REGION);
  });

  it('Decrypt, GenerateDataKey, GenerateDataKeyPair, GenerateRandom and DeriveSharedSecret return plaintext', () => {
    for (const op of ['decrypt', 'generateDataKey', 'generateDataKeyPair', 'generateRandom', 'deriveSharedSecret'])
      assert.equal(result[op], true, op);
    const attested = kms.calls.filter((c) =>
      ['Decrypt', 'GenerateDataKey', 'GenerateDataKeyPair', 'GenerateRandom', 'DeriveSharedSecret'].includes(c.action),
    );
    assert.ok(attested.length >= 6 && attested.every((c) => c.recipient), "every such call carried the enclave's Recipient");
  });

  it('a key policy with the wrong PCR0 reaches the app as AccessDeniedException', () => {
    assert.equal(result.wrongPcr, 'AccessDeniedException');
  });

  it('fromInstanceMetadata works against the inner IMDS endpoint', () => {
    const md = result.instanceMetadata as { accessKeyId: string; hasToken: boolean };
    assert.ok(store.lookup(md.accessKeyId), 'credentials the (emulated) instance role issued');
    assert.equal(md.hasToken, true);
  });

  it('role credentials that expired during the run were refreshed, and KMS never saw a bad signature', () => {
    assert.ok((result.callsDuringExpiry as number) > 0);
    const keys = new Set(kms.calls.map((c) => c.accessKeyId));
    assert.ok(
      keys.size >= 2,
      `the proxy signed with ${keys.size} credential set(s) over ${RUN_FOR_MS} ms of ${CREDENTIAL_LIFETIME_MS} ms credentials`,
    );
    assert.deepEqual(kms.refusedSignatures, []);
  });

  it('the inner announced the NSM simulator loudly at startup', () => {
    assert.match(run.output, /"level":"warn".*NSM SIMULATOR IN USE/);
  });
});
