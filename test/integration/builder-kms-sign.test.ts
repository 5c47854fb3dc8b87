/**
 * `enclaver-proxy build` signing the EIF with a KMS key: the builder's own AWS SDK client talks
 * HTTPS to the KMS emulator on loopback (AWS_ENDPOINT_URL_KMS, its CA in NODE_EXTRA_CA_CERTS,
 * session credentials in the environment, SigV4 verified by the emulator), the region taken from
 * the ARN. The key material is imported into the emulator from OpenSSL-made PEM keys, so the
 * same certificate signs a PEM build and a KMS build: their PCR0-2 and PCR8 must be equal (the
 * files are not: ECDSA signatures are randomised), describe-eif and the independent reader must
 * verify the signature. Each bad input fails with its own precise error and leaves nothing.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CredentialStore, type IssuedCredentials } from '../emulators/credential-store.js';
import { KmsEmulator } from '../emulators/kms/server.js';
import { makeStandInBlobs } from '../helpers/blobs.js';
import { cli } from '../helpers/cli-async.js';
import { readEifIndependently } from '../helpers/eif-independent.js';
import { ROOT } from '../helpers/paths.js';
import { fakeRuntimeDir, run, umociImage, missingTools } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';
import { selfSignedLoopbackCertificate } from '../helpers/tls.js';

const REGION = 'eu-west-1';

const missing = missingTools(['umoci', 'openssl']);

/** An OpenSSL-made key on `curve` and a self-signed certificate for it. */
function identity(dir: string, curve: string): { key: string; cert: string; material: crypto.KeyObject } {
  fs.mkdirSync(dir, { recursive: true });
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  run('openssl', ['ecparam', '-name', curve, '-genkey', '-noout', '-out', key]);
  run('openssl', ['req', '-new', '-x509', '-key', key, '-out', cert, '-days', '7', '-subj', `/CN=kms-signer-${curve}`]);
  return { key, cert, material: crypto.createPrivateKey(fs.readFileSync(key)) };
}

describe('enclaver-proxy build signs with a KMS key', { skip: missing.length ? `${missing.join(', ')} not installed` : false }, () => {
  let work: string;
  let blobs: string;
  let runtime: string;
  let image: string;
  let store: CredentialStore;
  let kms: KmsEmulator;
  let kmsUrl: string;
  let caFile: string;
  let creds: IssuedCredentials;
  let p384: ReturnType<typeof identity>;

  /** The builder's AWS environment: these credentials, the emulator, nothing from this machine's AWS setup. */
  function awsEnv(c: { accessKeyId: string; secretAccessKey: string; sessionToken: string }, endpoint = kmsUrl): Record<string, string> {
    return {
      AWS_ACCESS_KEY_ID: c.accessKeyId,
      AWS_SECRET_ACCESS_KEY: c.secretAccessKey,
      AWS_SESSION_TOKEN: c.sessionToken,
      AWS_ENDPOINT_URL_KMS: endpoint,
      NODE_EXTRA_CA_CERTS: caFile,
      // Never fall through to the instance metadata service or a profile of this machine.
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: path.join(work, 'no-aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: path.join(work, 'no-aws-credentials'),
      // This machine runs Node 20 (the product needs 22+); the SDK's warning about that would be a second stderr line.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
  }

  function manifest(dir: string, certificate: string, key: string): string {
    const file = path.join(dir, 'enclaver.yaml');
    fs.writeFileSync(
      file,
      `version: v1\nname: kms-signed\ntarget: kms-signed:1\nsources:\n  app: ${image}\nsignature:\n  certificate: ${certificate}\n  key: ${key}\n`,
    );
    return file;
  }

  /** `build -f FILE` (EIF only) into DIR/out; asserts that a failed build leaves nothing there. */
  async function build(file: string, env: Record<string, string>, ...extra: string[]) {
    const out = path.join(path.dirname(file), 'out');
    const r = await cli(['build', ...extra, '--out', out, '--blobs', blobs, '--runtime-dir', runtime, '--no-release', '--json'], { env });
    if (r.code !== 0) {
      const left = fs.existsSync(out) ? fs.readdirSync(out) : [];
      assert.deepEqual(left, [], `nothing left in the output directory (${left.join(', ')})`);
    }
    return { ...r, out, eif: path.join(out, 'application.eif') };
  }
  const buildManifest = (file: string, env: Record<string, string>) => build(file, env, '-f', file);
  const measurements = (stdout: string) => (JSON.parse(stdout) as { Measurements: Record<string, string> }).Measurements;
  const caseDir = () => fs.mkdtempSync(path.join(work, 'case-'));

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'kms-sign-'));
    blobs = makeStandInBlobs({ dir: path.join(work, 'blobs') });
    runtime = fakeRuntimeDir(path.join(work, 'runtime'));
    image = umociImage(path.join(work, 'layout'), 'v1', [(root) => fs.writeFileSync(path.join(root, 'app'), 'x', { mode: 0o755 })], {
      entrypoint: ['/app'],
    });
    store = new CredentialStore();
    creds = store.issue(3_600_000);
    const tls = selfSignedLoopbackCertificate();
    caFile = path.join(work, 'kms-ca.pem');
    fs.writeFileSync(caFile, tls.cert);
    kms = new KmsEmulator({
      store,
      region: REGION,
      tls,
      attestationRoot: () => {
        throw new Error('no attested calls in these tests');
      },
    });
    kmsUrl = await kms.start();
    p384 = identity(path.join(work, 'p384'), 'secp384r1');
  });
  after(async () => {
    await kms.stop();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('a P-384 KMS key in an Enclaver manifest: the same PCR0-2 and PCR8 as the PEM key, verified by describe-eif and the independent reader', async () => {
    const arn = kms.arnOf(kms.createSigningKey('ECC_NIST_P384', { material: p384.material }));
    const pem = await buildManifest(manifest(caseDir(), p384.cert, p384.key), {});
    assert.equal(pem.code, 0, pem.stderr);
    const signsBefore = kms.signRequests.length;
    const viaKms = await buildManifest(manifest(caseDir(), p384.cert, arn), awsEnv(creds));
    assert.equal(viaKms.code, 0, viaKms.stderr);
    const [a, b] = [measurements(pem.stdout), measurements(viaKms.stdout)];
    assert.match(b.PCR8 ?? '', /^[0-9a-f]{96}$/);
    assert.deepEqual(b, a, 'PCR0, PCR1, PCR2 and PCR8 equal the PEM-signed build');

    const ind = readEifIndependently(viaKms.eif);
    assert.equal(ind.storedCrc, ind.computedCrc);
    assert.equal(ind.signature?.valid, true, 'the independent reader verifies the KMS signature');
    assert.equal(ind.signature.algorithm, 'ES384');
    assert.equal(ind.signature.signedPcr0, b.PCR0);
    assert.equal(ind.signature.certificatePem, fs.readFileSync(p384.cert, 'utf8'));
    assert.equal(ind.pcrs.PCR8, b.PCR8);
    // ECDSA is randomised: only the signature section may differ between the two files.
    const pemSections = readEifIndependently(pem.eif).sections;
    for (const [i, s] of ind.sections.entries()) {
      if (s.type !== 4) assert.ok(s.payload.equals(pemSections[i]!.payload), `section ${i} (type ${s.type}) is the same bytes`);
    }
    const described = await cli(['describe-eif', viaKms.eif]);
    assert.equal(described.code, 0, described.stdout);
    assert.match(described.stdout, /signature: ES384, valid; signs this PCR0/);
    assert.match(described.stdout, /CN=kms-signer-secp384r1/);

    assert.deepEqual(kms.signRequests.slice(signsBefore), [
      { keyId: arn.slice(arn.lastIndexOf('/') + 1), messageType: 'DIGEST', signingAlgorithm: 'ECDSA_SHA_384' },
    ]);
    assert.deepEqual(
      kms.calls.filter((c) => c.accessKeyId === creds.accessKeyId).map((c) => c.action),
      ['GetPublicKey', 'Sign'],
      'GetPublicKey before any layer is read, Sign once at the end',
    );
  });

  it('P-256 and P-521 KMS keys named by build.signature.kms_key_arn sign with ES256 and ES512', async () => {
    for (const [curve, spec, algorithm] of [
      ['prime256v1', 'ECC_NIST_P256', 'ES256'],
      ['secp521r1', 'ECC_NIST_P521', 'ES512'],
    ] as const) {
      const dir = caseDir();
      const id = identity(path.join(dir, 'keys'), curve);
      const arn = kms.arnOf(kms.createSigningKey(spec, { material: id.material }));
      const file = path.join(dir, 'proxy.yaml');
      fs.writeFileSync(
        file,
        `role: inner\nbuild:\n  image: ${image}\n  target: kms-signed:1\n  signature:\n    certificate: keys/cert.pem\n    kms_key_arn: ${arn}\n`,
      );
      const r = await build(file, awsEnv(creds), '--config', file);
      assert.equal(r.code, 0, r.stderr);
      const ind = readEifIndependently(r.eif);
      assert.equal(ind.signature?.algorithm, algorithm);
      assert.equal(ind.signature.valid, true, `${algorithm} verifies`);
      assert.equal(ind.pcrs.PCR8, measurements(r.stdout).PCR8);
      const described = await cli(['describe-eif', r.eif]);
      assert.equal(described.code, 0, described.stdout);
      assert.match(described.stdout, new RegExp(`signature: ${algorithm}, valid; signs this PCR0`));
    }
  });

  it('measure IMAGE with a KMS-signed manifest prints PCR8 from the certificate and calls KMS not at all', async () => {
    const arn = kms.arnOf(kms.createSigningKey('ECC_NIST_P384', { material: p384.material }));
    const file = manifest(caseDir(), p384.cert, arn);
    const before = kms.calls.length;
    // No credentials and no endpoint: measuring must not need them.
    const r = await cli(['measure', image, '-f', file, '--blobs', blobs, '--runtime-dir', runtime, '--json'], {
      env: { AWS_EC2_METADATA_DISABLED: 'true' },
    });
    assert.equal(r.code, 0, r.stderr);
    const pem = await buildManifest(manifest(caseDir(), p384.cert, p384.key), {});
    assert.equal(measurements(r.stdout).PCR8, measurements(pem.stdout).PCR8);
    assert.equal(kms.calls.length, before, 'no KMS request');
  });

  it('refuses wrong credentials (unknown key id, wrong secret) with the KMS error, never printing them', async () => {
    const arn = kms.arnOf(kms.createSigningKey('ECC_NIST_P384', { material: p384.material }));
    const unknown = { accessKeyId: 'ASIAUNKNOWN0000000000', secretAccessKey: 'not-a-real-secret-value', sessionToken: 'not-a-real-token' };
    const wrongSecret = { ...creds, secretAccessKey: crypto.randomBytes(30).toString('base64') };
    for (const [c, code] of [
      [unknown, 'UnrecognizedClientException'],
      [wrongSecret, 'InvalidSignatureException'],
    ] as const) {
      const r = await buildManifest(manifest(caseDir(), p384.cert, arn), awsEnv(c));
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`KMS key ${arn}: GetPublicKey failed: ${code}: `));
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
      for (const secret of [c.secretAccessKey, c.sessionToken]) assert.ok(!r.stderr.includes(secret), 'no credential in the output');
    }
    // None at all: the SDK's chain finds nothing (instance metadata disabled, no profile files), KMS is never asked.
    const before = kms.calls.length + kms.refusedSignatures.length;
    const none = await buildManifest(manifest(caseDir(), p384.cert, arn), {
      ...awsEnv({ accessKeyId: '', secretAccessKey: '', sessionToken: '' }),
      AWS_PROFILE: '',
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '',
      AWS_CONTAINER_CREDENTIALS_FULL_URI: '',
      AWS_WEB_IDENTITY_TOKEN_FILE: '',
    });
    assert.equal(none.code, 1, none.stderr);
    assert.match(none.stderr, new RegExp(`KMS key ${arn}: GetPublicKey failed: no AWS credentials \\(.*\\); give them the usual way`));
    assert.equal(kms.calls.length + kms.refusedSignatures.length, before, 'no request reached KMS');
  });

  it('refuses an unknown key, a disabled key, and a symmetric, RSA or key-agreement key, naming the ARN', async () => {
    const unknownArn = `arn:aws:kms:${REGION}:111122223333:key/${crypto.randomUUID()}`;
    const disabled = kms.createSigningKey('ECC_NIST_P384', { material: p384.material });
    kms.disableKey(disabled);
    const cases: [string, RegExp][] = [
      [unknownArn, /GetPublicKey failed: NotFoundException: /],
      [kms.arnOf(disabled), /GetPublicKey failed: DisabledException: /],
      [kms.arnOf(kms.createKey('SYMMETRIC_DEFAULT')), /GetPublicKey failed: UnsupportedOperationException: /],
      [kms.arnOf(kms.createSigningKey('RSA_2048')), /cannot sign this EIF: its KeySpec is RSA_2048; an EIF is signed with ECDSA/],
      [kms.arnOf(kms.createKey('ECC_NIST_P256')), /cannot sign this EIF: its KeyUsage is KEY_AGREEMENT, not SIGN_VERIFY/],
    ];
    for (const [arn, why] of cases) {
      const r = await buildManifest(manifest(caseDir(), p384.cert, arn), awsEnv(creds));
      assert.equal(r.code, 1, r.stderr);
      assert.ok(r.stderr.includes(`KMS key ${arn}`), r.stderr);
      assert.match(r.stderr, why);
    }
  });

  it("refuses a KMS key whose public key is not the certificate's, naming the ARN and the certificate file", async () => {
    const arn = kms.arnOf(kms.createSigningKey('ECC_NIST_P384'));
    const r = await buildManifest(manifest(caseDir(), p384.cert, arn), awsEnv(creds));
    assert.equal(r.code, 1, r.stderr);
    assert.ok(r.stderr.includes(`KMS key ${arn} cannot sign this EIF: its public key is not the one in ${p384.cert}`), r.stderr);
  });

  it('a Sign the key policy denies fails the build at the end, and no EIF is left', async () => {
    const keyId = kms.createSigningKey('ECC_NIST_P384', { material: p384.material, policy: { deny: ['Sign'] } });
    const before = kms.calls.length;
    const r = await buildManifest(manifest(caseDir(), p384.cert, kms.arnOf(keyId)), awsEnv(creds));
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`KMS key ${kms.arnOf(keyId)}: Sign failed: AccessDeniedException: .*not authorized to perform: kms:Sign`),
    );
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    assert.deepEqual(
      kms.calls.slice(before).map((c) => c.action),
      ['GetPublicKey', 'Sign'],
      'refused by KMS at Sign, after GetPublicKey had passed and the EIF was written',
    );
  });

  it('KMS not reachable: one line naming the ARN', async () => {
    const arn = kms.arnOf(kms.createSigningKey('ECC_NIST_P384', { material: p384.material }));
    const closed = `https://127.0.0.1:${await freePort()}`;
    const r = await buildManifest(manifest(caseDir(), p384.cert, arn), awsEnv(creds, closed));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`KMS key ${arn}: GetPublicKey failed: KMS not reached: .*ECONNREFUSED`));
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  });

  it('without the optional @aws-sdk/client-kms: says to install it, before any layer is read; a PEM-signed build still works', async () => {
    const hide = { NODE_OPTIONS: `--import=${path.join(ROOT, 'dist/test/fixtures/without-kms-sdk.js')}` };
    const arn = kms.arnOf(kms.createSigningKey('ECC_NIST_P384', { material: p384.material }));
    const r = await buildManifest(manifest(caseDir(), p384.cert, arn), { ...awsEnv(creds), ...hide });
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /signing with a KMS key needs the optional dependency @aws-sdk\/client-kms, which is not installed .*npm install @aws-sdk\/client-kms/,
    );
    const pem = await buildManifest(manifest(caseDir(), p384.cert, p384.key), hide);
    assert.equal(pem.code, 0, pem.stderr);
  });

  it('a malformed ARN is a config error at file:line:col, in a manifest and in build:; so is a key given twice', async () => {
    const bad = 'arn:aws:kms:eu-west-1:1234:key/abc';
    const m = await buildManifest(manifest(caseDir(), p384.cert, bad), {});
    assert.equal(m.code, 2, m.stderr);
    assert.match(m.stderr, /enclaver\.yaml:8:\d+: signature\.key: "arn:aws:kms:eu-west-1:1234:key\/abc" does not match \^arn:aws/);
    const dir = caseDir();
    const file = path.join(dir, 'proxy.yaml');
    const config = (signature: string) =>
      fs.writeFileSync(
        file,
        `role: inner\nbuild:\n  image: ${image}\n  target: x:1\n  signature:\n    certificate: ${p384.cert}\n${signature}`,
      );
    config(`    kms_key_arn: ${bad}\n`);
    let r = await build(file, {}, '--config', file);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /proxy\.yaml:7:\d+: build\.signature\.kms_key_arn: "arn:aws:kms:eu-west-1:1234:key\/abc" does not match/);
    config(`    kms_key_arn: arn:aws:kms:${REGION}:111122223333:key/abc\n    key: ${p384.key}\n`);
    r = await build(file, {}, '--config', file);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /proxy\.yaml:6:\d+: build\.signature: give the signing key once: `key` \(a PEM file\) or `kms_key_arn`/);
    config('');
    r = await build(file, {}, '--config', file);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /proxy\.yaml:6:\d+: build\.signature: the signing key is missing/);
  });
});
