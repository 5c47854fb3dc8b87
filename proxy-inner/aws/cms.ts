/**
 * KMS's `CiphertextForRecipient`: a BER (indefinite-length) CMS ContentInfo holding EnvelopedData
 * with one KeyTransRecipientInfo (RSAES-OAEP, SHA-256, MGF1-SHA-256) and AES-256-CBC content,
 * the encrypted content being either a constructed [0] of chunked OCTET STRINGs or a primitive
 * [0]. The checks are those of aws-nitro-enclaves-sdk-c source/cms.c. asn1js (under
 * @peculiar/asn1-schema) reads BER, which strict DER parsers refuse.
 */
import crypto from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { ContentInfo, EnvelopedData, id_data, id_envelopedData } from '@peculiar/asn1-cms';
import { ProxyError } from '../../shared/errors/index.js';

export const OID_RSAES_OAEP = '1.2.840.113549.1.1.7';
export const OID_AES_256_CBC = '2.16.840.1.101.3.4.1.42';
/** RSAES-OAEP-params {hashAlgorithm sha256, maskGenAlgorithm mgf1(sha256)}, as KMS encodes them. */
export const OAEP_SHA256_PARAMS_DER = Buffer.from(
  '302fa00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500',
  'hex',
);
const AES_BLOCK = 16;
const AES_256_KEY = 32;

export class CmsError extends ProxyError {}

export interface RecipientEnvelope {
  encryptedKey: Buffer;
  iv: Buffer;
  /** The encrypted content, its chunks (if any) concatenated. */
  ciphertext: Buffer;
}

function unsupported(message: string, context: Record<string, unknown> = {}): CmsError {
  return new CmsError('cms_unsupported', message, context);
}

function octets(o: OctetString | ArrayBuffer): Buffer {
  return Buffer.from(o instanceof OctetString ? o.buffer : o);
}

export function parseRecipientEnvelope(ber: Uint8Array): RecipientEnvelope {
  let info: ContentInfo;
  let enveloped: EnvelopedData;
  try {
    info = AsnConvert.parse(ber, ContentInfo);
    if (info.contentType !== id_envelopedData)
      throw unsupported(`content type ${info.contentType} is not envelopedData`, { contentType: info.contentType });
    enveloped = AsnConvert.parse(info.content, EnvelopedData);
  } catch (err) {
    if (err instanceof CmsError) throw err;
    throw new CmsError('cms_malformed', `CiphertextForRecipient is not a CMS EnvelopedData: ${(err as Error).message}`);
  }
  if (enveloped.version !== 2)
    throw unsupported(`EnvelopedData version ${enveloped.version} (KMS sends 2)`, { version: enveloped.version });
  if (enveloped.recipientInfos.length !== 1) throw unsupported(`${enveloped.recipientInfos.length} recipients (KMS sends exactly one)`);
  const ktri = enveloped.recipientInfos[0]?.ktri;
  if (!ktri) throw unsupported('the recipient is not a KeyTransRecipientInfo');
  if (ktri.version !== 2) throw unsupported(`KeyTransRecipientInfo version ${ktri.version} (KMS sends 2)`);
  const kea = ktri.keyEncryptionAlgorithm;
  if (kea.algorithm !== OID_RSAES_OAEP)
    throw unsupported(`key encryption ${kea.algorithm} is not RSAES-OAEP`, { algorithm: kea.algorithm });
  if (!kea.parameters || !Buffer.from(kea.parameters).equals(OAEP_SHA256_PARAMS_DER))
    throw unsupported('RSAES-OAEP parameters are not SHA-256 with MGF1-SHA-256');

  const eci = enveloped.encryptedContentInfo;
  if (eci.contentType !== id_data) throw unsupported(`encrypted content type ${eci.contentType} is not id-data`);
  const cea = eci.contentEncryptionAlgorithm;
  if (cea.algorithm !== OID_AES_256_CBC)
    throw unsupported(`content encryption ${cea.algorithm} is not AES-256-CBC`, { algorithm: cea.algorithm });
  let iv: Buffer;
  try {
    if (!cea.parameters) throw new Error('no parameters');
    iv = Buffer.from(AsnConvert.parse(cea.parameters, OctetString).buffer);
  } catch {
    throw new CmsError('cms_malformed', 'AES-256-CBC parameters are not an OCTET STRING IV');
  }
  if (iv.length !== AES_BLOCK) throw new CmsError('cms_malformed', `AES-CBC IV is ${iv.length} bytes, expected ${AES_BLOCK}`);
  const content = eci.encryptedContent;
  if (!content) throw new CmsError('cms_malformed', 'EnvelopedData carries no encrypted content');
  // Primitive [0] fills `value`; constructed [0] fills `constructedValue` with the chunks.
  const ciphertext = content.value ? octets(content.value) : Buffer.concat((content.constructedValue ?? []).map(octets));
  if (ciphertext.length === 0 || ciphertext.length % AES_BLOCK !== 0)
    throw new CmsError('cms_malformed', `encrypted content of ${ciphertext.length} bytes is not a whole number of AES blocks`);
  return { encryptedKey: octets(ktri.encryptedKey), iv, ciphertext };
}

/** Open KMS's envelope with the recipient's RSA private key: RSA-OAEP-SHA256 → CEK → AES-256-CBC. */
export function decryptRecipientEnvelope(ber: Uint8Array, privateKey: crypto.KeyObject): Buffer {
  const env = parseRecipientEnvelope(ber);
  let cek: Buffer;
  try {
    cek = crypto.privateDecrypt(
      { key: privateKey, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      env.encryptedKey,
    );
  } catch {
    throw new CmsError('cms_decrypt_failed', "the content key does not decrypt with this process's recipient key");
  }
  if (cek.length !== AES_256_KEY)
    throw new CmsError('cms_decrypt_failed', `the content key is ${cek.length} bytes, expected ${AES_256_KEY}`);
  try {
    const decipher = crypto.createDecipheriv('aes-256-cbc', cek, env.iv);
    return Buffer.concat([decipher.update(env.ciphertext), decipher.final()]);
  } catch {
    throw new CmsError('cms_decrypt_failed', 'the content does not decrypt (bad padding)');
  } finally {
    cek.fill(0);
  }
}
