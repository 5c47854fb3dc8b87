import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  DecryptCommand,
  DeriveSharedSecretCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyPairCommand,
  GenerateRandomCommand,
  KMSClient,
} from '@aws-sdk/client-kms';
import { request } from 'undici';
import { registry } from '../../shared/metrics/registry.js';
import { verifyAttestation } from '../../shared/attestation/verify.js';
import { decryptRecipientEnvelope } from '../../proxy-inner/aws/cms.js';
import { serveOnLoopback } from '../helpers/serve.js';
import { type AwsStack, TEST_PCR0, TEST_REGION, startAwsStack } from '../helpers/aws-stack.js';
import { ConnectProxy } from '../helpers/connect-proxy.js';
import { kmsError } from '../helpers/kms-error.js';

/** The app's own (dummy) credentials: the proxy must drop them and sign with the role's. */
const APP_CREDENTIALS = { accessKeyId: 'AKIDAPPDUMMY', secretAccessKey: 'app-secret-that-kms-never-sees' };

describe('KMS proxy with the unmodified @aws-sdk/client-kms', () => {
  let stack: AwsStack;
  let kms: KMSClient;
  let keyId: string;

  before(async () => {
    stack = await startAwsStack();
    kms = new KMSClient({ region: TEST_REGION, endpoint: stack.kmsProxy.url, credentials: APP_CREDENTIALS, maxAttempts: 1 });
    keyId = stack.kms.createKey('SYMMETRIC_DEFAULT', { pcrs: { 0: TEST_PCR0.toUpperCase() }, requireAttestation: true });
  });

  after(async () => {
    kms.destroy();
    await stack.close();
  });

  it('Encrypt passes through re-signed; Decrypt comes back as Plaintext through an attested call', async () => {
    const plaintext = Buffer.from('the tls private key, say');
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext }));
    const out = await kms.send(new DecryptCommand({ CiphertextBlob }));
    assert.deepEqual(Buffer.from(out.Plaintext!), plaintext);
    const decrypt = stack.kms.calls.filter((c) => c.action === 'Decrypt').at(-1)!;
    assert.equal(decrypt.recipient, true, 'the proxy injected a Recipient');
    assert.ok(stack.store.lookup(decrypt.accessKeyId), "signed with the role credentials, not the app's");
    assert.equal(stack.kms.calls.find((c) => c.action === 'Encrypt')!.recipient, false);
  });

  it('GenerateDataKey returns the data key as Plaintext, and it matches its CiphertextBlob', async () => {
    const out = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' }));
    assert.equal(out.Plaintext!.length, 32);
    const again = await kms.send(new DecryptCommand({ CiphertextBlob: out.CiphertextBlob }));
    assert.deepEqual(Buffer.from(again.Plaintext!), Buffer.from(out.Plaintext!));
  });

  it('GenerateDataKeyPair returns PrivateKeyPlaintext (PKCS#8) matching PublicKey', async () => {
    const out = await kms.send(new GenerateDataKeyPairCommand({ KeyId: keyId, KeyPairSpec: 'ECC_NIST_P256' }));
    assert.equal(out.PrivateKeyPlaintext !== undefined, true);
    const privateKey = crypto.createPrivateKey({ key: Buffer.from(out.PrivateKeyPlaintext!), format: 'der', type: 'pkcs8' });
    const derived = crypto.createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
    assert.deepEqual(derived, Buffer.from(out.PublicKey!));
  });

  it('GenerateRandom returns the requested number of bytes as Plaintext', async () => {
    const out = await kms.send(new GenerateRandomCommand({ NumberOfBytes: 48 }));
    assert.equal(out.Plaintext!.length, 48);
    assert.equal(stack.kms.calls.filter((c) => c.action === 'GenerateRandom').at(-1)!.recipient, true);
  });

  it('DeriveSharedSecret returns SharedSecret equal to the ECDH the app computes itself', async () => {
    const agreementKey = stack.kms.createKey('ECC_NIST_P256', { pcrs: { 0: TEST_PCR0 } });
    const mine = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const out = await kms.send(
      new DeriveSharedSecretCommand({
        KeyId: agreementKey,
        KeyAgreementAlgorithm: 'ECDH',
        PublicKey: mine.publicKey.export({ type: 'spki', format: 'der' }),
      }),
    );
    const expected = crypto.diffieHellman({
      privateKey: mine.privateKey,
      publicKey: crypto.createPublicKey({ key: stack.kms.publicKeyOf(agreementKey), format: 'der', type: 'spki' }),
    });
    assert.deepEqual(Buffer.from(out.SharedSecret!), expected);
  });

  it('other actions pass through (DescribeKey)', async () => {
    const out = await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
    assert.equal(out.KeyMetadata!.KeyId, keyId);
  });

  it("a key policy with the wrong PCR0 gives AccessDeniedException, passed through with KMS's request id", async () => {
    const wrongPcr = stack.kms.createKey('SYMMETRIC_DEFAULT', { pcrs: { 0: 'b2'.repeat(48) } });
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: wrongPcr, Plaintext: Buffer.from('x') }));
    const err = await kmsError(kms.send(new DecryptCommand({ CiphertextBlob })));
    assert.equal(err.name, 'AccessDeniedException');
    assert.match(err.message, /kms:RecipientAttestation:PCR0/);
    assert.equal(err.$metadata.httpStatusCode, 400);
    assert.match(err.$metadata.requestId ?? '', /^[0-9a-f-]{36}$/);
    const imageKey = stack.kms.createKey('SYMMETRIC_DEFAULT', { imageSha384: 'c3'.repeat(48) });
    const blob = (await kms.send(new EncryptCommand({ KeyId: imageKey, Plaintext: Buffer.from('y') }))).CiphertextBlob;
    assert.match((await kmsError(kms.send(new DecryptCommand({ CiphertextBlob: blob })))).message, /ImageSha384/);
  });

  it('leaves a Recipient the app set itself alone: the app gets CiphertextForRecipient to open itself', async () => {
    const own = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const document = stack.inner.nsm.attest({ publicKey: own.publicKey.export({ type: 'spki', format: 'der' }) });
    const out = await kms.send(
      new GenerateRandomCommand({
        NumberOfBytes: 16,
        Recipient: { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', AttestationDocument: document },
      }),
    );
    assert.equal(out.Plaintext, undefined);
    assert.equal(decryptRecipientEnvelope(Buffer.from(out.CiphertextForRecipient!), own.privateKey).length, 16);
  });

  it('refuses malformed JSON and oversized bodies with a clear 400', async () => {
    const post = (body: string, target = 'TrentService.Decrypt') =>
      request(stack.kmsProxy.url, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': target },
      });
    const malformed = await post('{"CiphertextBlob": ');
    assert.equal(malformed.statusCode, 400);
    const body = (await malformed.body.json()) as { __type: string; message: string };
    assert.equal(body.__type, 'SerializationException');
    assert.match(body.message, /not valid JSON/);
    assert.equal((await post('[1,2]')).statusCode, 400);
    const huge = await post(JSON.stringify({ CiphertextBlob: 'A'.repeat(200_000) }));
    assert.equal(huge.statusCode, 400);
    assert.match(((await huge.body.json()) as { message: string }).message, /exceeds the limit/);
    const noTarget = await post('{}', 'NotKms');
    assert.equal(noTarget.statusCode, 400);
    await noTarget.body.dump();
  });

  it('refreshes role credentials that expire during the run', async () => {
    const first = stack.kms.calls.at(-1)!.accessKeyId;
    // Six hours later the first credentials are long expired; KMS would answer ExpiredTokenException.
    stack.advance(6 * 3600_000 + 60_000);
    assert.ok(stack.store.isExpired(stack.store.lookup(first)!));
    const out = await kms.send(new GenerateRandomCommand({ NumberOfBytes: 8 }));
    assert.equal(out.Plaintext!.length, 8);
    const second = stack.kms.calls.at(-1)!.accessKeyId;
    assert.notEqual(second, first);
    assert.deepEqual(stack.kms.refusedSignatures, []);
  });

  it('serves the attestation API: CBOR by default, base64 JSON on request, bound to the given fields', async () => {
    const nonce = crypto.randomBytes(20);
    const { publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const res = await request(`${stack.attestationApi.url}/v1/attestation`, {
      method: 'POST',
      body: JSON.stringify({
        nonce: nonce.toString('base64'),
        user_data: Buffer.from('hi').toString('base64'),
        public_key: publicKey.export({ type: 'spki', format: 'pem' }),
      }),
    });
    assert.equal(res.headers['content-type'], 'application/cbor');
    const root = stack.inner.simulator!.rootPem;
    const { document } = verifyAttestation(Buffer.from(await res.body.arrayBuffer()), { root, at: 'now', expectedNonce: nonce });
    assert.deepEqual(document.userData, Buffer.from('hi'));
    assert.deepEqual(document.publicKey, publicKey.export({ type: 'spki', format: 'der' }));
    const json = await request(`${stack.attestationApi.url}/v1/attestation?format=json`, { method: 'POST' });
    verifyAttestation(Buffer.from(((await json.body.json()) as { document: string }).document, 'base64'), { root, at: 'now' });
    const bad = await request(`${stack.attestationApi.url}/v1/attestation`, { method: 'POST', body: '{"nonce": 5}' });
    assert.equal(bad.statusCode, 400);
    await bad.body.dump();
    const wrongMethod = await request(`${stack.attestationApi.url}/v1/attestation`);
    assert.equal(wrongMethod.statusCode, 405);
    await wrongMethod.body.dump();
  });

  it('sends KMS traffic through the egress proxy (HTTP CONNECT) when one is configured', async () => {
    const egress = new ConnectProxy();
    const egressUrl = await egress.start();
    const viaEgress = await serveOnLoopback(
      stack.inner.kmsRequestListener({ endpoint: stack.kmsUrl, ca: stack.tlsCa, egressProxy: egressUrl }),
    );
    const client = new KMSClient({ region: TEST_REGION, endpoint: viaEgress.url, credentials: APP_CREDENTIALS, maxAttempts: 1 });
    try {
      const out = await client.send(new GenerateRandomCommand({ NumberOfBytes: 12 }));
      assert.equal(out.Plaintext!.length, 12);
      assert.deepEqual(egress.targets, [new URL(stack.kmsUrl).host]);
    } finally {
      client.destroy();
      await viaEgress.close();
      await egress.stop();
    }
  });

  it('counts KMS requests by action and outcome', async () => {
    const text = await registry.metrics();
    assert.match(text, /enclaver_kms_requests_total\{action="Decrypt",outcome="attested"\} [1-9]/);
    assert.match(text, /enclaver_kms_requests_total\{action="Decrypt",outcome="kms_error"\} [1-9]/);
    assert.match(text, /enclaver_kms_requests_total\{action="Encrypt",outcome="passed_through"\} [1-9]/);
    assert.match(text, /enclaver_credential_refreshes_total [2-9]/);
  });
});
