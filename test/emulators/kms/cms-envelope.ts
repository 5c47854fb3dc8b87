/**
 * TEST-ONLY: seals a plaintext for an attested recipient the way AWS KMS does — BER with
 * indefinite lengths, CMS EnvelopedData, RSAES-OAEP-SHA256 key transport, AES-256-CBC content —
 * so that the proxy's parser meets the bytes it will meet in production, in both encodings of
 * the encrypted content.
 */
import crypto from 'node:crypto';
import { OAEP_SHA256_PARAMS_DER } from '../../../proxy-inner/aws/cms.js';

export type ContentEncoding = 'constructed' | 'primitive';

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Definite-length TLV. */
function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

/** Indefinite-length constructed TLV closed by an end-of-contents marker. */
function indefinite(tag: number, ...content: Buffer[]): Buffer {
  return Buffer.concat([Buffer.from([tag, 0x80]), ...content, Buffer.from([0, 0])]);
}

const oid = (hex: string) => tlv(0x06, Buffer.from(hex, 'hex'));
const OID_ENVELOPED_DATA = oid('2a864886f70d010703');
const OID_DATA = oid('2a864886f70d010701');
const OID_RSAES_OAEP = oid('2a864886f70d010107');
const OID_AES_256_CBC = oid('60864801650304012a');
const INTEGER_2 = Buffer.from('020102', 'hex');
/** KMS splits the encrypted content into OCTET STRING chunks; a small size makes several. */
const CHUNK_BYTES = 48;

export function sealForRecipient(plaintext: Buffer, recipientSpkiDer: Buffer, encoding: ContentEncoding): Buffer {
  const cek = crypto.randomBytes(32);
  const iv = crypto.randomBytes(16);
  const cipher = crypto.createCipheriv('aes-256-cbc', cek, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const publicKey = crypto.createPublicKey({ key: recipientSpkiDer, format: 'der', type: 'spki' });
  const encryptedKey = crypto.publicEncrypt({ key: publicKey, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, cek);
  const subjectKeyId = crypto.createHash('sha256').update(recipientSpkiDer).digest();

  const recipient = tlv(
    0x30,
    INTEGER_2,
    tlv(0x80, subjectKeyId),
    tlv(0x30, OID_RSAES_OAEP, OAEP_SHA256_PARAMS_DER),
    tlv(0x04, encryptedKey),
  );
  const chunks: Buffer[] = [];
  for (let i = 0; i < ciphertext.length; i += CHUNK_BYTES) chunks.push(tlv(0x04, ciphertext.subarray(i, i + CHUNK_BYTES)));
  const content = encoding === 'constructed' ? indefinite(0xa0, ...chunks) : tlv(0x80, ciphertext);
  const encryptedContentInfo = indefinite(0x30, OID_DATA, tlv(0x30, OID_AES_256_CBC, tlv(0x04, iv)), content);
  const envelopedData = indefinite(0x30, INTEGER_2, tlv(0x31, recipient), encryptedContentInfo);
  return indefinite(0x30, OID_ENVELOPED_DATA, indefinite(0xa0, envelopedData));
}
