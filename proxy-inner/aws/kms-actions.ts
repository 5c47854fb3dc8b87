/**
 * The KMS actions that accept a `Recipient` (an attestation document) and where each one's
 * plaintext belongs in the answer the SDK expects once the proxy has opened
 * `CiphertextForRecipient`. Every other action passes through untouched.
 */
export const KMS_TARGET_PREFIX = 'TrentService.';
export const KMS_CONTENT_TYPE = 'application/x-amz-json-1.1';
export const RECIPIENT_KEY_ENCRYPTION_ALGORITHM = 'RSAES_OAEP_SHA_256';

export type PlaintextField = 'Plaintext' | 'PrivateKeyPlaintext' | 'SharedSecret';

export const ATTESTED_ACTIONS: Readonly<Record<string, PlaintextField>> = {
  Decrypt: 'Plaintext',
  GenerateDataKey: 'Plaintext',
  GenerateDataKeyPair: 'PrivateKeyPlaintext',
  GenerateRandom: 'Plaintext',
  DeriveSharedSecret: 'SharedSecret',
};

/** `TrentService.Decrypt` → `Decrypt`; null for anything that is not a KMS target. */
export function kmsActionOf(target: string | undefined): string | null {
  if (!target || !target.startsWith(KMS_TARGET_PREFIX)) return null;
  const action = target.slice(KMS_TARGET_PREFIX.length);
  return /^[A-Za-z]+$/.test(action) ? action : null;
}

/** The plaintext field of an attested action, matched case-insensitively like KMS does. */
export function attestedPlaintextField(action: string): PlaintextField | null {
  const entry = Object.entries(ATTESTED_ACTIONS).find(([a]) => a.toLowerCase() === action.toLowerCase());
  return entry ? entry[1] : null;
}
