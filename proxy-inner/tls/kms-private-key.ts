/**
 * TLS private keys sealed with KMS: the operator encrypts the key once (`aws kms encrypt`) under a
 * key whose policy requires this enclave's PCRs; the inner decrypts it at startup with an attested
 * Decrypt, so the plaintext key exists only in the enclave's memory — never on disk, never in the
 * image, never on the parent.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import tls from 'node:tls';
import { ProxyError, messageOf } from '../../shared/errors/index.js';
import { pemSecureContext } from '../../shared/tls/identity.js';
import type { KmsProxy } from '../kms/kms-proxy.js';

export class TlsKeyError extends ProxyError {}

/** A CiphertextBlob file is either the raw blob (`fileb://` output) or its base64 text. */
function ciphertextBlob(file: string): string {
  let raw: Buffer;
  try {
    raw = fs.readFileSync(file);
  } catch (err) {
    throw new TlsKeyError('tls_key_unreadable', `cannot read the sealed TLS key ${file}: ${messageOf(err)}`, { file });
  }
  const text = raw.toString('latin1').trim();
  return /^[A-Za-z0-9+/]+={0,2}$/.test(text) && text.length % 4 === 0 ? text : raw.toString('base64');
}

/** KMS's error as "Type: message", from its JSON error shape. */
function kmsError(body: Buffer): string {
  try {
    const e = JSON.parse(body.toString('utf8')) as { __type?: string; message?: string; Message?: string };
    const type = (e.__type ?? 'KMS error').replace(/^.*#/, '').split(':')[0];
    return `${type}: ${e.message ?? e.Message ?? ''}`.trim();
  } catch {
    return body.toString('utf8').slice(0, 200);
  }
}

/** Decrypt the sealed key with an attested KMS call and build the TLS identity from it. */
export async function unsealTlsContext(kms: KmsProxy, certificateFile: string, sealedKeyFile: string): Promise<tls.SecureContext> {
  const body = Buffer.from(JSON.stringify({ CiphertextBlob: ciphertextBlob(sealedKeyFile) }));
  let response;
  try {
    ({ response } = await kms.call('TrentService.Decrypt', body));
  } catch (err) {
    throw new TlsKeyError('tls_key_kms_unreachable', `cannot decrypt the sealed TLS key ${sealedKeyFile}: ${messageOf(err)}`, {
      file: sealedKeyFile,
    });
  }
  if (response.status !== 200) {
    throw new TlsKeyError('tls_key_kms_refused', `KMS refused to decrypt the sealed TLS key ${sealedKeyFile}: ${kmsError(response.body)}`, {
      file: sealedKeyFile,
      status: response.status,
    });
  }
  const plaintext = Buffer.from((JSON.parse(response.body.toString('utf8')) as { Plaintext: string }).Plaintext, 'base64');
  try {
    const isPem = plaintext.subarray(0, 64).toString('latin1').includes('-----BEGIN');
    const key = crypto.createPrivateKey(isPem ? { key: plaintext } : { key: plaintext, format: 'der', type: 'pkcs8' });
    return pemSecureContext({ certificate: fs.readFileSync(certificateFile), key: key.export({ format: 'pem', type: 'pkcs8' }) });
  } catch (err) {
    throw new TlsKeyError(
      'tls_key_invalid',
      `the sealed TLS key ${sealedKeyFile} decrypted to something that is not a usable private key for ${certificateFile}: ${messageOf(err)}`,
      { file: sealedKeyFile },
    );
  } finally {
    plaintext.fill(0);
  }
}
