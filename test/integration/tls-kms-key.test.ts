/**
 * TLS terminated inside the enclave with a private key that only the enclave can decrypt: the key
 * is stored sealed by KMS under a key policy that requires the enclave's PCR0; the inner decrypts
 * it at startup with an attested Decrypt sent through its own egress proxy (so the allowlist
 * governs it), with credentials relayed from IMDS. Real curl checks the served certificate.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { CredentialStore } from '../emulators/credential-store.js';
import { ImdsEmulator } from '../emulators/imds/server.js';
import { KmsEmulator } from '../emulators/kms/server.js';
import { ROOT } from '../helpers/paths.js';
import { freePorts } from '../helpers/ports.js';
import { runCli, tempDir, type Proc } from '../helpers/process.js';
import { selfSignedLoopbackCertificate } from '../helpers/tls.js';
import { eventually } from '../helpers/eventually.js';

const exec = promisify(execFile);
const REGION = 'eu-west-1';
const PCR0 = '7a'.repeat(48);

describe('a KMS-sealed TLS key, opened only inside the enclave', () => {
  const store = new CredentialStore();
  const imds = new ImdsEmulator({ store, region: REGION, credentialLifetimeMs: 60_000 });
  const dir = tempDir();
  const rootPath = path.join(dir, 'nsm-root.pem');
  let kms: KmsEmulator;
  let imdsUrl: string;
  let kmsUrl: string;
  let goodKey: string;
  let wrongPcrKey: string;

  before(async () => {
    const kmsTls = selfSignedLoopbackCertificate();
    fs.writeFileSync(path.join(dir, 'kms-ca.pem'), kmsTls.cert);
    kms = new KmsEmulator({ store, region: REGION, tls: kmsTls, attestationRoot: () => fs.readFileSync(rootPath, 'utf8') });
    [imdsUrl, kmsUrl] = await Promise.all([imds.start(), kms.start()]);
    goodKey = kms.createKey('SYMMETRIC_DEFAULT', { pcrs: { 0: PCR0 }, requireAttestation: true });
    wrongPcrKey = kms.createKey('SYMMETRIC_DEFAULT', { pcrs: { 0: 'ff'.repeat(48) }, requireAttestation: true });
    // The site's certificate and key; the key is kept only sealed (as `aws kms encrypt` output, base64).
    const site = selfSignedLoopbackCertificate();
    fs.writeFileSync(path.join(dir, 'site.crt'), site.cert);
    fs.writeFileSync(path.join(dir, 'site.key.kms'), kms.encrypt(goodKey, Buffer.from(site.key)).toString('base64'));
    fs.writeFileSync(path.join(dir, 'site.key.wrong-pcr.kms'), kms.encrypt(wrongPcrKey, Buffer.from(site.key)));
  });

  after(async () => {
    await Promise.all([imds.stop(), kms.stop()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function startPair(sealedKey: string): Promise<{ proc: Proc; ingress: number }> {
    const [ingress, egress, app] = (await freePorts(3)) as [number, number, number];
    const kmsPort = new URL(kmsUrl).port;
    const config = {
      role: 'local',
      runtime_dir: path.join(dir, `run-${ingress}`),
      outer: {
        admin: { address: null },
        imds_relay: { upstream: imdsUrl },
        egress_relay: { allow_private: true }, // the emulator is on loopback
        audit: { stdout: true },
        listeners: [{ name: 'web', address: `tcp://127.0.0.1:${ingress}`, cluster: 'enclave' }],
        clusters: [{ name: 'enclave', endpoints: ['vsock://16:8443'], proxy_protocol: 'v2' }],
      },
      inner: {
        admin: { address: null },
        nsm: { mode: 'simulator', simulator: { pcrs: { 0: PCR0 }, root_certificate_path: rootPath } },
        aws: { region: REGION },
        app: { command: [process.execPath, path.join(ROOT, 'configs/demo/app.mjs')], env: { PORT: String(app) } },
        listeners: [
          {
            name: 'web',
            address: 'vsock://any:8443',
            proxy_protocol: 'v2',
            cluster: 'app',
            tls: {
              certificate: 'site.crt',
              private_key: {
                kms_ciphertext: sealedKey,
                kms: { endpoint: kmsUrl, egress_proxy: `http://127.0.0.1:${egress}`, ca_file: 'kms-ca.pem' },
              },
            },
          },
          {
            name: 'egress',
            address: `tcp://127.0.0.1:${egress}`,
            egress: { protocols: ['http_connect'], allow: [`127.0.0.1:${kmsPort}`] },
          },
        ],
        clusters: [{ name: 'app', endpoints: [`tcp://127.0.0.1:${app}`] }],
      },
    };
    const file = path.join(dir, `pair-${ingress}.yaml`);
    fs.writeFileSync(file, stringify(config));
    return { proc: runCli(['--config', file]), ingress };
  }

  test('the inner decrypts the key with an attested call through its egress proxy, and serves TLS with it', async () => {
    const { proc, ingress } = await startPair('site.key.kms');
    try {
      await proc.waitFor((r) => r.msg === 'TLS keys decrypted inside the enclave (attested KMS)', 20_000, 'the sealed key opened');
      await proc.waitFor((r) => r.msg === 'local pair ready', 10_000, 'pair ready');
      await eventually('the demo app listening', () => /demo app listening/.test(proc.stdout()));
      const { stdout } = await exec('curl', [
        '-sS',
        '--max-time',
        '10',
        '--cacert',
        path.join(dir, 'site.crt'),
        `https://localhost:${ingress}/sealed`,
      ]);
      assert.match(stdout, /"path":"\/sealed"/);
      const decrypt = kms.calls.find((c) => c.action === 'Decrypt');
      assert.ok(decrypt?.recipient, "the Decrypt carried the enclave's attestation as Recipient");
    } finally {
      await proc.stop();
    }
    // A tunnel's audit record is complete when it closes (here: the kept-alive KMS connection at shutdown).
    const audit = proc.records().find((r) => r.type === 'egress' && r.decision === 'allow' && r.dest_port === Number(new URL(kmsUrl).port));
    assert.ok(
      audit,
      `the KMS connection went through the egress proxy and is on the audit record\n${proc
        .records()
        .filter((r) => /egress|kms|audit|relay/i.test(JSON.stringify(r)))
        .map((r) => JSON.stringify(r))
        .join('\n')}`,
    );
  });

  test("a key whose policy wants other PCRs stops the inner at startup, naming the file and KMS's refusal", async () => {
    const { proc } = await startPair('site.key.wrong-pcr.kms');
    const { code } = await proc.exited;
    assert.equal(code, 1);
    const fatal = proc.records().find((r) => r.msg === 'inner proxy could not start');
    assert.match(String(fatal?.err), /KMS refused to decrypt the sealed TLS key .*site\.key\.wrong-pcr\.kms: AccessDeniedException/);
  });
});
