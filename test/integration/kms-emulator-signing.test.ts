/**
 * The KMS emulator's signing keys, driven by the unmodified @aws-sdk/client-kms over HTTPS (SigV4
 * verified): GetPublicKey answers as KMS does, Sign with MessageType RAW and DIGEST gives DER
 * signatures that node:crypto verifies with the public key GetPublicKey returned, and misuse gets
 * KMS's error codes. The builder relies on this emulator to stand for KMS, so it is checked
 * against the real client here, not only through the builder.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { CredentialStore } from '../emulators/credential-store.js';
import { KmsEmulator } from '../emulators/kms/server.js';
import { selfSignedLoopbackCertificate } from '../helpers/tls.js';
import { kmsError } from '../helpers/kms-error.js';

const REGION = 'eu-west-1';

describe('KMS emulator: asymmetric signing keys, through @aws-sdk/client-kms', () => {
  let emulator: KmsEmulator;
  let client: KMSClient;

  before(async () => {
    const store = new CredentialStore();
    const tls = selfSignedLoopbackCertificate();
    emulator = new KmsEmulator({
      store,
      region: REGION,
      tls,
      attestationRoot: () => {
        throw new Error('no attested calls in these tests');
      },
    });
    const url = await emulator.start();
    const c = store.issue(3_600_000);
    client = new KMSClient({
      region: REGION,
      endpoint: url,
      maxAttempts: 1,
      credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken },
      requestHandler: { httpsAgent: new https.Agent({ ca: tls.cert }) },
    });
  });
  after(async () => {
    client.destroy();
    await emulator.stop();
  });

  for (const [spec, algorithm, hash] of [
    ['ECC_NIST_P256', 'ECDSA_SHA_256', 'sha256'],
    ['ECC_NIST_P384', 'ECDSA_SHA_384', 'sha384'],
    ['ECC_NIST_P521', 'ECDSA_SHA_512', 'sha512'],
  ] as const) {
    it(`${spec}: GetPublicKey, then Sign RAW and DIGEST verify with that public key`, async () => {
      const keyId = emulator.createSigningKey(spec);
      const pub = await client.send(new GetPublicKeyCommand({ KeyId: keyId }));
      assert.equal(pub.KeyId, emulator.arnOf(keyId));
      assert.equal(pub.KeySpec, spec);
      assert.equal(pub.KeyUsage, 'SIGN_VERIFY');
      assert.deepEqual(pub.SigningAlgorithms, [algorithm]);
      const publicKey = crypto.createPublicKey({ key: Buffer.from(pub.PublicKey!), format: 'der', type: 'spki' });
      const message = Buffer.from(`sign me with ${spec}`);
      const raw = await client.send(new SignCommand({ KeyId: keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: algorithm }));
      assert.equal(raw.SigningAlgorithm, algorithm);
      assert.ok(crypto.verify(hash, message, publicKey, Buffer.from(raw.Signature!)), 'RAW: a DER signature of the message');
      const digest = crypto.createHash(hash).update(message).digest();
      const signed = await client.send(
        new SignCommand({ KeyId: emulator.arnOf(keyId), Message: digest, MessageType: 'DIGEST', SigningAlgorithm: algorithm }),
      );
      assert.ok(crypto.verify(hash, message, publicKey, Buffer.from(signed.Signature!)), 'DIGEST: the same signature over the digest');
    });
  }

  it('answers misuse with KMS error codes', async () => {
    const p384 = emulator.createSigningKey('ECC_NIST_P384');
    const digest384 = crypto.createHash('sha384').update('x').digest();
    const sign = (keyId: string, over: Partial<{ Message: Uint8Array; MessageType: 'RAW' | 'DIGEST'; SigningAlgorithm: string }> = {}) =>
      client.send(
        new SignCommand({
          KeyId: keyId,
          Message: digest384,
          MessageType: 'DIGEST',
          SigningAlgorithm: 'ECDSA_SHA_384',
          ...over,
        } as ConstructorParameters<typeof SignCommand>[0]),
      );
    assert.equal((await kmsError(sign(p384, { SigningAlgorithm: 'ECDSA_SHA_256' }))).name, 'InvalidKeyUsageException');
    assert.equal((await kmsError(sign(p384, { Message: digest384.subarray(0, 32) }))).name, 'ValidationException');
    assert.equal((await kmsError(sign(p384, { MessageType: 'RAW', Message: Buffer.alloc(4097) }))).name, 'ValidationException');
    assert.equal((await kmsError(sign(emulator.createKey('SYMMETRIC_DEFAULT')))).name, 'InvalidKeyUsageException');
    const symmetric = await kmsError(client.send(new GetPublicKeyCommand({ KeyId: emulator.createKey('SYMMETRIC_DEFAULT') })));
    assert.equal(symmetric.name, 'UnsupportedOperationException');
    const denied = emulator.createSigningKey('ECC_NIST_P384', { policy: { deny: ['Sign'] } });
    await client.send(new GetPublicKeyCommand({ KeyId: denied }));
    assert.equal((await kmsError(sign(denied))).name, 'AccessDeniedException');
    emulator.disableKey(p384);
    assert.equal((await kmsError(sign(p384))).name, 'DisabledException');
    assert.equal((await kmsError(client.send(new GetPublicKeyCommand({ KeyId: crypto.randomUUID() })))).name, 'NotFoundException');
  });

  it('an RSA key lists its RSA signing algorithms and signs RAW messages', async () => {
    const keyId = emulator.createSigningKey('RSA_2048');
    const pub = await client.send(new GetPublicKeyCommand({ KeyId: keyId }));
    assert.equal(pub.KeySpec, 'RSA_2048');
    assert.ok(pub.SigningAlgorithms?.includes('RSASSA_PKCS1_V1_5_SHA_256'));
    const message = Buffer.from('rsa');
    const signed = await client.send(
      new SignCommand({ KeyId: keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256' }),
    );
    const publicKey = crypto.createPublicKey({ key: Buffer.from(pub.PublicKey!), format: 'der', type: 'spki' });
    assert.ok(crypto.verify('sha256', message, publicKey, Buffer.from(signed.Signature!)));
  });
});
