/**
 * TEST-ONLY AWS KMS emulator over HTTPS on loopback (awsJson1_1, `TrentService.*`).
 *
 * It does what the proxy relies on KMS for: verifies SigV4 with the credentials the IMDS emulator
 * issued; for Decrypt, GenerateDataKey, GenerateDataKeyPair, GenerateRandom and
 * DeriveSharedSecret with a `Recipient`, verifies the attestation document against the NSM
 * simulator's root, enforces the key policy's `kms:RecipientAttestation:PCR<N>` /
 * `…:ImageSha384` conditions, and seals the plaintext to the document's RSA key as BER CMS,
 * leaving the plaintext field null as KMS does. Errors are KMS-shaped with x-amzn-RequestId.
 *
 * Asymmetric signing keys (ECC_NIST_P256/P384/P521, RSA_2048; generated, or imported as KMS
 * allows for EXTERNAL key material) answer GetPublicKey (DER SPKI, KeySpec, KeyUsage,
 * SigningAlgorithms) and Sign (MessageType RAW or DIGEST, DER signature). node:crypto cannot
 * sign a digest it did not compute, so DIGEST signing is done by `openssl pkeyutl`, which signs
 * its input as the digest. Keys can be disabled, and a policy can deny actions.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { verifyAttestation } from '../../../shared/attestation/verify.js';
import { ATTESTED_ACTIONS, kmsActionOf } from '../../../proxy-inner/aws/kms-actions.js';
import type { CredentialStore } from '../credential-store.js';
import { type ContentEncoding, sealForRecipient } from './cms-envelope.js';
import { verifySigV4 } from './sigv4-verify.js';

export interface KeyPolicy {
  /** `kms:RecipientAttestation:PCR<N>` StringEqualsIgnoreCase conditions. */
  pcrs?: Record<number, string>;
  /** `kms:RecipientAttestation:ImageSha384`. */
  imageSha384?: string;
  /** Deny every call that carries no attestation (what a Nitro-only key policy amounts to). */
  requireAttestation?: boolean;
  /** Actions the caller is not allowed (e.g. `Sign`: a policy granting only kms:GetPublicKey). */
  deny?: string[];
}

type SigningSpec = 'ECC_NIST_P256' | 'ECC_NIST_P384' | 'ECC_NIST_P521' | 'RSA_2048';

/** What KMS lists per signing key spec, and the hash each algorithm uses. */
const SIGNING: Record<SigningSpec, { curve?: string; algorithms: Record<string, string> }> = {
  ECC_NIST_P256: { curve: 'P-256', algorithms: { ECDSA_SHA_256: 'sha256' } },
  ECC_NIST_P384: { curve: 'P-384', algorithms: { ECDSA_SHA_384: 'sha384' } },
  ECC_NIST_P521: { curve: 'P-521', algorithms: { ECDSA_SHA_512: 'sha512' } },
  RSA_2048: {
    algorithms: { RSASSA_PKCS1_V1_5_SHA_256: 'sha256', RSASSA_PKCS1_V1_5_SHA_384: 'sha384', RSASSA_PSS_SHA_256: 'sha256' },
  },
};
const RAW_MESSAGE_LIMIT = 4096;

interface EmulatedKey {
  keyId: string;
  arn: string;
  spec: 'SYMMETRIC_DEFAULT' | SigningSpec;
  usage: 'ENCRYPT_DECRYPT' | 'KEY_AGREEMENT' | 'SIGN_VERIFY';
  secret: Buffer;
  /** The private half of an asymmetric key (KEY_AGREEMENT or SIGN_VERIFY). */
  privateKey?: crypto.KeyObject;
  enabled: boolean;
  policy: KeyPolicy;
}

export interface KmsEmulatorOptions {
  store: CredentialStore;
  region: string;
  tls: { key: string; cert: string };
  /** The NSM simulator's root PEM, read when a Recipient arrives (the simulator may start later). */
  attestationRoot: () => string;
  /** Alternates between the two legal encodings of the encrypted content unless fixed. */
  contentEncoding?: ContentEncoding;
}

class KmsFault extends Error {
  constructor(
    readonly errorType: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const b64 = (b: Buffer) => b.toString('base64');

function blobArg(req: Record<string, unknown>, name: string, required = true): Buffer | undefined {
  const v = req[name];
  if (v === undefined || v === null) {
    if (required)
      throw new KmsFault(
        'ValidationException',
        `1 validation error detected: Value null at '${name}' failed to satisfy constraint: Member must not be null`,
      );
    return undefined;
  }
  if (typeof v !== 'string') throw new KmsFault('SerializationException', `${name} must be a base64 string`);
  return Buffer.from(v, 'base64');
}

export class KmsEmulator {
  private readonly keys = new Map<string, EmulatedKey>();
  private server: https.Server | null = null;
  private encodings = 0;
  /** One entry per request that passed SigV4, for assertions. */
  readonly calls: { action: string; recipient: boolean; accessKeyId: string }[] = [];
  readonly refusedSignatures: string[] = [];
  /** Every Sign request that reached a key: how it asked, for assertions. */
  readonly signRequests: { keyId: string; messageType: string; signingAlgorithm: string }[] = [];
  /** Signing keys as PEM files, for `openssl pkeyutl` (made on first use, removed by stop()). */
  private keyDir: string | undefined;

  constructor(private readonly opts: KmsEmulatorOptions) {}

  /** A symmetric key, or (ECC_NIST_P256) a KEY_AGREEMENT key. */
  createKey(spec: 'SYMMETRIC_DEFAULT' | 'ECC_NIST_P256' = 'SYMMETRIC_DEFAULT', policy: KeyPolicy = {}): string {
    return this.addKey(
      spec,
      spec === 'ECC_NIST_P256' ? 'KEY_AGREEMENT' : 'ENCRYPT_DECRYPT',
      spec === 'ECC_NIST_P256' ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey : undefined,
      policy,
    );
  }

  /** A SIGN_VERIFY key, with generated key material or `material` imported (KMS's EXTERNAL origin). */
  createSigningKey(spec: SigningSpec, opts: { material?: crypto.KeyObject; policy?: KeyPolicy } = {}): string {
    const curve = SIGNING[spec].curve;
    const privateKey =
      opts.material ??
      (curve ? crypto.generateKeyPairSync('ec', { namedCurve: curve }) : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }))
        .privateKey;
    const keyId = this.addKey(spec, 'SIGN_VERIFY', privateKey, opts.policy ?? {});
    this.keyDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'kms-emulator-keys-'));
    fs.writeFileSync(path.join(this.keyDir, `${keyId}.pem`), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    return keyId;
  }

  /** Like `aws kms disable-key`: GetPublicKey and Sign then fail with DisabledException. */
  disableKey(keyId: string): void {
    this.key(keyId).enabled = false;
  }

  arnOf(keyId: string): string {
    return this.key(keyId).arn;
  }

  private addKey(
    spec: EmulatedKey['spec'],
    usage: EmulatedKey['usage'],
    privateKey: crypto.KeyObject | undefined,
    policy: KeyPolicy,
  ): string {
    const keyId = crypto.randomUUID();
    this.keys.set(keyId, {
      keyId,
      arn: `arn:aws:kms:${this.opts.region}:111122223333:key/${keyId}`,
      spec,
      usage,
      secret: crypto.randomBytes(32),
      ...(privateKey ? { privateKey } : {}),
      enabled: true,
      policy,
    });
    return keyId;
  }

  /** The CiphertextBlob `aws kms encrypt` would give for this key (what an operator stores). */
  encrypt(keyId: string, plaintext: Buffer): Buffer {
    return this.encryptBlob(this.key(keyId), plaintext);
  }

  /** The public half of an ECC key, as KMS GetPublicKey would return it (SPKI DER). */
  publicKeyOf(keyId: string): Buffer {
    return crypto.createPublicKey(this.key(keyId).privateKey!).export({ type: 'spki', format: 'der' });
  }

  private key(id: unknown): EmulatedKey {
    if (typeof id !== 'string') throw new KmsFault('ValidationException', 'KeyId must be a string');
    const key = this.keys.get(id) ?? [...this.keys.values()].find((k) => k.arn === id);
    if (!key) throw new KmsFault('NotFoundException', `Key '${id}' does not exist`);
    return key;
  }

  /** The key for an action that checks key state and the policy's `deny` (GetPublicKey, Sign). */
  private usable(action: string, id: unknown): EmulatedKey {
    const key = this.key(id);
    if (!key.enabled) throw new KmsFault('DisabledException', `${key.arn} is disabled.`);
    if (key.policy.deny?.includes(action))
      throw new KmsFault(
        'AccessDeniedException',
        `User: arn:aws:sts::111122223333:assumed-role/builder/session is not authorized to perform: kms:${action} on resource: ${key.arn} because no identity-based policy allows the kms:${action} action`,
      );
    return key;
  }

  private async sign(key: EmulatedKey, req: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (key.usage !== 'SIGN_VERIFY' || !key.privateKey)
      throw new KmsFault('InvalidKeyUsageException', `You cannot perform this operation on a ${key.usage} key: ${key.arn}`);
    const algorithm = String(req.SigningAlgorithm);
    const hash = SIGNING[key.spec as SigningSpec].algorithms[algorithm];
    if (hash === undefined)
      throw new KmsFault('InvalidKeyUsageException', `Signing algorithm ${algorithm} is not valid for ${key.spec} key ${key.arn}`);
    const message = blobArg(req, 'Message')!;
    const messageType = req.MessageType === undefined ? 'RAW' : String(req.MessageType);
    this.signRequests.push({ keyId: key.keyId, messageType, signingAlgorithm: algorithm });
    let signature: Buffer;
    if (messageType === 'DIGEST') {
      const want = crypto.createHash(hash).digest().length;
      if (message.length !== want)
        throw new KmsFault(
          'ValidationException',
          `Digest is invalid length for algorithm ${algorithm}: ${message.length} bytes, not ${want}`,
        );
      if (!SIGNING[key.spec as SigningSpec].curve)
        throw new KmsFault('UnsupportedOperationException', 'this emulator signs digests with ECC keys only');
      signature = await this.opensslSign(key, message);
    } else if (messageType === 'RAW') {
      if (message.length > RAW_MESSAGE_LIMIT)
        throw new KmsFault('ValidationException', `Message must be at most ${RAW_MESSAGE_LIMIT} bytes with MessageType RAW; use DIGEST`);
      const pss = algorithm.startsWith('RSASSA_PSS') ? { padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } : {};
      signature = crypto.sign(hash, message, { key: key.privateKey, ...pss });
    } else {
      throw new KmsFault('ValidationException', `MessageType must be RAW or DIGEST, not ${messageType}`);
    }
    return { KeyId: key.arn, Signature: b64(signature), SigningAlgorithm: algorithm };
  }

  /** ECDSA over a digest given as is, DER-encoded: what KMS does for MessageType DIGEST. */
  private opensslSign(key: EmulatedKey, digest: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const child = execFile(
        'openssl',
        ['pkeyutl', '-sign', '-inkey', path.join(this.keyDir!, `${key.keyId}.pem`)],
        { encoding: 'buffer' },
        (err, stdout) => (err ? reject(new KmsFault('KMSInternalException', `openssl pkeyutl: ${err.message}`, 500)) : resolve(stdout)),
      );
      child.stdin!.end(digest);
    });
  }

  private encryptBlob(key: EmulatedKey, plaintext: Buffer): Buffer {
    const iv = crypto.randomBytes(12);
    const cipher = crypto.createCipheriv('aes-256-gcm', key.secret, iv);
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const id = Buffer.from(key.keyId);
    return Buffer.concat([Buffer.from([id.length]), id, iv, cipher.getAuthTag(), ct]);
  }

  private decryptBlob(blob: Buffer): { key: EmulatedKey; plaintext: Buffer } {
    try {
      const idLen = blob[0]!;
      const key = this.key(blob.subarray(1, 1 + idLen).toString());
      const rest = blob.subarray(1 + idLen);
      const decipher = crypto.createDecipheriv('aes-256-gcm', key.secret, rest.subarray(0, 12));
      decipher.setAuthTag(rest.subarray(12, 28));
      return { key, plaintext: Buffer.concat([decipher.update(rest.subarray(28)), decipher.final()]) };
    } catch {
      throw new KmsFault('InvalidCiphertextException', '');
    }
  }

  /** The recipient's RSA public key (SPKI DER), after verifying the document and the key policy. */
  private recipient(action: string, req: Record<string, unknown>, key: EmulatedKey | null): Buffer | null {
    const recipient = req.Recipient as { KeyEncryptionAlgorithm?: unknown; AttestationDocument?: unknown } | undefined;
    if (!recipient) {
      if (key?.policy.requireAttestation)
        throw new KmsFault(
          'AccessDeniedException',
          `User is not authorized to perform: kms:${action} on ${key.arn} because no attestation was provided`,
        );
      return null;
    }
    if (recipient.KeyEncryptionAlgorithm !== 'RSAES_OAEP_SHA_256')
      throw new KmsFault('ValidationException', 'Recipient.KeyEncryptionAlgorithm must be RSAES_OAEP_SHA_256');
    if (typeof recipient.AttestationDocument !== 'string')
      throw new KmsFault('ValidationException', 'Recipient.AttestationDocument is required');
    let document;
    try {
      document = verifyAttestation(Buffer.from(recipient.AttestationDocument, 'base64'), {
        root: this.opts.attestationRoot(),
        at: 'now',
      }).document;
    } catch (err) {
      throw new KmsFault('ValidationException', `Invalid attestation document: ${(err as Error).message}`);
    }
    const spki = document.publicKey;
    let rsa: crypto.KeyObject | null = null;
    try {
      if (spki) rsa = crypto.createPublicKey({ key: spki, format: 'der', type: 'spki' });
    } catch {
      /* refused below */
    }
    if (!spki || !rsa || rsa.asymmetricKeyType !== 'rsa' || rsa.asymmetricKeyDetails?.modulusLength !== 2048) {
      throw new KmsFault('ValidationException', "The attestation document's public_key must be an RSA-2048 SubjectPublicKeyInfo");
    }
    const conditions: [string, number, string][] = Object.entries(key?.policy.pcrs ?? {}).map(([i, v]) => [
      `kms:RecipientAttestation:PCR${i}`,
      Number(i),
      v,
    ]);
    if (key?.policy.imageSha384) conditions.push(['kms:RecipientAttestation:ImageSha384', 0, key.policy.imageSha384]);
    for (const [condition, index, want] of conditions) {
      if (document.pcrs.get(index)?.toString('hex').toLowerCase() !== want.toLowerCase()) {
        throw new KmsFault(
          'AccessDeniedException',
          `User is not authorized to perform: kms:${action} on ${key!.arn} because ${condition} does not match the key policy`,
        );
      }
    }
    return spki;
  }

  private seal(plaintext: Buffer, spki: Buffer): string {
    const encoding = this.opts.contentEncoding ?? (this.encodings++ % 2 === 0 ? 'constructed' : 'primitive');
    return b64(sealForRecipient(plaintext, spki, encoding));
  }

  private async perform(action: string, req: Record<string, unknown>): Promise<Record<string, unknown>> {
    switch (action) {
      case 'GetPublicKey': {
        const key = this.usable(action, req.KeyId);
        if (!key.privateKey)
          throw new KmsFault(
            'UnsupportedOperationException',
            `${key.arn} key usage is ENCRYPT_DECRYPT which is not valid for GetPublicKey.`,
          );
        return {
          KeyId: key.arn,
          PublicKey: b64(crypto.createPublicKey(key.privateKey).export({ type: 'spki', format: 'der' })),
          KeySpec: key.spec,
          CustomerMasterKeySpec: key.spec,
          KeyUsage: key.usage,
          KeyOrigin: 'AWS_KMS',
          ...(key.usage === 'SIGN_VERIFY' ? { SigningAlgorithms: Object.keys(SIGNING[key.spec as SigningSpec].algorithms) } : {}),
          ...(key.usage === 'KEY_AGREEMENT' ? { KeyAgreementAlgorithms: ['ECDH'] } : {}),
        };
      }
      case 'Sign':
        return this.sign(this.usable(action, req.KeyId), req);
      case 'Encrypt': {
        const key = this.key(req.KeyId);
        return {
          KeyId: key.arn,
          CiphertextBlob: b64(this.encryptBlob(key, blobArg(req, 'Plaintext')!)),
          EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        };
      }
      case 'Decrypt': {
        const { key, plaintext } = this.decryptBlob(blobArg(req, 'CiphertextBlob')!);
        if (req.KeyId !== undefined && this.key(req.KeyId) !== key)
          throw new KmsFault('IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.');
        const spki = this.recipient(action, req, key);
        return {
          KeyId: key.arn,
          EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
          ...(spki ? { Plaintext: null, CiphertextForRecipient: this.seal(plaintext, spki) } : { Plaintext: b64(plaintext) }),
        };
      }
      case 'GenerateDataKey': {
        const key = this.key(req.KeyId);
        const size = req.KeySpec === 'AES_128' ? 16 : req.KeySpec === 'AES_256' ? 32 : Number(req.NumberOfBytes);
        if (!Number.isInteger(size) || size < 1 || size > 1024)
          throw new KmsFault('ValidationException', 'KeySpec or NumberOfBytes is required');
        const spki = this.recipient(action, req, key);
        const dataKey = crypto.randomBytes(size);
        return {
          KeyId: key.arn,
          CiphertextBlob: b64(this.encryptBlob(key, dataKey)),
          ...(spki ? { Plaintext: null, CiphertextForRecipient: this.seal(dataKey, spki) } : { Plaintext: b64(dataKey) }),
        };
      }
      case 'GenerateDataKeyPair': {
        const key = this.key(req.KeyId);
        const pair =
          req.KeyPairSpec === 'RSA_2048'
            ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
            : req.KeyPairSpec === 'ECC_NIST_P256'
              ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
              : (() => {
                  throw new KmsFault('ValidationException', 'KeyPairSpec must be RSA_2048 or ECC_NIST_P256 in this emulator');
                })();
        const spki = this.recipient(action, req, key);
        const pkcs8 = pair.privateKey.export({ type: 'pkcs8', format: 'der' });
        return {
          KeyId: key.arn,
          KeyPairSpec: req.KeyPairSpec,
          PublicKey: b64(pair.publicKey.export({ type: 'spki', format: 'der' })),
          PrivateKeyCiphertextBlob: b64(this.encryptBlob(key, pkcs8)),
          ...(spki ? { PrivateKeyPlaintext: null, CiphertextForRecipient: this.seal(pkcs8, spki) } : { PrivateKeyPlaintext: b64(pkcs8) }),
        };
      }
      case 'GenerateRandom': {
        const size = Number(req.NumberOfBytes);
        if (!Number.isInteger(size) || size < 1 || size > 1024) throw new KmsFault('ValidationException', 'NumberOfBytes must be 1..1024');
        const spki = this.recipient(action, req, null);
        const random = crypto.randomBytes(size);
        return spki ? { Plaintext: null, CiphertextForRecipient: this.seal(random, spki) } : { Plaintext: b64(random) };
      }
      case 'DeriveSharedSecret': {
        const key = this.key(req.KeyId);
        if (key.usage !== 'KEY_AGREEMENT' || !key.privateKey)
          throw new KmsFault('InvalidKeyUsageException', 'The key is not a KEY_AGREEMENT key');
        if (req.KeyAgreementAlgorithm !== 'ECDH') throw new KmsFault('ValidationException', 'KeyAgreementAlgorithm must be ECDH');
        let peer: crypto.KeyObject;
        try {
          peer = crypto.createPublicKey({ key: blobArg(req, 'PublicKey')!, format: 'der', type: 'spki' });
        } catch {
          throw new KmsFault('ValidationException', 'PublicKey is not a DER SubjectPublicKeyInfo');
        }
        const spki = this.recipient(action, req, key);
        const secret = crypto.diffieHellman({ privateKey: key.privateKey, publicKey: peer });
        return {
          KeyId: key.arn,
          KeyAgreementAlgorithm: 'ECDH',
          KeyOrigin: 'AWS_KMS',
          ...(spki ? { SharedSecret: null, CiphertextForRecipient: this.seal(secret, spki) } : { SharedSecret: b64(secret) }),
        };
      }
      case 'DescribeKey': {
        const key = this.key(req.KeyId);
        return {
          KeyMetadata: {
            KeyId: key.keyId,
            Arn: key.arn,
            KeySpec: key.spec,
            Enabled: key.enabled,
            KeyState: key.enabled ? 'Enabled' : 'Disabled',
            KeyUsage: key.usage,
          },
        };
      }
      default:
        throw new KmsFault('UnknownOperationException', '');
    }
  }

  private handle(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): void {
    const requestId = crypto.randomUUID();
    const reply = (status: number, value: unknown, errorType?: string) => {
      const bytes = Buffer.from(JSON.stringify(value));
      res.writeHead(status, {
        'content-type': 'application/x-amz-json-1.1',
        'x-amzn-requestid': requestId,
        'content-length': bytes.length,
        ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
      });
      res.end(bytes);
    };
    const fail = (f: KmsFault) => reply(f.status, { __type: f.errorType, message: f.message }, f.errorType);
    const sigFailure = verifySigV4(req, body, this.opts.region, this.opts.store);
    if (sigFailure) {
      this.refusedSignatures.push(sigFailure.errorType);
      return fail(
        new KmsFault(
          sigFailure.errorType,
          sigFailure.message,
          sigFailure.errorType === 'ExpiredTokenException' || sigFailure.errorType === 'UnrecognizedClientException' ? 400 : 403,
        ),
      );
    }
    const action = kmsActionOf(String(req.headers['x-amz-target'] ?? ''));
    if (!action) return fail(new KmsFault('UnknownOperationException', ''));
    let request: Record<string, unknown>;
    try {
      request = JSON.parse(body.toString()) as Record<string, unknown>;
    } catch {
      return fail(new KmsFault('SerializationException', 'Start of structure or map found where not expected'));
    }
    const accessKeyId = /Credential=([^/]+)/.exec(String(req.headers.authorization))![1]!;
    this.calls.push({ action, recipient: action in ATTESTED_ACTIONS && request.Recipient !== undefined, accessKeyId });
    this.perform(action, request).then(
      (answer) => reply(200, answer),
      (err: unknown) => fail(err instanceof KmsFault ? err : new KmsFault('KMSInternalException', (err as Error).message, 500)),
    );
  }

  async start(): Promise<string> {
    this.server = https.createServer({ key: this.opts.tls.key, cert: this.opts.tls.cert }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.handle(req, Buffer.concat(chunks), res));
    });
    await new Promise<void>((resolve) => this.server!.listen({ host: '127.0.0.1', port: 0 }, resolve));
    return `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    if (this.keyDir) fs.rmSync(this.keyDir, { recursive: true, force: true });
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}
