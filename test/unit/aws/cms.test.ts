import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CmsError, decryptRecipientEnvelope, parseRecipientEnvelope } from '../../../proxy-inner/aws/cms.js';
import { sealForRecipient } from '../../emulators/kms/cms-envelope.js';
import { vectorJson } from '../../helpers/vectors.js';

interface CmsVector {
  input_ber: string;
  encrypted_key: string;
  iv: string;
  ciphertext: string;
}
const vector = vectorJson<CmsVector>('cms/recipient-constructed.json');

/** The same envelope with its content re-encoded as a primitive [0] IMPLICIT OCTET STRING. */
function asPrimitive(hex: string): Buffer {
  const constructed = `a0800430${vector.ciphertext}0000`;
  assert.ok(hex.includes(constructed), 'the vector holds one 48-byte chunk inside a constructed [0]');
  return Buffer.from(hex.replace(constructed, `8030${vector.ciphertext}`), 'hex');
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CmsError, String(err));
    return err.code;
  }
  assert.fail('expected a CmsError');
}

const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const spki = publicKey.export({ type: 'spki', format: 'der' });

describe('CMS EnvelopedData from KMS (CiphertextForRecipient)', () => {
  it('extracts the encrypted key, IV and ciphertext of the sdk-c vector (constructed, indefinite lengths)', () => {
    const env = parseRecipientEnvelope(Buffer.from(vector.input_ber, 'hex'));
    assert.equal(env.encryptedKey.toString('hex'), vector.encrypted_key);
    assert.equal(env.iv.toString('hex'), vector.iv);
    assert.equal(env.ciphertext.toString('hex'), vector.ciphertext);
  });

  it('extracts the same fields when the content is a primitive [0]', () => {
    const env = parseRecipientEnvelope(asPrimitive(vector.input_ber));
    assert.equal(env.ciphertext.toString('hex'), vector.ciphertext);
    assert.equal(env.iv.toString('hex'), vector.iv);
  });

  it('cannot decrypt the vector without its (unpublished) key, and says so', () => {
    assert.equal(
      code(() => decryptRecipientEnvelope(Buffer.from(vector.input_ber, 'hex'), privateKey)),
      'cms_decrypt_failed',
    );
  });

  it('decrypts KMS-shaped envelopes in both encodings for any plaintext length', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 300 }),
        fc.constantFrom('constructed' as const, 'primitive' as const),
        (bytes, encoding) => {
          const plaintext = Buffer.from(bytes);
          assert.deepEqual(decryptRecipientEnvelope(sealForRecipient(plaintext, spki, encoding), privateKey), plaintext);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('refuses what KMS never sends, naming it', () => {
    const ber = Buffer.from(vector.input_ber, 'hex');
    const swap = (from: string, to: string) => Buffer.from(ber.toString('hex').replace(from, to), 'hex');
    assert.equal(
      code(() => parseRecipientEnvelope(Buffer.from('3003020100', 'hex'))),
      'cms_malformed',
    );
    assert.equal(
      code(() => parseRecipientEnvelope(ber.subarray(0, 100))),
      'cms_malformed',
    );
    // signedData instead of envelopedData
    assert.equal(
      code(() => parseRecipientEnvelope(swap('2a864886f70d010703', '2a864886f70d010702'))),
      'cms_unsupported',
    );
    // AES-128-CBC instead of AES-256-CBC
    assert.equal(
      code(() => parseRecipientEnvelope(swap('60864801650304012a', '608648016503040102'))),
      'cms_unsupported',
    );
    // rsaEncryption (PKCS#1 v1.5) instead of RSAES-OAEP
    assert.equal(
      code(() => parseRecipientEnvelope(swap('06092a864886f70d010107', '06092a864886f70d010101'))),
      'cms_unsupported',
    );
  });
});
